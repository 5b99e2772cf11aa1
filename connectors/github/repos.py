"""GitHub repositories: the organization's repository list, visibility and secret scanning."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from github import GithubException
from github.Repository import Repository as GithubRepository

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.config import GithubConfig
from connectors.github.session import REPO_ADMIN, REPO_METADATA, GithubSession

T = TypeVar("T")


@dataclass(frozen=True)
class Repository:
    """One repository as listed, plus its security features (read for active repositories)."""

    full_name: str
    name: str
    visibility: str  # public, private, internal
    archived: bool
    fork: bool
    default_branch: str | None
    security_and_analysis: dict[str, str] | None = None  # feature -> status; admins only
    read_error: str | None = None

    @property
    def resource_id(self) -> str:
        return f"github:{self.full_name}"


def repositories(session: GithubSession) -> list[Repository]:
    """Every repository of the organization, read once per session for all collectors."""
    return session.once("repositories", lambda: _read_repositories(session))


def _read_repositories(session: GithubSession) -> list[Repository]:
    login = session.credentials.organization
    listed = session.each(lambda: session.client().get_organization(login).get_repos(type="all"),
                          _listed, what=f"the repositories of {login}", needs=REPO_METADATA)
    found = []
    for repo in listed:
        full = repo if repo.archived else _read_security(session, repo)
        if full is not None:
            found.append(full)
    return sorted(found, key=lambda r: r.full_name.lower())


def _listed(repo: GithubRepository) -> Repository:
    # every field read here is in GitHub's listing, so PyGithub does not fetch the repository
    return Repository(full_name=repo.full_name, name=repo.name,
                      visibility=repo.visibility or ("private" if repo.private else "public"),
                      archived=bool(repo.archived), fork=bool(repo.fork),
                      default_branch=repo.default_branch)


def _read_security(session: GithubSession, repo: Repository) -> Repository | None:
    """The repository's security_and_analysis settings; None when it vanished since listing."""

    def read() -> dict[str, Any] | None:
        try:
            return dict(session.client().get_repo(repo.full_name).complete().raw_data)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise

    try:
        data = session.call(read, what=f"repository {repo.full_name}", needs=REPO_ADMIN)
    except PermissionMissing as exc:
        return replace(repo, read_error=exc.message)
    if data is None:
        return None
    features = data.get("security_and_analysis")
    statuses = ({name: str(value.get("status")) for name, value in features.items()
                 if isinstance(value, dict) and "status" in value}
                if isinstance(features, dict) else None)
    return replace(repo, security_and_analysis=statuses)


@dataclass(frozen=True)
class RepoItems(Generic[T]):
    """Items listed for one repository (hooks, deploy keys); None when archived or unreadable."""

    repo: Repository
    items: tuple[T, ...] | None
    read_error: str | None = None


def each_repository(session: GithubSession,
                    read: Callable[[Repository], list[T]]) -> list[RepoItems[T]]:
    """`read` over every active repository; a permission it lacks is that repository's error."""
    found: list[RepoItems[T]] = []
    for repo in repositories(session):
        if repo.archived:
            found.append(RepoItems(repo, None))
            continue
        try:
            items = read(repo)
        except PermissionMissing as exc:
            found.append(RepoItems(repo, None, exc.message))
            continue
        found.append(RepoItems(repo, tuple(items)))
    return found


def unread(entry: RepoItems[Any], what: str) -> Result | None:
    """The result of a repository whose items were not read (archived, or an error)."""
    if entry.repo.archived:
        return archived(entry.repo)
    if entry.items is None:
        return unread_setting(entry.repo, f"{what} of", entry.read_error)
    return None


@collector()
def collect_repositories(session: GithubSession) -> list[Repository]:
    """Every repository with its visibility and security features."""
    return repositories(session)


@collector()
def collect_public_repo_allowlist(session: GithubSession, *,
                                  config: GithubConfig) -> frozenset[str]:
    """The connection's list of repositories meant to be public (no I/O: configuration)."""
    return allowlist(config.allowed_public_repos)


def allowlist(value: object) -> frozenset[str]:
    """Repository names or owner/name pairs, from a list or a comma/line separated string."""
    if value is None:
        return frozenset()
    items: Iterable[object] = (value.replace("\n", ",").split(",") if isinstance(value, str)
                               else value if isinstance(value, (list, tuple, set, frozenset))
                               else [value])
    return frozenset(str(item).strip().lower() for item in items if str(item).strip())


def archived(repo: Repository) -> Result:
    """The verdict of every repository check on an archived (read-only) repository."""
    return Result.not_applicable(repo.resource_id,
                                 f"Repository {repo.full_name} is archived (read-only)",
                                 {"repository": repo.full_name, "archived": True})


def unread_setting(repo: Repository, what: str, reason: str | None) -> Result:
    """The verdict of a repository check whose setting could not be read: `what` names it,
    ending in its preposition ("the push protection setting of")."""
    reason = reason or "not read"
    return Result.error(repo.resource_id, f"Could not read {what} {repo.full_name}: {reason}",
                        {"repository": repo.full_name, "error": reason})


def _security_unread(repo: Repository) -> str:
    """Why a repository's security_and_analysis is missing."""
    return repo.read_error or (f"GitHub shows security_and_analysis only to repository "
                               f"admins (the token needs {REPO_ADMIN})")


@check(id="github.repo.public_visibility_allowed", severity=Severity.HIGH,
       resource_type="github.repository", needs=(collect_repositories,
                                                 collect_public_repo_allowlist),
       remediation="Make the repository private (Settings > General > Danger Zone > Change "
                   "visibility) unless it is meant to be open source; if it is, add it to the "
                   "connection's `allowed_public_repos` parameter.")
def public_visibility_allowed(repos: list[Repository],
                              allowed: frozenset[str]) -> Iterator[Result]:
    """Repositories are private or internal unless they are listed as meant to be public."""
    for repo in repos:
        if repo.archived:
            yield archived(repo)
            continue
        listed = {repo.name.lower(), repo.full_name.lower()} & allowed
        data = {"repository": repo.full_name, "visibility": repo.visibility,
                "allowed_public": bool(listed)}
        if repo.visibility != "public":
            title = f"Repository {repo.full_name} is {repo.visibility}"
        elif listed:
            title = f"Repository {repo.full_name} is public, as allowed by allowed_public_repos"
        else:
            title = f"Repository {repo.full_name} is public and not listed as allowed"
        yield Result.of(repo.resource_id, passing=repo.visibility != "public" or bool(listed),
                        title=title, data=data)


@check(id="github.repo.secret_scanning_enabled", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_repositories,
       remediation="Enable secret scanning, and push protection, on the repository (Settings > "
                   "Code security > Secret Protection), or for every repository through an "
                   "organization security configuration.")
def secret_scanning_enabled(repos: list[Repository]) -> Iterator[Result]:
    """Secret scanning looks for committed credentials in every active repository."""
    for repo in repos:
        if repo.archived:
            yield archived(repo)
            continue
        if repo.read_error is not None or repo.security_and_analysis is None:
            yield unread_setting(repo, "the secret scanning setting of", _security_unread(repo))
            continue
        status = repo.security_and_analysis.get("secret_scanning", "disabled")
        push = repo.security_and_analysis.get("secret_scanning_push_protection")
        enabled = status == "enabled"
        title = (f"Repository {repo.full_name} has secret scanning enabled"
                 + (" with push protection" if push == "enabled" else "")
                 if enabled else f"Repository {repo.full_name} has secret scanning {status}")
        yield Result.of(repo.resource_id, passing=enabled, title=title,
                        data={"repository": repo.full_name, "secret_scanning": status,
                              "secret_scanning_push_protection": push})


@check(id="github.repo.secret_scanning_push_protection_enabled", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_repositories,
       remediation="Turn on push protection for secret scanning (Settings > Code security > "
                   "Secret Protection > Push protection), or for every repository through an "
                   "organization security configuration.")
def secret_scanning_push_protection_enabled(repos: list[Repository]) -> Iterator[Result]:
    """Push protection blocks pushes that contain a recognised secret."""
    for repo in repos:
        if repo.archived:
            yield archived(repo)
            continue
        if repo.read_error is not None or repo.security_and_analysis is None:
            yield unread_setting(repo, "the push protection setting of", _security_unread(repo))
            continue
        push = repo.security_and_analysis.get("secret_scanning_push_protection", "disabled")
        title = (f"Repository {repo.full_name} blocks pushes containing secrets"
                 if push == "enabled"
                 else f"Repository {repo.full_name} has secret scanning push protection {push}")
        yield Result.of(repo.resource_id, passing=push == "enabled", title=title,
                        data={"repository": repo.full_name,
                              "secret_scanning": repo.security_and_analysis.get(
                                  "secret_scanning", "disabled"),
                              "secret_scanning_push_protection": push})
