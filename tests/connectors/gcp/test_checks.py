"""Every Google Cloud check judged as a pure function on plain snapshots."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from connectors.base import Check, Status
from connectors.gcp import GcpConnector
from connectors.gcp.storage import (
    Bucket,
    BucketIamPolicy,
    EncryptionRequirement,
    bucket_access_logging,
    bucket_cmek,
    bucket_no_public_iam,
    bucket_public_access_prevention,
    bucket_retention,
    bucket_uniform_access,
    bucket_versioning,
    resource_id,
)

KEY = "projects/acme-security/locations/us/keyRings/storage/cryptoKeys/backups"
NOT_REQUIRED = EncryptionRequirement(require_cmek=False)
REQUIRED = EncryptionRequirement(require_cmek=True)


def bucket(name: str = "acme-prod-backups", **changes: Any) -> Bucket:
    """A bucket that every check passes; `changes` break one setting."""
    compliant = Bucket(
        name=name, resource_id=resource_id(name), location="US", uniform_access=True,
        public_access_prevention="enforced", versioning=True, retention_period_seconds=30 * 86400,
        retention_locked=False, soft_delete_seconds=7 * 86400,
        logging={"logBucket": "acme-prod-audit-logs", "logObjectPrefix": name},
        default_kms_key_name=KEY)
    return replace(compliant, **changes)


def policy(name: str = "acme-prod-backups", *members: str, read_error: str | None = None,
           ) -> BucketIamPolicy:
    bindings = [{"role": "roles/storage.objectAdmin",
                 "members": ["serviceAccount:deployer@acme-prod.iam.gserviceaccount.com"]}]
    if members:
        bindings.append({"role": "roles/storage.objectViewer", "members": sorted(members)})
    return BucketIamPolicy(name, resource_id(name), [] if read_error else bindings, read_error)


def judge(chk: Check, *snapshots: Any) -> dict[str, Status]:
    results = chk.judge(*snapshots)
    for r in results:
        json.dumps(r.data)
        assert r.title
    return {r.resource_id: r.status for r in results}


BUCKET_CASES = [
    (bucket_uniform_access, {"uniform_access": False}),
    (bucket_public_access_prevention, {"public_access_prevention": "inherited"}),
    (bucket_versioning, {"versioning": False}),
    (bucket_retention, {"retention_period_seconds": None, "soft_delete_seconds": 0}),
    (bucket_access_logging, {"logging": None}),
]


@pytest.mark.parametrize("chk, breaking", BUCKET_CASES, ids=[c.id for c, _ in BUCKET_CASES])
def test_bucket_check_passes_the_compliant_bucket_and_fails_the_broken_one(chk, breaking):
    good, bad = bucket("acme-good"), bucket("acme-bad", **breaking)

    verdicts = judge(chk, [good, bad])

    assert verdicts == {good.resource_id: Status.PASSING, bad.resource_id: Status.FAILING}


def test_every_gcp_check_has_a_pure_test_here():
    tested = {c.id for c, _ in BUCKET_CASES} | {bucket_no_public_iam.id, bucket_cmek.id}
    assert tested == {c.id for c in GcpConnector.checks}
    assert len(GcpConnector.checks) >= 7


def test_uniform_access_title_says_object_acls_apply_when_fine_grained():
    [result] = bucket_uniform_access.judge([bucket(uniform_access=False)])
    assert "fine-grained" in result.title and result.data["uniform_bucket_level_access"] is False


@pytest.mark.parametrize("setting", ["inherited", "unspecified", None])
def test_public_access_prevention_fails_unless_the_bucket_enforces_it(setting):
    [result] = bucket_public_access_prevention.judge([bucket(public_access_prevention=setting)])
    assert result.status == Status.FAILING
    assert result.data["public_access_prevention"] == setting


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_public_iam_fails_a_binding_to_everyone_and_names_it(member):
    private, public = policy("acme-private"), policy("acme-public", member, "group:eng@acme.com")

    verdicts = judge(bucket_no_public_iam, [private, public])

    assert verdicts == {private.resource_id: Status.PASSING, public.resource_id: Status.FAILING}
    [failing] = [r for r in bucket_no_public_iam.judge([public])]
    assert member in failing.title
    assert failing.data["public_bindings"] == [{"role": "roles/storage.objectViewer",
                                                "members": [member]}]


def test_public_iam_counts_a_conditional_binding_to_everyone():
    conditional = BucketIamPolicy("acme-cond", resource_id("acme-cond"), [{
        "role": "roles/storage.objectViewer", "members": ["allUsers"],
        "condition": {"title": "only public/", "expression": "resource.name.startsWith('p')"}}])
    assert judge(bucket_no_public_iam, [conditional]) == {conditional.resource_id:
                                                          Status.FAILING}


def test_public_iam_reports_an_unreadable_policy_as_an_error_naming_the_permission():
    denied = policy("acme-locked", read_error="missing permission storage.buckets.getIamPolicy")
    [result] = bucket_no_public_iam.judge([denied])
    assert result.status == Status.ERROR
    assert "storage.buckets.getIamPolicy" in result.title


@pytest.mark.parametrize("retention, soft_delete", [(30 * 86400, 0), (None, 7 * 86400),
                                                    (0, 604800)])
def test_retention_passes_with_either_a_retention_policy_or_soft_delete(retention, soft_delete):
    b = bucket(retention_period_seconds=retention, soft_delete_seconds=soft_delete)
    [result] = bucket_retention.judge([b])
    assert result.status == Status.PASSING
    assert result.data["soft_delete_seconds"] == soft_delete


def test_retention_title_names_a_locked_policy():
    [result] = bucket_retention.judge([bucket(retention_locked=True, soft_delete_seconds=0)])
    assert "locked retention policy of 30 days" in result.title


def test_cmek_when_not_required_passes_keyed_buckets_and_skips_google_managed_ones():
    keyed, plain = bucket("acme-keyed"), bucket("acme-plain", default_kms_key_name=None)

    verdicts = judge(bucket_cmek, [keyed, plain], NOT_REQUIRED)

    assert verdicts == {keyed.resource_id: Status.PASSING,
                        plain.resource_id: Status.NOT_APPLICABLE}


def test_cmek_when_required_fails_buckets_without_a_kms_key():
    keyed, plain = bucket("acme-keyed"), bucket("acme-plain", default_kms_key_name=None)

    verdicts = judge(bucket_cmek, [keyed, plain], REQUIRED)

    assert verdicts == {keyed.resource_id: Status.PASSING, plain.resource_id: Status.FAILING}
    [failing] = bucket_cmek.judge([plain], REQUIRED)
    assert failing.data == {"bucket": "acme-plain", "location": "US",
                            "default_kms_key_name": None, "require_cmek": True}


def test_no_buckets_means_no_results():
    for chk, _ in BUCKET_CASES:
        assert chk.judge([]) == []
    assert bucket_no_public_iam.judge([]) == []
    assert bucket_cmek.judge([], REQUIRED) == []
