"""The auditor's evidence is live until the audit enters evidence_review, then frozen: each item
is shown as its version at that moment, and later changes are flagged, never mixed in."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.db import session_factory
from engine.models import Connection, ConnectionStatus
from tests.audits.conftest import accepted_auditor, advance, create_audit, ok

CC61 = "/api/v1/auditor/controls/CC6.1/evidence"


def statuses(items: list[dict]) -> dict[str, str]:
    return {i["resource_id"]: i["status"] for i in items}


def test_before_the_freeze_the_auditor_sees_evidence_as_it_stands(client, auth, estate,
                                                                   audit_settings):
    audit_id = create_audit(client, auth)["id"]
    auditor = accepted_auditor(audit_settings, audit_id)
    advance(client, auth, audit_id, "in_progress")
    estate.store("aws.s3.bucket_default_encryption", {"arn:aws:s3:::exports": True})
    ev = ok(client.get(CC61, headers=auditor))
    assert ev["evidence_frozen_at"] is None
    assert statuses(ev["collected"]) == {"arn:aws:iam::123456789012:root": "passing",
                                         "arn:aws:s3:::exports": "passing"}  # logs is gone
    assert ev["newer"] == [] and not any(i["changed_since_freeze"] for i in ev["collected"])


def test_after_the_freeze_changes_removals_and_new_items_are_flagged_not_mixed_in(
        client, auth, estate, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    auditor = accepted_auditor(audit_settings, audit_id)
    estate.store("aws.s3.bucket_default_encryption",      # closed before the freeze
                 {"arn:aws:s3:::logs": True, "arn:aws:s3:::exports": False,
                  "arn:aws:s3:::old": True})
    estate.store("aws.s3.bucket_default_encryption",
                 {"arn:aws:s3:::logs": True, "arn:aws:s3:::exports": False})
    advance(client, auth, audit_id, "in_progress", "evidence_review")
    frozen = ok(client.get(CC61, headers=auditor))

    estate.store("aws.s3.bucket_default_encryption",      # exports fixed, logs removed
                 {"arn:aws:s3:::exports": True, "arn:aws:s3:::old": False})
    estate.store("aws.s3.bucket_default_encryption",      # and exports broken again
                 {"arn:aws:s3:::exports": False, "arn:aws:s3:::old": False})
    ev = ok(client.get(CC61, headers=auditor))

    assert statuses(ev["collected"]) == statuses(frozen["collected"]) == {
        "arn:aws:iam::123456789012:root": "passing", "arn:aws:s3:::logs": "passing",
        "arn:aws:s3:::exports": "failing"}
    shown = {i["resource_id"]: i for i in ev["collected"]}
    before = {i["resource_id"]: i for i in frozen["collected"]}
    assert shown["arn:aws:s3:::exports"]["sha256"] == before["arn:aws:s3:::exports"]["sha256"]
    assert shown["arn:aws:s3:::exports"]["version_id"] == \
        before["arn:aws:s3:::exports"]["version_id"]
    assert shown["arn:aws:s3:::exports"]["changed_since_freeze"] is True
    assert shown["arn:aws:s3:::logs"]["newer"]["removed"] is True
    assert shown["arn:aws:iam::123456789012:root"]["changed_since_freeze"] is False
    assert statuses(ev["newer"]) == {"arn:aws:s3:::old": "failing"}  # re-appeared after
    assert ev["latest_result"] == frozen["latest_result"] == {
        "status": "failing", "passing": 2, "failing": 1, "errors": 0, "total": 3}

    controls = {c["id"]: c for c in ok(client.get("/api/v1/auditor/controls",
                                                  headers=auditor))["controls"]}
    assert controls["CC6.1"]["evidence_count"] == 3
    assert controls["CC6.1"]["newer_evidence_count"] == 3  # exports, logs, old


def test_a_connection_disconnected_after_the_freeze_keeps_its_frozen_evidence(
        client, auth, estate, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    auditor = accepted_auditor(audit_settings, audit_id)
    live_audit = create_audit(client, auth, title="Live")["id"]
    live_auditor = accepted_auditor(audit_settings, live_audit, "live@firm.com")
    advance(client, auth, audit_id, "in_progress", "evidence_review")
    with session_factory(audit_settings)() as s, s.begin():
        conn = s.get_one(Connection, estate.connection_id)
        conn.status, conn.disconnected_at = ConnectionStatus.DISCONNECTED, datetime.now(UTC)
    assert len(ok(client.get(CC61, headers=auditor))["collected"]) == 3
    assert ok(client.get(CC61, headers=live_auditor))["collected"] == []
