"""AWS IAM: root user MFA, MFA for console users, and the account password policy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from connectors.aws.session import AwsSession, error_code
from connectors.base import Result, Severity, check, collector

MIN_PASSWORD_LENGTH = 14
MAX_PASSWORD_AGE_DAYS = 90
MIN_PASSWORD_REUSE_PREVENTION = 24


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


@collector()
def collect_users(session: AwsSession) -> list[User]:
    """Every IAM user with its console password (login profile) and MFA devices."""
    users = []
    with session.service("iam") as iam:
        for page in iam.get_paginator("list_users").paginate():
            for user in page["Users"]:
                name = user["UserName"]
                profile = _login_profile(iam, name)
                devices = [device["SerialNumber"]
                           for mfa_page in iam.get_paginator("list_mfa_devices").paginate(
                               UserName=name)
                           for device in mfa_page["MFADevices"]]
                users.append(User(
                    name=name, arn=user["Arn"], created=_iso(user.get("CreateDate")),
                    console_password=profile is not None,
                    password_last_used=_iso(user.get("PasswordLastUsed")),
                    mfa_devices=devices,
                ))
    return users


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
       remediation="Have each IAM user with a console password assign an MFA device (IAM > "
                   "Users > Security credentials > Assign MFA device), and enforce it with a "
                   "policy denying actions when aws:MultiFactorAuthPresent is false; better, "
                   "move people to IAM Identity Center.")
def console_users_mfa(users: list[User]) -> Iterator[Result]:
    """IAM users who can sign in to the console have an MFA device."""
    for u in users:
        data = {"user": u.name, "console_password": u.console_password,
                "password_last_used": u.password_last_used, "mfa_devices": u.mfa_devices}
        if not u.console_password:
            yield Result.not_applicable(u.arn, f"User {u.name} has no console password", data)
            continue
        title = (f"Console user {u.name} has MFA ({len(u.mfa_devices)} device"
                 f"{'s' if len(u.mfa_devices) != 1 else ''})" if u.mfa_devices
                 else f"Console user {u.name} has no MFA device")
        yield Result.of(u.arn, passing=bool(u.mfa_devices), title=title, data=data)


def password_policy_gaps(policy: dict[str, Any] | None) -> list[str]:
    """The CIS password requirements the policy misses, in words; empty when it meets them."""
    if policy is None:
        return ["a password policy"]
    gaps = []
    length = int(policy.get("MinimumPasswordLength", 0))
    if length < MIN_PASSWORD_LENGTH:
        gaps.append(f"minimum length {MIN_PASSWORD_LENGTH} (is {length})")
    for key, words in (("RequireUppercaseCharacters", "uppercase letters"),
                       ("RequireLowercaseCharacters", "lowercase letters"),
                       ("RequireNumbers", "numbers"), ("RequireSymbols", "symbols")):
        if not policy.get(key, False):
            gaps.append(words)
    max_age = int(policy.get("MaxPasswordAge", 0) or 0)
    if not 0 < max_age <= MAX_PASSWORD_AGE_DAYS:
        gaps.append(f"expiry within {MAX_PASSWORD_AGE_DAYS} days"
                    + (f" (is {max_age})" if max_age else " (passwords never expire)"))
    reuse = int(policy.get("PasswordReusePrevention", 0) or 0)
    if reuse < MIN_PASSWORD_REUSE_PREVENTION:
        gaps.append(f"reuse prevention of {MIN_PASSWORD_REUSE_PREVENTION} (is {reuse})")
    return gaps


@check(id="aws.iam.password_policy_strength", severity=Severity.MEDIUM,
       resource_type="aws.account", needs=collect_password_policy,
       remediation="Set the account password policy (IAM > Account settings) to a minimum "
                   "length of 14, require uppercase, lowercase, numbers and symbols, expire "
                   "passwords within 90 days and prevent reuse of the last 24, e.g. `aws iam "
                   "update-account-password-policy --minimum-password-length 14 "
                   "--require-uppercase-characters --require-lowercase-characters "
                   "--require-numbers --require-symbols --max-password-age 90 "
                   "--password-reuse-prevention 24`.")
def password_policy_strength(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy meets the CIS strength requirements."""
    gaps = password_policy_gaps(policy.policy)
    if policy.policy is None:
        title = "The account has no password policy"
    elif gaps:
        title = "The password policy is missing " + "; ".join(gaps)
    else:
        title = "The password policy meets the CIS requirements"
    yield Result.of(policy.root_arn, passing=not gaps, title=title,
                    data={"account_id": policy.account_id, "password_policy": policy.policy,
                          "missing": gaps})
