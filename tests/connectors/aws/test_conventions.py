"""Prowler's conventions where an auditor expects a row: the root user in the access key checks,
users without the credential passing (plain snapshots)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.aws import iam
from connectors.aws.iam import AccessKeySlot, AccountSummary, CredentialReport, CredentialUser
from connectors.base import Status

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def summary(keys_present):
    return AccountSummary(account_id=ACCOUNT, root_arn=ROOT, root_mfa_enabled=True,
                          root_access_keys_present=keys_present)


def root_row(*ages):
    return CredentialUser(
        name="<root_account>", arn=ROOT, created=None, password_enabled=False,
        password_last_used=None, password_last_changed=None, mfa_active=True,
        access_keys=[AccessKeySlot(slot=i + 1, active=True, last_used=None,
                                   last_rotated=(NOW - timedelta(days=age)).isoformat())
                     for i, age in enumerate(ages)])


def judge(chk, root, keys_present):
    report = CredentialReport(account_id=ACCOUNT, collected_at=NOW, users=[], root=root)
    [result] = chk.judge(report, summary(keys_present))
    assert result.resource_id == ROOT
    return result


def test_the_root_user_without_keys_passes_rotation_and_single_key():
    for chk in (iam.access_key_rotation, iam.single_active_access_key):
        for root in (root_row(), None):  # the report's root row, or the account summary
            result = judge(chk, root, keys_present=False)
            assert result.status is Status.PASSING, chk.id
            assert result.title == "The root user has no active access key"


def test_the_root_users_keys_are_judged_from_its_report_row():
    stale = judge(iam.access_key_rotation, root_row(120), keys_present=True)
    assert stale.status is Status.FAILING and "120 days old" in stale.title
    assert stale.title.startswith("The root user has access keys older than 90 days")
    assert stale.data["user"] == "<root_account>"
    assert judge(iam.access_key_rotation, root_row(5), keys_present=True).status \
        is Status.PASSING
    assert judge(iam.single_active_access_key, root_row(5, 6), True).status is Status.FAILING
    assert judge(iam.single_active_access_key, root_row(5), True).status is Status.PASSING


def test_root_keys_the_report_does_not_describe_are_not_applicable():
    for chk in (iam.access_key_rotation, iam.single_active_access_key):
        result = judge(chk, None, keys_present=True)
        assert result.status is Status.NOT_APPLICABLE
        assert "does not describe" in result.title
