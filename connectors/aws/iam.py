"""AWS IAM: root user MFA, console users' MFA, the password policy, access key age and use,
and customer-managed policies granting full administrative access."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from connectors.aws.policy import as_list, parse_document, statements
from connectors.aws.session import AwsSession, error_code
from connectors.base import ProviderUnavailable, Result, Severity, Shard, check, collector

MIN_PASSWORD_LENGTH = 14
MAX_PASSWORD_AGE_DAYS = 90
MIN_PASSWORD_REUSE_PREVENTION = 24
MAX_ACCESS_KEY_AGE_DAYS = 90
UNUSED_CREDENTIAL_DAYS = 90
_REPORT_ROOT_ROW = "<root_account>"
# Waits between GenerateCredentialReport calls until the report is COMPLETE (~30 s in all).
_REPORT_POLL_SECONDS = (0.25, 0.5, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0)


@dataclass(frozen=True)
class AccountSummary:
    """The account-wide IAM facts the root user checks judge (from GetAccountSummary)."""

    account_id: str
    root_arn: str
    root_mfa_enabled: bool
    root_access_keys_present: bool


@dataclass(frozen=True)
class User:
    """One IAM user: whether it can sign in to the console, and its MFA devices."""

    name: str
    arn: str
    created: str | None
    console_password: bool
    password_last_used: str | None
    mfa_devices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PasswordPolicy:
    """The account password policy; `policy` is None when the account has none."""

    account_id: str
    root_arn: str
    policy: dict[str, Any] | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@collector()
def collect_account_summary(session: AwsSession) -> AccountSummary:
    """IAM's account summary: whether the root user has MFA and access keys."""
    identity = session.identity()
    with session.service("iam") as iam:
        summary = iam.get_account_summary()["SummaryMap"]
    return AccountSummary(
        account_id=identity.account_id, root_arn=identity.root_arn,
        root_mfa_enabled=summary.get("AccountMFAEnabled", 0) == 1,
        root_access_keys_present=summary.get("AccountAccessKeysPresent", 0) > 0,
    )


@collector(shardable=True)
def collect_users(session: AwsSession, *, shard: Shard) -> list[User]:
    """Every IAM user (of the shard) with its console password (login profile) and MFA devices."""
    with session.service("iam") as iam:
        listed = [user for page in iam.get_paginator("list_users").paginate()
                  for user in page["Users"] if shard.owns(user["UserName"])]
    return session.fan_out(lambda user: _read_user(session, user), listed)


def _read_user(session: AwsSession, user: dict[str, Any]) -> User:
    """One user's login profile and MFA devices (two reads, fanned out across users)."""
    name = user["UserName"]
    with session.service("iam") as iam:
        profile = _login_profile(iam, name)
        devices = [device["SerialNumber"]
                   for mfa_page in iam.get_paginator("list_mfa_devices").paginate(UserName=name)
                   for device in mfa_page["MFADevices"]]
    return User(name=name, arn=user["Arn"], created=_iso(user.get("CreateDate")),
                console_password=profile is not None,
                password_last_used=_iso(user.get("PasswordLastUsed")), mfa_devices=devices)


def _login_profile(iam: Any, name: str) -> dict[str, Any] | None:
    """The user's login profile, None when the user has no console password."""
    try:
        return dict(iam.get_login_profile(UserName=name)["LoginProfile"])
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


@collector()
def collect_password_policy(session: AwsSession) -> PasswordPolicy:
    """The account password policy (NoSuchEntity means the account has none)."""
    identity = session.identity()
    with session.service("iam") as iam:
        policy: dict[str, Any] | None
        try:
            policy = dict(iam.get_account_password_policy()["PasswordPolicy"])
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            policy = None
    return PasswordPolicy(account_id=identity.account_id, root_arn=identity.root_arn,
                          policy=policy)


@check(id="aws.iam.root_account_mfa", severity=Severity.CRITICAL,
       resource_type="aws.account", needs=collect_account_summary,
       benchmarks={"cis_aws": ["1.5"]},
       remediation="Sign in as the root user, open Security credentials and assign an MFA "
                   "device (a hardware key or passkey is best); keep it in a safe place and "
                   "stop using the root user for daily work.")
def root_account_mfa(summary: AccountSummary) -> Iterator[Result]:
    """The root user signs in with multi-factor authentication."""
    title = ("The root user has MFA enabled" if summary.root_mfa_enabled
             else "The root user has no MFA device")
    yield Result.of(summary.root_arn, passing=summary.root_mfa_enabled, title=title,
                    data={"account_id": summary.account_id,
                          "AccountMFAEnabled": int(summary.root_mfa_enabled),
                          "AccountAccessKeysPresent": int(summary.root_access_keys_present)})


@check(id="aws.iam.console_users_mfa", severity=Severity.HIGH,
       resource_type="aws.iam.user", needs=collect_users,
       benchmarks={"cis_aws": ["1.10"]},
       remediation="Have each IAM user with a console password assign an MFA device (IAM > "
                   "Users > Security credentials > Assign MFA device), and enforce it with a "
                   "policy denying actions when aws:MultiFactorAuthPresent is false; better, "
                   "move people to IAM Identity Center.")
def console_users_mfa(users: list[User]) -> Iterator[Result]:
    """IAM users who can sign in to the console have an MFA device."""
    for u in users:
        data = {"user": u.name, "console_password": u.console_password,
                "password_last_used": u.password_last_used, "mfa_devices": u.mfa_devices}
        if not u.console_password:  # as Prowler reports it: nothing to sign in with, a pass
            yield Result.of(u.arn, passing=True, data=data,
                            title=f"User {u.name} has no console password, so needs no MFA")
            continue
        title = (f"Console user {u.name} has MFA ({len(u.mfa_devices)} device"
                 f"{'s' if len(u.mfa_devices) != 1 else ''})" if u.mfa_devices
                 else f"Console user {u.name} has no MFA device")
        yield Result.of(u.arn, passing=bool(u.mfa_devices), title=title, data=data)


# --- the credential report: access key age, unused credentials, active keys per user ----------

@dataclass(frozen=True)
class AccessKeySlot:
    """One of a user's two access key slots in the credential report (ISO 8601 timestamps)."""

    slot: int
    active: bool
    last_rotated: str | None
    last_used: str | None


@dataclass(frozen=True)
class CredentialUser:
    """One user's row of the IAM credential report (ISO 8601 timestamps, None when absent)."""

    name: str
    arn: str
    created: str | None
    password_enabled: bool
    password_last_used: str | None
    password_last_changed: str | None
    mfa_active: bool
    access_keys: list[AccessKeySlot] = field(default_factory=list)

    @property
    def active_keys(self) -> list[AccessKeySlot]:
        return [k for k in self.access_keys if k.active]


@dataclass(frozen=True)
class CredentialReport:
    """The IAM credential report and the moment it was read, which every age is judged from."""

    account_id: str
    collected_at: datetime
    users: list[CredentialUser] = field(default_factory=list)
    root: CredentialUser | None = None
    """The root user's row (<root_account>), judged apart from the IAM users."""


def _report_time(value: str | None) -> str | None:
    """A report timestamp as ISO 8601; None for N/A, no_information and not_supported."""
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _credential_user(row: Mapping[str, str]) -> CredentialUser:
    return CredentialUser(
        name=row["user"], arn=row["arn"], created=_report_time(row.get("user_creation_time")),
        password_enabled=row.get("password_enabled") == "true",
        password_last_used=_report_time(row.get("password_last_used")),
        password_last_changed=_report_time(row.get("password_last_changed")),
        mfa_active=row.get("mfa_active") == "true",
        access_keys=[AccessKeySlot(
            slot=slot, active=row.get(f"access_key_{slot}_active") == "true",
            last_rotated=_report_time(row.get(f"access_key_{slot}_last_rotated")),
            last_used=_report_time(row.get(f"access_key_{slot}_last_used_date")),
        ) for slot in (1, 2)],
    )


@collector()
def collect_credential_report(session: AwsSession) -> CredentialReport:
    """Every user's credentials from the IAM credential report (generated when stale)."""
    account_id = session.identity().account_id
    with session.service("iam") as iam:
        for wait in (*_REPORT_POLL_SECONDS, None):
            if iam.generate_credential_report().get("State") == "COMPLETE":
                break
            if wait is None:
                raise ProviderUnavailable("IAM did not finish the credential report in time; "
                                          "the next sync reads it", service="iam")
            time.sleep(wait)
        content = iam.get_credential_report()["Content"]
    # The day it was read (midnight UTC): ages are judged in whole days, and an unchanged
    # account's snapshot stays the same all day, so it is stored once a day, not every sync.
    # (The report's GeneratedTime would do too, but emulators answer a fixed one.)
    collected_at = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
    rows = [_credential_user(row) for row in csv.DictReader(io.StringIO(text))]
    users = [u for u in rows if u.name != _REPORT_ROOT_ROW]
    root = next((u for u in rows if u.name == _REPORT_ROOT_ROW), None)
    return CredentialReport(account_id=account_id, collected_at=collected_at,
                            users=sorted(users, key=lambda u: u.arn), root=root)


def days_since(timestamp: str, now: datetime) -> int:
    """Whole days from an ISO 8601 timestamp to now."""
    return (now - datetime.fromisoformat(timestamp)).days


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _key_age(key: AccessKeySlot, now: datetime) -> dict[str, Any]:
    age = days_since(key.last_rotated, now) if key.last_rotated else None
    return {"key": key.slot, "last_rotated": key.last_rotated, "age_days": age}


def root_access_keys(report: CredentialReport,
                     summary: AccountSummary) -> list[AccessKeySlot] | None:
    """The root user's active access keys from its credential report row; without the row,
    none when IAM's account summary counts none, else None (present, but not described)."""
    if report.root is not None:
        return report.root.active_keys
    return None if summary.root_access_keys_present else []


def _root_key_row(summary: AccountSummary, keys: list[AccessKeySlot] | None,
                  data: dict[str, Any]) -> Result | None:
    """The root user's row when it has no access key to judge (passing) or keys the
    credential report does not describe (not applicable); None when its keys are judged."""
    if keys is None:
        return Result.not_applicable(summary.root_arn, "The root user has access keys the "
                                     "credential report does not describe", data)
    if not keys:
        return Result.of(summary.root_arn, passing=True, data=data,
                         title="The root user has no active access key")
    return None


@check(id="aws.iam.access_key_rotation", severity=Severity.MEDIUM,
       resource_type="aws.iam.user", needs=(collect_credential_report, collect_account_summary),
       benchmarks={"cis_aws": ["1.14"]},
       remediation="Rotate access keys older than 90 days: create a second key, move every "
                   "client to it, deactivate and then delete the old one (`aws iam "
                   "create-access-key`, `aws iam update-access-key --status Inactive`, `aws iam "
                   "delete-access-key`); better, replace long-lived keys with roles.")
def access_key_rotation(report: CredentialReport, summary: AccountSummary) -> Iterator[Result]:
    """IAM users' and the root user's active access keys are at most 90 days old."""
    now = report.collected_at
    root = root_access_keys(report, summary)
    root_data = {"user": _REPORT_ROOT_ROW, "max_age_days": MAX_ACCESS_KEY_AGE_DAYS,
                 "active_access_keys": [_key_age(k, now) for k in root or []]}
    row = _root_key_row(summary, root, root_data)
    owners = [(u.name, f"User {u.name}", u.arn, u.active_keys) for u in report.users]
    if row is not None:
        yield row
    else:
        owners.insert(0, (_REPORT_ROOT_ROW, "The root user", summary.root_arn, root or []))
    for name, who, arn, active in owners:
        keys = [_key_age(k, now) for k in active]
        data = {"user": name, "active_access_keys": keys,
                "max_age_days": MAX_ACCESS_KEY_AGE_DAYS}
        if not keys:  # as Prowler reports it: no key to rotate, a pass
            yield Result.of(arn, passing=True, data=data,
                            title=f"{who} has no active access key")
            continue
        stale = [k for k in keys if k["age_days"] is not None
                 and k["age_days"] > MAX_ACCESS_KEY_AGE_DAYS]
        if stale:
            title = (f"{who} has access keys older than {MAX_ACCESS_KEY_AGE_DAYS} days: "
                     + ", ".join(f"key {k['key']} is {_plural(k['age_days'], 'day')} old"
                                 for k in stale))
        else:
            oldest = max((k["age_days"] for k in keys if k["age_days"] is not None), default=0)
            title = (f"{who}'s active access keys are at most "
                     f"{_plural(oldest, 'day')} old")
        yield Result.of(arn, passing=not stale, title=title, data=data)


def idle_credentials(u: CredentialUser, now: datetime) -> list[dict[str, Any]]:
    """The user's enabled credentials with the days since each was last used (or set up)."""
    found: list[dict[str, Any]] = []
    if u.password_enabled:
        since = u.password_last_changed or u.created
        found.append({"credential": "console password", "last_used": u.password_last_used,
                      "enabled_since": since})
    for k in u.active_keys:
        found.append({"credential": f"access key {k.slot}", "last_used": k.last_used,
                      "enabled_since": k.last_rotated})
    for item in found:
        reference = item["last_used"] or item["enabled_since"]
        item["idle_days"] = days_since(reference, now) if reference else None
    return found


def _describe_idle(item: Mapping[str, Any]) -> str:
    days = _plural(item["idle_days"], "day")
    return (f"{item['credential']} (last used {days} ago)" if item["last_used"]
            else f"{item['credential']} (never used, enabled {days} ago)")


@check(id="aws.iam.unused_credentials", severity=Severity.MEDIUM,
       resource_type="aws.iam.user", needs=collect_credential_report,
       remediation="Disable credentials nobody used for 90 days: remove the console password "
                   "(`aws iam delete-login-profile`) and deactivate idle access keys (`aws iam "
                   "update-access-key --status Inactive`); remove users who left.")
def unused_credentials(report: CredentialReport) -> Iterator[Result]:
    """IAM users' console passwords and access keys have been used within 90 days."""
    for u in report.users:
        credentials = idle_credentials(u, report.collected_at)
        data = {"user": u.name, "created": u.created, "credentials": credentials,
                "max_idle_days": UNUSED_CREDENTIAL_DAYS}
        if not credentials:  # nothing that could sit unused: a pass, as the CIS 1.12 checks
            yield Result.of(u.arn, passing=True, data=data, title=f"User {u.name} has no "
                            "console password or active access key to leave unused")
            continue
        idle = [c for c in credentials
                if c["idle_days"] is not None and c["idle_days"] >= UNUSED_CREDENTIAL_DAYS]
        title = (f"User {u.name} has credentials unused for {UNUSED_CREDENTIAL_DAYS}+ days: "
                 + ", ".join(_describe_idle(c) for c in idle) if idle
                 else f"User {u.name} used every credential within {UNUSED_CREDENTIAL_DAYS} days")
        yield Result.of(u.arn, passing=not idle, title=title, data=data)


@check(id="aws.iam.single_active_access_key", severity=Severity.LOW,
       resource_type="aws.iam.user", needs=(collect_credential_report, collect_account_summary),
       benchmarks={"cis_aws": ["1.13"]},
       remediation="Keep one active access key per user: after a rotation, deactivate and "
                   "delete the old key (`aws iam update-access-key --status Inactive` then "
                   "`aws iam delete-access-key`).")
def single_active_access_key(report: CredentialReport,
                             summary: AccountSummary) -> Iterator[Result]:
    """IAM users and the root user have at most one active access key."""
    root = root_access_keys(report, summary)
    row = _root_key_row(summary, root, {"user": _REPORT_ROOT_ROW,
                                        "active_access_keys": [k.slot for k in root or []]})
    owners = [(u.name, f"User {u.name}", u.arn, u.active_keys) for u in report.users]
    if row is not None:
        yield row
    else:
        owners.insert(0, (_REPORT_ROOT_ROW, "The root user", summary.root_arn, root or []))
    for name, who, arn, keys in owners:
        active = [k.slot for k in keys]
        data = {"user": name, "active_access_keys": active}
        title = (f"{who} has {len(active)} active access keys" if len(active) > 1
                 else f"{who} has one active access key" if active
                 else f"{who} has no active access key")
        yield Result.of(arn, passing=len(active) <= 1, title=title, data=data)


# --- customer-managed policies ---------------------------------------------------------------

@dataclass(frozen=True)
class ManagedPolicy:
    """One customer-managed policy with the document of its default version."""

    name: str
    arn: str
    default_version: str
    attachment_count: int
    document: dict[str, Any]


@collector()
def collect_customer_policies(session: AwsSession) -> list[ManagedPolicy]:
    """Every customer-managed policy with its default version's document (one paged call)."""
    policies = []
    with session.service("iam") as iam:
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["LocalManagedPolicy"])
        for page in pages:
            for policy in page.get("Policies", []):
                default = next((v for v in policy.get("PolicyVersionList", [])
                                if v.get("IsDefaultVersion")), None)
                policies.append(ManagedPolicy(
                    # the name is the ARN's last path segment (some emulators omit PolicyName)
                    name=policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1],
                    arn=policy["Arn"],
                    default_version=policy.get("DefaultVersionId", ""),
                    attachment_count=int(policy.get("AttachmentCount", 0)),
                    document=parse_document(default["Document"]) if default else {},
                ))
    return sorted(policies, key=lambda p: p.arn)


def full_admin_statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements allowing every action (`*` or `*:*`) on every resource (`*`)."""
    return [s for s in statements(document)
            if s.get("Effect") == "Allow"
            and {str(a) for a in as_list(s.get("Action"))} & {"*", "*:*"}
            and "*" in as_list(s.get("Resource"))]


@check(id="aws.iam.no_full_admin_policies", severity=Severity.HIGH,
       resource_type="aws.iam.policy", needs=collect_customer_policies,
       benchmarks={"cis_aws": ["1.16"]},
       remediation="Replace `\"Action\": \"*\", \"Resource\": \"*\"` in customer-managed "
                   "policies with the actions and resources each job needs; keep full "
                   "administration to a break-glass role, and detach the policy from users, "
                   "groups and roles meanwhile.")
def no_full_admin_policies(policies: list[ManagedPolicy]) -> Iterator[Result]:
    """Customer-managed IAM policies do not allow every action on every resource ("*:*")."""
    for p in policies:
        granting = full_admin_statements(p.document)
        attached = (f"attached {_plural(p.attachment_count, 'time')}" if p.attachment_count
                    else "not attached")
        title = (f"Policy {p.name} allows every action on every resource (*:*), {attached}"
                 if granting else f"Policy {p.name} does not grant full administrative access")
        yield Result.of(p.arn, passing=not granting, title=title,
                        data={"policy": p.name, "default_version": p.default_version,
                              "attachment_count": p.attachment_count, "document": p.document,
                              "full_admin_statements": granting})
