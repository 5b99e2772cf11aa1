"""Outside collaborators: people outside the organization with access to its repositories,
their permission, and whether they still use it.

GitHub's REST API shows no last-activity date for a collaborator (the organization's audit log
and the enterprise's dormant-users report are not REST reads of a repository), so activity is
proxied by the latest commit the person authored in the repository (GET .../commits?author=);
a read-only collaborator who reviews but never commits reads as inactive, which a reviewer
should confirm before removing them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from github import GithubException
from github.NamedUser import NamedUser
from github.PaginatedList import PaginatedList

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.repos import Repository, archived, repositories, unread_setting
from connectors.github.session import REPO_METADATA, GithubSession


@dataclass(frozen=True)
class Collaborator:
    login: str
    role: str  # admin, maintain, write, triage, read or a custom role's name
    admin: bool


@dataclass(frozen=True)
class OutsideCollaborators:
    """The outside collaborators of one repository (None when they could not be read)."""

    repo: Repository
    collaborators: tuple[Collaborator, ...] | None
    read_error: str | None = None


@collector()
def collect_outside_collaborators(session: GithubSession) -> list[OutsideCollaborators]:
    """The outside collaborators of every active repository, with their permission."""
    found = []
    for repo in repositories(session):
        if repo.archived:
            found.append(OutsideCollaborators(repo, None))
            continue
        try:
            users = outside_collaborators(session, repo)
        except PermissionMissing as exc:
            found.append(OutsideCollaborators(repo, None, exc.message))
            continue
        found.append(OutsideCollaborators(repo, tuple(users)))
    return found


def outside_collaborators(session: GithubSession, repo: Repository) -> list[Collaborator]:
    """The repository's outside collaborators, listed once per session for every collector."""
    return session.once(f"outside_collaborators:{repo.full_name}", lambda: session.each(
        partial(_list_outside_collaborators, session, repo), _collaborator,
        what=f"the outside collaborators of {repo.full_name}", needs=REPO_METADATA))


def _list_outside_collaborators(session: GithubSession,
                                repo: Repository) -> PaginatedList[NamedUser]:
    return session.client().get_repo(repo.full_name).get_collaborators(affiliation="outside")


def _collaborator(user: NamedUser) -> Collaborator:
    return Collaborator(login=user.login, role=user.role_name or "",
                        admin=bool(user.permissions and user.permissions.admin))


@check(id="github.repo.outside_collaborator_admins", severity=Severity.HIGH,
       resource_type="github.repository", needs=collect_outside_collaborators,
       remediation="Lower outside collaborators' permission on the repository to Write or less "
                   "(Settings > Collaborators and teams), or make the person an organization "
                   "member subject to its policies; review outside collaborators regularly.")
def outside_collaborator_admins(repos: list[OutsideCollaborators]) -> Iterator[Result]:
    """No one outside the organization administers its repositories."""
    for entry in repos:
        repo = entry.repo
        if repo.archived:
            yield archived(repo)
            continue
        if entry.collaborators is None:
            yield unread_setting(repo, "the outside collaborators of", entry.read_error)
            continue
        admins = sorted(c.login for c in entry.collaborators if c.admin)
        data = {"repository": repo.full_name,
                "outside_collaborators": [{"login": c.login, "role": c.role, "admin": c.admin}
                                          for c in entry.collaborators],
                "outside_admins": admins}
        if admins:
            title = (f"Repository {repo.full_name} gives admin rights to outside "
                     f"collaborator(s) {', '.join(admins)}")
        else:
            title = (f"Repository {repo.full_name} has {len(entry.collaborators)} outside "
                     "collaborator(s), none with admin rights")
        yield Result.of(repo.resource_id, passing=not admins, title=title, data=data)


STALE_AFTER = timedelta(days=90)


@dataclass(frozen=True)
class Activity:
    """An outside collaborator and the date of their latest commit in the repository."""

    login: str
    role: str
    last_commit_at: str | None  # ISO 8601; None: no commit by them in the repository


@dataclass(frozen=True)
class CollaboratorActivity:
    """When each outside collaborator of one repository last committed to it, read at `read_at`
    (so the check judges the snapshot, not the clock)."""

    repo: Repository
    read_at: str
    collaborators: tuple[Activity, ...] | None
    read_error: str | None = None


@collector()
def collect_collaborator_activity(session: GithubSession) -> list[CollaboratorActivity]:
    """Each outside collaborator's latest commit in every active repository."""
    found = []
    for repo in repositories(session):
        # the day of the read, not the second: a stored snapshot stays the same all day
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
        if repo.archived:
            found.append(CollaboratorActivity(repo, now, None))
            continue
        try:
            activity = tuple(Activity(c.login, c.role, session.call(
                partial(_last_commit, session, repo, c.login), needs=REPO_METADATA,
                what=f"the commits of {c.login} in {repo.full_name}"))
                for c in outside_collaborators(session, repo))
        except PermissionMissing as exc:
            found.append(CollaboratorActivity(repo, now, None, exc.message))
            continue
        found.append(CollaboratorActivity(repo, now, activity))
    return found


def _last_commit(session: GithubSession, repo: Repository, login: str) -> str | None:
    """GET /repos/{o}/{r}/commits?author={login}&per_page=1: the newest commit's author date."""
    try:
        _, data = session.client().requester.requestJsonAndCheck(
            "GET", f"/repos/{repo.full_name}/commits", parameters={"author": login, "per_page": 1})
    except GithubException as exc:
        if exc.status == 409:  # "Git Repository is empty."
            return None
        raise
    commits: list[Any] = data if isinstance(data, list) else []
    if not commits:
        return None
    author = (commits[0].get("commit") or {}).get("author") or {}
    return str(author["date"]) if author.get("date") else None


def is_stale(activity: Activity, read_at: str) -> bool:
    """No commit by the person in the repository within STALE_AFTER of the read."""
    if activity.last_commit_at is None:
        return True
    last = datetime.fromisoformat(activity.last_commit_at.replace("Z", "+00:00"))
    return datetime.fromisoformat(read_at) - last > STALE_AFTER


@check(id="github.repo.stale_outside_collaborators", severity=Severity.MEDIUM,
       resource_type="github.repository", needs=collect_collaborator_activity,
       remediation="Remove outside collaborators who no longer work on the repository (Settings "
                   "> Collaborators and teams), after confirming with its owners; review them "
                   "every quarter.")
def stale_outside_collaborators(repos: list[CollaboratorActivity]) -> Iterator[Result]:
    """Every outside collaborator has committed to the repository in the last 90 days."""
    for entry in repos:
        repo = entry.repo
        if repo.archived:
            yield archived(repo)
            continue
        if entry.collaborators is None:
            yield unread_setting(repo, "the outside collaborators' activity in", entry.read_error)
            continue
        stale = sorted(a.login for a in entry.collaborators if is_stale(a, entry.read_at))
        # read_at is left out of the evidence: it changes every sync while nothing else did
        data = {"repository": repo.full_name,
                "stale_after_days": STALE_AFTER.days,
                "activity_proxy": "latest commit authored in the repository",
                "outside_collaborators": [{"login": a.login, "role": a.role,
                                           "last_commit_at": a.last_commit_at}
                                          for a in entry.collaborators],
                "stale": stale}
        if stale:
            title = (f"Repository {repo.full_name} has outside collaborator(s) without a commit "
                     f"in {STALE_AFTER.days} days: {', '.join(stale)}")
        elif entry.collaborators:
            title = (f"Every outside collaborator of {repo.full_name} committed to it in the "
                     f"last {STALE_AFTER.days} days")
        else:
            title = f"Repository {repo.full_name} has no outside collaborators"
        yield Result.of(repo.resource_id, passing=not stale, title=title, data=data)
