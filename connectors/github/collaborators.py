"""Outside collaborators: people outside the organization with access to its repositories."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from github.NamedUser import NamedUser
from github.PaginatedList import PaginatedList

from connectors.base import PermissionMissing, Result, Severity, check, collector
from connectors.github.repos import Repository, archived, repositories
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
            users = session.each(
                partial(_list_outside_collaborators, session, repo), _collaborator,
                what=f"the outside collaborators of {repo.full_name}", needs=REPO_METADATA)
        except PermissionMissing as exc:
            found.append(OutsideCollaborators(repo, None, exc.message))
            continue
        found.append(OutsideCollaborators(repo, tuple(users)))
    return found


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
            reason = entry.read_error or "not read"
            yield Result.error(repo.resource_id, f"Could not read the outside collaborators of "
                               f"{repo.full_name}: {reason}",
                               {"repository": repo.full_name, "error": reason})
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
