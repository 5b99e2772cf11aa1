"""AWS IAM, from the credential report: access keys made at user setup, and console passwords
and access keys unused for CIS's 45 days (CIS AWS Foundations Benchmark v3.0 1.11, 1.12).

Users without the credential in question pass, as Prowler reports them, so every user has a row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.aws.iam import (
    CredentialReport,
    CredentialUser,
    collect_credential_report,
    idle_credentials,
)
from connectors.base import Result, Severity, check

CIS_UNUSED_DAYS = 45


@check(id="aws.iam.no_initial_access_keys", severity=Severity.MEDIUM,
       resource_type="aws.iam.user", needs=collect_credential_report,
       benchmarks={"cis_aws": ["1.11"]},
       remediation="Delete access keys that were created with a console user and never used "
                   "(`aws iam delete-access-key --user-name USER --access-key-id KEY`); create "
                   "a key only when the person needs one, and prefer roles.")
def no_initial_access_keys(report: CredentialReport) -> Iterator[Result]:
    """Console users have no active access key that was never used (made at user setup)."""
    for u in report.users:
        unused = [k.slot for k in u.active_keys if k.last_used is None]
        flagged = u.password_enabled and bool(unused)
        if flagged:
            title = (f"Console user {u.name} has never used access key "
                     + " and ".join(str(s) for s in unused))
        elif u.password_enabled:
            title = f"Console user {u.name} has no unused access key"
        else:
            title = f"User {u.name} has no console password"
        yield Result.of(u.arn, passing=not flagged, title=title,
                        data={"user": u.name, "password_enabled": u.password_enabled,
                              "never_used_active_keys": unused})


def _idle(u: CredentialUser, report: CredentialReport, kind: str) -> list[dict[str, Any]]:
    return [c for c in idle_credentials(u, report.collected_at)
            if str(c["credential"]).startswith(kind)]


def _describe(item: dict[str, Any]) -> str:
    days = item["idle_days"]
    return (f"{item['credential']} unused for {days} days" if item["last_used"]
            else f"{item['credential']} never used in {days} days")


@check(id="aws.iam.console_password_unused_45_days", severity=Severity.MEDIUM,
       resource_type="aws.iam.user", needs=collect_credential_report,
       benchmarks={"cis_aws": ["1.12"]},
       remediation="Remove console passwords unused for 45 days (`aws iam delete-login-profile "
                   "--user-name USER`); remove the users of people who left.")
def console_password_unused_45_days(report: CredentialReport) -> Iterator[Result]:
    """IAM users' console passwords were used within the last 45 days."""
    for u in report.users:
        found = _idle(u, report, "console password")
        stale = [c for c in found if (c["idle_days"] or 0) >= CIS_UNUSED_DAYS]
        title = (f"User {u.name}'s " + _describe(stale[0]) if stale
                 else f"User {u.name} used the console password within {CIS_UNUSED_DAYS} days"
                 if found else f"User {u.name} has no console password")
        yield Result.of(u.arn, passing=not stale, title=title,
                        data={"user": u.name, "credentials": found,
                              "max_idle_days": CIS_UNUSED_DAYS})


@check(id="aws.iam.access_keys_unused_45_days", severity=Severity.MEDIUM,
       resource_type="aws.iam.user", needs=collect_credential_report,
       benchmarks={"cis_aws": ["1.12"]},
       remediation="Deactivate access keys unused for 45 days (`aws iam update-access-key "
                   "--status Inactive`), then delete them once nothing breaks.")
def access_keys_unused_45_days(report: CredentialReport) -> Iterator[Result]:
    """IAM users' active access keys were used within the last 45 days."""
    for u in report.users:
        found = _idle(u, report, "access key")
        stale = [c for c in found if (c["idle_days"] or 0) >= CIS_UNUSED_DAYS]
        title = (f"User {u.name}'s " + ", ".join(_describe(c) for c in stale) if stale
                 else f"User {u.name} used every active access key within {CIS_UNUSED_DAYS} "
                      "days" if found else f"User {u.name} has no active access key")
        yield Result.of(u.arn, passing=not stale, title=title,
                        data={"user": u.name, "credentials": found,
                              "max_idle_days": CIS_UNUSED_DAYS})
