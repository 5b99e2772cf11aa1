"""Okta administrators: how many people hold the Super Administrator role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.base import Result, Severity, check, collector
from connectors.okta.session import (
    PAGE_SIZE,
    OktaApi,
    OktaSession,
    OktaSettings,
    Scope,
    resource_id,
)

SUPER_ADMIN = "SUPER_ADMIN"


@dataclass(frozen=True)
class Admin:
    """A user holding an admin role, with how each role reached them (USER or GROUP)."""

    id: str
    login: str
    roles: dict[str, str]  # role type -> assignment type


@dataclass(frozen=True)
class AdminRoster:
    """Every user with an admin role assignment, and the super admin threshold."""

    org_host: str
    admins: list[Admin]
    max_super_admins: int

    @property
    def super_admins(self) -> list[Admin]:
        return sorted((a for a in self.admins if SUPER_ADMIN in a.roles),
                      key=lambda a: (a.login, a.id))


@collector()
def collect_admins(session: OktaSession, *, config: OktaSettings) -> AdminRoster:
    """Users with role assignments (the IAM assignees list) and the roles of each."""

    async def read(api: OktaApi) -> list[Admin]:
        assignees: list[dict[str, Any]] = []
        after: str | None = None
        while True:  # this list pages through `_links.next` in its body, not a Link header
            body = await api.call(
                "list users with admin role assignments", Scope.ROLES_READ,
                partial(api.client.list_users_with_role_assignments, after=after,
                        limit=PAGE_SIZE))
            body = body or {}
            assignees.extend(body.get("value") or [])
            next_href = ((body.get("_links") or {}).get("next") or {}).get("href")
            cursor = parse_qs(urlsplit(next_href).query).get("after", [None])[0] \
                if next_href else None
            if not cursor or cursor == after:
                break
            after = cursor
        admins = []
        for assignee in assignees:
            user_id = str(assignee["id"])
            roles = await api.call(
                "list a user's admin roles", Scope.ROLES_READ,
                partial(api.client.list_assigned_roles_for_user, user_id))
            held = {}
            for role in roles or []:
                if role.get("status", "ACTIVE") == "ACTIVE":
                    held[str(role.get("type"))] = str(role.get("assignmentType") or "USER")
            login = user_id
            if SUPER_ADMIN in held:  # name super admins for the evidence
                user = await api.call("read a user", Scope.USERS_READ,
                                      partial(api.client.get_user, user_id))
                login = str(((user or {}).get("profile") or {}).get("login") or user_id)
            admins.append(Admin(id=user_id, login=login, roles=held))
        return admins

    return AdminRoster(org_host=session.org_host, admins=session.read(read),
                       max_super_admins=config.max_super_admins)


@check(id="okta.admin.super_admin_count", severity=Severity.HIGH, resource_type="okta.org",
       needs=collect_admins,
       remediation="Keep Super Administrator to a few named people (4 by default; set "
                   "max_super_admins): give the others the narrowest admin role that fits "
                   "(Security > Administrators), and review the list every quarter.")
def super_admin_count(roster: AdminRoster) -> Iterator[Result]:
    """No more users hold the Super Administrator role than the threshold (4 by default)."""
    supers = roster.super_admins
    count, limit = len(supers), roster.max_super_admins
    title = (f"{count} user{'s' if count != 1 else ''} hold Super Administrator"
             + (f", more than the {limit} allowed" if count > limit else f" (at most {limit})"))
    yield Result.of(
        resource_id(roster.org_host, "org", ""), passing=count <= limit, title=title,
        data={"superAdmins": [{"id": a.id, "login": a.login,
                               "assignmentType": a.roles[SUPER_ADMIN]} for a in supers],
              "superAdminCount": count, "maxSuperAdmins": limit,
              "adminsWithRoles": len(roster.admins)})
