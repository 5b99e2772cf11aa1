"""AWS IAM, the root user: not in daily use, no access keys, and a hardware (not virtual) MFA
device.

CIS AWS Foundations Benchmark v3.0 1.4, 1.6 and 1.7. The root user is judged as one resource, the
account's root principal, as Prowler and the other root checks do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from connectors.aws.iam import (
    AccountSummary,
    CredentialReport,
    collect_account_summary,
    collect_credential_report,
)
from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector

ROOT_VIRTUAL_MFA_NAME = "root-account-mfa-device"


@dataclass(frozen=True)
class VirtualMfaDevices:
    """The account's assigned virtual MFA devices: serial number → the ARN of its user."""

    account_id: str
    root_arn: str
    assigned: dict[str, str | None] = field(default_factory=dict)

    @property
    def root_devices(self) -> list[str]:
        """The virtual devices assigned to the root user."""
        return sorted(serial for serial, user in self.assigned.items()
                      if user == self.root_arn
                      or serial.endswith(f":mfa/{ROOT_VIRTUAL_MFA_NAME}"))


@collector()
def collect_virtual_mfa_devices(session: AwsSession) -> VirtualMfaDevices:
    """Every assigned virtual MFA device with the user it belongs to."""
    identity = session.identity()
    with session.service("iam") as iam:
        devices = {device["SerialNumber"]: (device.get("User") or {}).get("Arn")
                   for page in iam.get_paginator("list_virtual_mfa_devices").paginate(
                       AssignmentStatus="Assigned")
                   for device in page["VirtualMFADevices"]}
    return VirtualMfaDevices(account_id=identity.account_id, root_arn=identity.root_arn,
                             assigned=devices)


@check(id="aws.iam.no_root_access_keys", severity=Severity.CRITICAL,
       resource_type="aws.account", needs=(collect_credential_report, collect_account_summary),
       benchmarks={"cis_aws": ["1.4"]},
       remediation="Sign in as the root user, open Security credentials, and deactivate then "
                   "delete every access key; use IAM roles or IAM Identity Center for "
                   "programmatic access instead.")
def no_root_access_keys(report: CredentialReport, summary: AccountSummary) -> Iterator[Result]:
    """The root user has no active access key."""
    if report.root is not None:
        active = [k.slot for k in report.root.active_keys]
        source = "credential report"
    else:  # a report without the root row: IAM's account summary counts the root keys
        active = [1] if summary.root_access_keys_present else []
        source = "account summary"
    title = ("The root user has no active access key" if not active
             else f"The root user has {len(active)} active access key"
                  f"{'s' if len(active) != 1 else ''}")
    yield Result.of(summary.root_arn, passing=not active, title=title,
                    data={"account_id": summary.account_id, "source": source,
                          "active_root_access_keys": active,
                          "AccountAccessKeysPresent": int(summary.root_access_keys_present)})


@check(id="aws.iam.root_hardware_mfa", severity=Severity.CRITICAL,
       resource_type="aws.account", needs=(collect_account_summary, collect_virtual_mfa_devices),
       benchmarks={"cis_aws": ["1.6"]},
       remediation="Give the root user a hardware MFA device (a FIDO security key or a "
                   "hardware TOTP token) under Security credentials > Assign MFA device, then "
                   "remove the virtual (authenticator app) device; keep the key in a safe.")
def root_hardware_mfa(summary: AccountSummary, devices: VirtualMfaDevices) -> Iterator[Result]:
    """The root user signs in with a hardware MFA device, not a virtual one."""
    virtual = devices.root_devices
    if not summary.root_mfa_enabled:
        title = "The root user has no MFA device"
    elif virtual:
        title = "The root user's MFA device is virtual (" + ", ".join(virtual) + ")"
    else:
        title = "The root user has a hardware MFA device"
    yield Result.of(summary.root_arn, passing=summary.root_mfa_enabled and not virtual,
                    title=title,
                    data={"account_id": summary.account_id,
                          "AccountMFAEnabled": int(summary.root_mfa_enabled),
                          "root_virtual_mfa_devices": virtual})


ROOT_RECENT_USE_DAYS = 1  # as Prowler: a root sign-in or key use within a day is daily use


@check(id="aws.iam.root_not_used", severity=Severity.HIGH,
       resource_type="aws.account", needs=(collect_credential_report, collect_account_summary),
       benchmarks={"cis_aws": ["1.7"]},
       remediation="Stop using the root user for daily and administrative work: give people "
                   "IAM Identity Center or IAM roles with the permissions they need, keep the "
                   "root credentials for the few tasks only root can do, and alert on root use "
                   "(CIS 4.3).")
def root_not_used(report: CredentialReport, summary: AccountSummary) -> Iterator[Result]:
    """The root user was not used (console sign-in or access key) within the last day."""
    root = report.root
    if root is None:
        yield Result.not_applicable(summary.root_arn, "The credential report has no root user "
                                    "row, so the root user's last use is unknown",
                                    {"account_id": summary.account_id})
        return
    uses = {"console password": root.password_last_used,
            **{f"access key {k.slot}": k.last_used for k in root.access_keys}}
    used = {what: when for what, when in uses.items() if when}
    last = max(used.items(), key=lambda item: item[1], default=None)
    days = ((report.collected_at - datetime.fromisoformat(last[1])).days
            if last is not None else None)
    recent = days is not None and days <= ROOT_RECENT_USE_DAYS
    if last is None:
        title = "The root user has never been used"
    elif recent:
        title = f"The root user's {last[0]} was used {days} day{'s' if days != 1 else ''} ago"
    else:
        title = f"The root user was last used {days} days ago ({last[0]})"
    yield Result.of(summary.root_arn, passing=not recent, title=title,
                    data={"account_id": summary.account_id, "last_used": used,
                          "days_since_last_use": days,
                          "max_recent_days": ROOT_RECENT_USE_DAYS})
