"""The GitHub organization itself: its plan, repository counts, two-factor requirement, base
repository permission and who may create public repositories."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import AuthFailed, ConnectorError, Result, Severity, check, collector
from connectors.github.session import NOT_FOUND, ORG_ADMIN, GithubSession


@dataclass(frozen=True)
class Organization:
    """The settings GET /orgs/{org} shows; owner-only fields are None for other tokens."""

    login: str
    name: str | None
    plan: str | None
    public_repos: int | None
    private_repos: int | None
    two_factor_required: bool | None
    default_repository_permission: str | None = None  # none, read, write, admin
    members_can_create_public_repositories: bool | None = None

    @property
    def resource_id(self) -> str:
        return f"github:{self.login}"


def organization(session: GithubSession) -> Organization:
    """The organization, read once per session (collectors share it for its canonical login)."""
    return session.once("organization", lambda: _read_organization(session))


def _read_organization(session: GithubSession) -> Organization:
    login = session.credentials.organization

    def read() -> dict[str, Any]:
        org = session.client().get_organization(login)
        org.complete()
        return dict(org.raw_data)

    try:
        data = session.call(read, what=f"organization {login}", needs=ORG_ADMIN)
    except ConnectorError as exc:
        if exc.code != NOT_FOUND:
            raise
        # Nothing can be audited without the organization: fix the connection, not a check.
        raise AuthFailed(f"GitHub has no organization {login!r} that this token can see: check "
                         "`organization` (the login in https://github.com/<organization>) and "
                         "that the token's owner belongs to it", **exc.details) from None
    plan = data.get("plan") or {}
    return Organization(
        login=str(data.get("login") or login),
        name=data.get("name"),
        plan=plan.get("name") if isinstance(plan, dict) else None,
        public_repos=data.get("public_repos"),
        private_repos=data.get("total_private_repos"),
        two_factor_required=data.get("two_factor_requirement_enabled"),
        default_repository_permission=data.get("default_repository_permission"),
        members_can_create_public_repositories=data.get(
            "members_can_create_public_repositories"),
    )


@collector()
def collect_organization(session: GithubSession) -> Organization:
    """The organization's settings."""
    return organization(session)


@check(id="github.org.two_factor_required", severity=Severity.HIGH,
       resource_type="github.organization", needs=collect_organization,
       remediation="Require two-factor authentication for everyone in the organization "
                   "(Organization settings > Authentication security > Require two-factor "
                   "authentication); members without it are removed, so tell them first.")
def two_factor_required(org: Organization) -> Iterator[Result]:
    """The organization requires two-factor authentication of every member and collaborator."""
    data = {"organization": org.login, "two_factor_requirement_enabled": org.two_factor_required}
    if org.two_factor_required is None:
        yield Result.error(org.resource_id,
                           f"GitHub did not show whether {org.login} requires two-factor "
                           f"authentication: only an organization owner's token sees it "
                           f"(it needs {ORG_ADMIN})", data)
        return
    title = (f"Organization {org.login} requires two-factor authentication"
             if org.two_factor_required
             else f"Organization {org.login} does not require two-factor authentication")
    yield Result.of(org.resource_id, passing=org.two_factor_required, title=title, data=data)


def _owner_only(org: Organization, setting: str, data: Mapping[str, object]) -> Result:
    return Result.error(org.resource_id, f"GitHub did not show {setting} of {org.login}: only an "
                        f"organization owner's token sees it (it needs {ORG_ADMIN})", data)


@check(id="github.org.base_permission_restricted", severity=Severity.MEDIUM,
       resource_type="github.organization", needs=collect_organization,
       remediation="Set the organization's base permission to Read or No permission "
                   "(Organization settings > Member privileges > Base permissions) and grant "
                   "write access through teams.")
def base_permission_restricted(org: Organization) -> Iterator[Result]:
    """Members' base permission on every repository is read or none, not write or admin."""
    permission = org.default_repository_permission
    data = {"organization": org.login, "default_repository_permission": permission}
    if permission is None:
        yield _owner_only(org, "the base repository permission", data)
        return
    restricted = permission in ("none", "read")
    yield Result.of(org.resource_id, passing=restricted, data=data,
                    title=f"Every member of {org.login} has {permission} permission on every "
                          "repository" + ("" if restricted else " by default"))


@check(id="github.org.public_repo_creation_restricted", severity=Severity.MEDIUM,
       resource_type="github.organization", needs=collect_organization,
       remediation="Stop members creating public repositories (Organization settings > Member "
                   "privileges > Repository creation: untick Public); owners still can.")
def public_repo_creation_restricted(org: Organization) -> Iterator[Result]:
    """Only organization owners can create public repositories."""
    allowed = org.members_can_create_public_repositories
    data = {"organization": org.login, "members_can_create_public_repositories": allowed}
    if allowed is None:
        yield _owner_only(org, "who may create public repositories", data)
        return
    title = (f"Members of {org.login} can create public repositories" if allowed
             else f"Only owners of {org.login} can create public repositories")
    yield Result.of(org.resource_id, passing=not allowed, title=title, data=data)
