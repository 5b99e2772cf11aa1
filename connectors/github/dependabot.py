"""Dependabot: vulnerability alerts on dependencies, and the pull requests that fix them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from github import GithubException

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.repos import Repository, archived, repositories
from connectors.github.session import REPO_ADMIN, GithubSession

T = TypeVar("T")

ALERTS, UPDATES = "vulnerability_alerts", "automated_security_fixes"


@dataclass(frozen=True)
class DependabotSettings:
    """Whether Dependabot alerts and security updates are on for one repository."""

    repo: Repository
    alerts_enabled: bool | None = None
    security_updates_enabled: bool | None = None
    security_updates_paused: bool | None = None
    read_errors: dict[str, str] = field(default_factory=dict)


@collector()
def collect_dependabot(session: GithubSession) -> list[DependabotSettings]:
    """Dependabot alerts and security updates of every active repository."""
    found = []
    for repo in repositories(session):
        if repo.archived:
            found.append(DependabotSettings(repo))
            continue
        errors: dict[str, str] = {}
        alerts = _read(session, errors, ALERTS, f"the Dependabot alerts setting of "
                       f"{repo.full_name}", partial(_alerts_enabled, session, repo))
        fixes = _read(session, errors, UPDATES, f"the Dependabot security updates setting of "
                      f"{repo.full_name}", partial(_security_updates, session, repo))
        found.append(DependabotSettings(
            repo, alerts_enabled=alerts,
            security_updates_enabled=fixes[0] if fixes else None,
            security_updates_paused=fixes[1] if fixes else None, read_errors=errors))
    return found


def _read(session: GithubSession, errors: dict[str, str], setting: str, what: str,
          read: Callable[[], T]) -> T | None:
    """Read one setting; a permission the token lacks is that repository's error."""
    try:
        return session.call(read, what=what, needs=REPO_ADMIN)
    except PermissionMissing as exc:
        errors[setting] = exc.message
        return None


def _alerts_enabled(session: GithubSession, repo: Repository) -> bool:
    """GET /repos/{o}/{r}/vulnerability-alerts: 204 when enabled, 404 when disabled.

    PyGithub's get_vulnerability_alert() reads any other status (403, 429, 5xx) as "disabled",
    so the requester is called directly and every other failure raises.
    """
    try:
        session.client().requester.requestJsonAndCheck(
            "GET", f"/repos/{repo.full_name}/vulnerability-alerts")
    except GithubException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _security_updates(session: GithubSession, repo: Repository) -> tuple[bool, bool]:
    """GET /repos/{o}/{r}/automated-security-fixes: {enabled, paused}; 404 when disabled."""
    try:
        answer = session.client().get_repo(repo.full_name).get_automated_security_fixes()
    except GithubException as exc:
        if exc.status == 404:
            return False, False
        raise
    return bool(answer.get("enabled")), bool(answer.get("paused"))


def _judged(repos: list[DependabotSettings], setting: str,
            what: str) -> Iterator[DependabotSettings | Result]:
    for s in repos:
        if s.repo.archived:
            yield archived(s.repo)
        elif setting in s.read_errors:
            yield Result.error(s.repo.resource_id, f"Could not read {what} of "
                               f"{s.repo.full_name}: {s.read_errors[setting]}",
                               {"repository": s.repo.full_name,
                                "error": s.read_errors[setting]})
        else:
            yield s


@check(id="github.repo.dependabot_alerts_enabled", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_dependabot,
       remediation="Enable Dependabot alerts on the repository (Settings > Code security > "
                   "Dependabot alerts), or for all repositories in the organization's code "
                   "security configuration.")
def dependabot_alerts_enabled(repos: list[DependabotSettings]) -> Iterator[Result]:
    """Dependabot alerts report known vulnerabilities in each repository's dependencies."""
    for s in _judged(repos, ALERTS, "the Dependabot alerts setting"):
        if isinstance(s, Result):
            yield s
            continue
        enabled = bool(s.alerts_enabled)
        yield Result.of(s.repo.resource_id, passing=enabled,
                        title=f"Repository {s.repo.full_name} has Dependabot alerts "
                              + ("enabled" if enabled else "disabled"),
                        data={"repository": s.repo.full_name, "dependabot_alerts": enabled})


@check(id="github.repo.dependabot_security_updates_enabled", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_dependabot,
       remediation="Enable Dependabot security updates (Settings > Code security > Dependabot "
                   "security updates; it needs Dependabot alerts) and do not leave them paused.")
def dependabot_security_updates_enabled(repos: list[DependabotSettings]) -> Iterator[Result]:
    """Dependabot opens pull requests that update vulnerable dependencies, and is not paused."""
    for s in _judged(repos, UPDATES, "the Dependabot security updates setting"):
        if isinstance(s, Result):
            yield s
            continue
        enabled, paused = bool(s.security_updates_enabled), bool(s.security_updates_paused)
        state = "paused" if enabled and paused else "enabled" if enabled else "disabled"
        yield Result.of(s.repo.resource_id, passing=enabled and not paused,
                        title=f"Repository {s.repo.full_name} has Dependabot security updates "
                              f"{state}",
                        data={"repository": s.repo.full_name,
                              "dependabot_security_updates": enabled, "paused": paused})
