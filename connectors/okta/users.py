"""Okta users: accounts unused for too long, and accounts stuck in a pending or blocked state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from connectors.base import Result, Severity, check, collector
from connectors.okta.session import (
    PAGE_SIZE,
    OktaApi,
    OktaSession,
    OktaSettings,
    Scope,
    parse_time,
    resource_id,
)


class UserStatus(StrEnum):
    """Okta's user lifecycle states."""

    STAGED = "STAGED"
    PROVISIONED = "PROVISIONED"
    ACTIVE = "ACTIVE"
    RECOVERY = "RECOVERY"
    PASSWORD_EXPIRED = "PASSWORD_EXPIRED"  # noqa: S105 - a user status
    LOCKED_OUT = "LOCKED_OUT"
    SUSPENDED = "SUSPENDED"
    DEPROVISIONED = "DEPROVISIONED"


# Accounts a person can sign in with (or is a step away from: reset, unlock, new password).
SIGN_IN_CAPABLE = frozenset({UserStatus.ACTIVE, UserStatus.RECOVERY,
                             UserStatus.PASSWORD_EXPIRED, UserStatus.LOCKED_OUT})
# States an account should pass through, not stay in: never activated, or blocked.
PENDING_OR_BLOCKED = frozenset({UserStatus.STAGED, UserStatus.PROVISIONED, UserStatus.RECOVERY,
                                UserStatus.PASSWORD_EXPIRED, UserStatus.LOCKED_OUT,
                                UserStatus.SUSPENDED})


@dataclass(frozen=True)
class User:
    id: str
    login: str
    status: UserStatus
    created: datetime | None
    activated: datetime | None
    status_changed: datetime | None
    last_login: datetime | None

    def evidence(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login, "status": self.status.value,
                "created": _iso(self.created), "activated": _iso(self.activated),
                "statusChanged": _iso(self.status_changed), "lastLogin": _iso(self.last_login)}


@dataclass(frozen=True)
class Directory:
    """Every user Okta lists (all but DEPROVISIONED), read at `read_at`, with the thresholds."""

    org_host: str
    read_at: datetime
    users: list[User]
    inactive_days: int
    stuck_after_days: int

    def resource(self, user: User) -> str:
        return resource_id(self.org_host, "user", user.id)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _day(value: datetime) -> str:
    return value.date().isoformat()


def _user(raw: dict[str, Any]) -> User:
    profile = raw.get("profile") or {}
    return User(
        id=str(raw["id"]), login=str(profile.get("login") or raw["id"]),
        status=UserStatus(raw.get("status", UserStatus.ACTIVE)),
        created=parse_time(raw.get("created")), activated=parse_time(raw.get("activated")),
        status_changed=parse_time(raw.get("statusChanged")),
        last_login=parse_time(raw.get("lastLogin")),
    )


@collector()
def collect_users(session: OktaSession, *, config: OktaSettings) -> Directory:
    """Every user of the org (Okta's default listing leaves out deprovisioned users)."""

    async def read(api: OktaApi) -> list[dict[str, Any]]:
        return await api.pages("list users", Scope.USERS_READ,
                               lambda after: api.client.list_users(limit=PAGE_SIZE, after=after))

    users = [_user(raw) for raw in session.read(read)]
    return Directory(org_host=session.org_host, read_at=datetime.now(UTC), users=users,
                     inactive_days=config.inactive_days,
                     stuck_after_days=config.stuck_after_days)


@check(id="okta.user.inactive", severity=Severity.MEDIUM, resource_type="okta.user",
       needs=collect_users,
       remediation="Suspend or deactivate accounts nobody has used for 90 days (Directory > "
                   "People, or an Okta Workflows / lifecycle automation for inactive users), "
                   "and review them with their owner; reactivate on request.")
def inactive_users(directory: Directory) -> Iterator[Result]:
    """Active users have signed in within the inactivity window (90 days by default)."""
    window = timedelta(days=directory.inactive_days)
    for user in directory.users:
        rid = directory.resource(user)
        data = {**user.evidence(), "inactiveDays": directory.inactive_days}
        if user.status not in SIGN_IN_CAPABLE:
            yield Result.not_applicable(
                rid, f"User {user.login} is {user.status.value} and cannot sign in", data)
            continue
        if user.last_login is not None:
            stale = directory.read_at - user.last_login > window
            title = (f"User {user.login} last signed in on {_day(user.last_login)}"
                     + (f", over {directory.inactive_days} days ago" if stale else ""))
            yield Result.of(rid, passing=not stale, title=title, data=data)
            continue
        since = user.activated or user.created
        stale = since is None or directory.read_at - since > window
        title = (f"User {user.login} has never signed in"
                 + (f" since activation on {_day(since)}" if since else ""))
        yield Result.of(rid, passing=not stale, title=title, data=data)


@check(id="okta.user.stuck_lifecycle", severity=Severity.LOW, resource_type="okta.user",
       needs=collect_users,
       remediation="Finish or undo the lifecycle step: activate or deactivate staged and "
                   "provisioned users, unlock or deactivate locked-out users, and deactivate "
                   "users suspended for longer than the review period (Directory > People, "
                   "filter by status).")
def stuck_users(directory: Directory) -> Iterator[Result]:
    """No user stays staged, pending activation, locked out, in recovery or suspended for long."""
    window = timedelta(days=directory.stuck_after_days)
    for user in directory.users:
        rid = directory.resource(user)
        data = {**user.evidence(), "stuckAfterDays": directory.stuck_after_days}
        if user.status not in PENDING_OR_BLOCKED:
            yield Result.of(rid, passing=True,
                            title=f"User {user.login} is {user.status.value}", data=data)
            continue
        since = user.status_changed or user.created
        stuck = since is None or directory.read_at - since > window
        title = (f"User {user.login} has been {user.status.value}"
                 + (f" since {_day(since)}" if since else ""))
        yield Result.of(rid, passing=not stuck, title=title, data=data)
