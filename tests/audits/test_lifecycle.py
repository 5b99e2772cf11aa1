"""Seed 001 replayed through the API with two tokens: the customer runs the audit, the auditor
invited by magic link (mailed by the worker through SMTP) reviews it, and the report lists the
evidence that was reviewed, frozen when the audit entered evidence_review."""

from __future__ import annotations

from engine.evidence import Item
from tests.audits.conftest import advance, create_audit, ok, push_evidence


def item_hash(resource: str, passing: bool) -> str:
    """The content hash the estate fixture's evidence has (engine.evidence.Item)."""
    status = "passing" if passing else "failing"
    return Item.of(resource, "aws.resource", status,
                   f"{resource} {'passes' if passing else 'fails'}",
                   {"ok": passing, "resource": resource}).content_hash


def by_resource(items: list[dict]) -> dict[str, dict]:
    return {i["resource_id"]: i for i in items}


def test_seed_lifecycle_from_invitation_to_report(client, auth, estate, audit_settings, smtp,
                                                  mail_worker):
    inbox = smtp[0]
    policy = push_evidence(audit_settings, control_id="CC6.1", content=b"user,reviewed\n")

    # Customer: create (seed request and response shape), list.
    audit = create_audit(client, auth, target_completion="2026-06-30T00:00:00Z")
    audit_id = audit["id"]
    assert {k: audit[k] for k in ("framework_id", "type", "title", "status")} == {
        "framework_id": "soc2", "type": "type_ii", "title": "SOC 2 Type II Annual Audit 2026",
        "status": "draft"}
    assert audit["created_at"].endswith("Z") and audit["target_completion"].startswith(
        "2026-06-30T00:00:00")
    listed = ok(client.get("/api/v1/audits", headers=auth))
    assert [a["id"] for a in listed] == [audit_id]

    # Customer invites; the worker mails a magic link through SMTP.
    inbox.discard("auditor@firm.com")
    invited = ok(client.post(f"/api/v1/audits/{audit_id}/invite-auditor", headers=auth, json={
        "email": "auditor@firm.com", "name": "Jane Smith", "firm": "Big4 Audit LLP"}), 201)
    assert invited["status"] == "invited" and "token" not in invited
    mail = inbox.wait_for("auditor@firm.com")
    body = mail.get_content()
    assert mail["Subject"] == "Audit invitation: SOC 2 Type II Annual Audit 2026"
    assert mail["From"] == "evidence-engine <audits@example.test>"
    link_token = body.split("#token=")[1].split()[0]
    assert f'"token": "{link_token}"' in body and "expires on" in body

    # Auditor accepts: an auditor JWT scoped to this audit.
    accepted = ok(client.post("/api/v1/auditor/accept-invitation", json={"token": link_token}))
    assert accepted["audit"] == {"id": audit_id, "title": "SOC 2 Type II Annual Audit 2026",
                                 "framework_id": "soc2", "status": "draft"}
    auditor = {"Authorization": f"Bearer {accepted['token']}"}

    advance(client, auth, audit_id, "in_progress")
    seen = ok(client.get("/api/v1/auditor/audit", headers=auditor))
    assert seen["id"] == audit_id and seen["status"] == "in_progress"
    assert seen["progress"] == {"total_controls": 33, "reviewed": 0, "passed": 0, "failed": 0,
                                "needs_evidence": 0, "pending": 33}

    controls = {c["id"]: c for c in ok(client.get("/api/v1/auditor/controls",
                                                  headers=auditor))["controls"]}
    assert len(controls) == 33
    cc61 = controls["CC6.1"]
    assert (cc61["evidence_count"], cc61["pushed_evidence_count"]) == (3, 1)
    assert cc61["latest_result"] == {"status": "failing", "passing": 2, "failing": 1,
                                     "errors": 0, "total": 3}
    assert controls["CC7.5"]["latest_result"]["status"] == "passing"
    assert controls["CC1.1"]["evidence_count"] == 0

    # The customer moves to evidence_review: the evidence is frozen from here on.
    advance(client, auth, audit_id, "evidence_review")
    frozen_at = ok(client.get(f"/api/v1/audits/{audit_id}", headers=auth))["evidence_frozen_at"]
    assert frozen_at is not None
    estate.store("aws.s3.bucket_default_encryption", {      # collected after the freeze:
        "arn:aws:s3:::logs": True, "arn:aws:s3:::exports": True,  # exports fixed
        "arn:aws:s3:::new-data": False})                           # a new bucket appears
    late = push_evidence(audit_settings, control_id="CC6.1", content=b"late,file\n",
                         filename="late.csv")

    ev = ok(client.get("/api/v1/auditor/controls/soc2-cc6.1/evidence", headers=auditor))
    assert ev["control"]["id"] == "CC6.1" and ev["evidence_frozen_at"] == frozen_at
    collected = by_resource(ev["collected"])
    assert set(collected) == {"arn:aws:iam::123456789012:root", "arn:aws:s3:::logs",
                              "arn:aws:s3:::exports"}
    exports = collected["arn:aws:s3:::exports"]
    assert exports["status"] == "failing"                     # as it was at the freeze
    assert exports["sha256"] == item_hash("arn:aws:s3:::exports", False)
    assert exports["changed_since_freeze"] is True
    assert exports["newer"]["status"] == "passing"
    assert exports["newer"]["sha256"] == item_hash("arn:aws:s3:::exports", True)
    assert collected["arn:aws:s3:::logs"]["changed_since_freeze"] is False
    assert [i["resource_id"] for i in ev["newer"]] == ["arn:aws:s3:::new-data"]
    assert ev["latest_result"]["failing"] == 1                # the frozen verdicts
    assert [p["id"] for p in ev["pushed"]] == [policy.id]
    assert ev["pushed"][0]["sha256"] == policy.sha256
    assert [p["id"] for p in ev["newer_pushed"]] == [late.id]

    # Auditor reviews, asks for evidence; the customer answers with a pushed object and a URL.
    review = ok(client.put("/api/v1/auditor/controls/CC6.1/status", headers=auditor, json={
        "status": "needs_evidence", "auditor_notes": "Need the quarterly access review"}))
    assert review["status"] == "needs_evidence" and review["reviewed_by"].startswith("Jane")
    req = ok(client.post("/api/v1/auditor/evidence-requests", headers=auditor, json={
        "control_id": "CC6.1", "description": "Quarterly access review sign-off",
        "priority": "high"}), 201)
    req2 = ok(client.post("/api/v1/auditor/evidence-requests", headers=auditor, json={
        "control_id": "CC7.5", "description": "Backup restore test"}), 201)
    assert req2["priority"] == "medium" and req2["status"] == "open"
    listed_requests = ok(client.get(f"/api/v1/audits/{audit_id}/evidence-requests",
                                    headers=auth))
    assert [r["id"] for r in listed_requests] == [req["id"], req2["id"]]
    answered = ok(client.post(
        f"/api/v1/audits/{audit_id}/evidence-requests/{req['id']}/respond", headers=auth,
        json={"pushed_evidence_id": policy.sha256}))
    assert answered["status"] == "responded"
    assert answered["response"]["pushed_evidence_id"] == policy.id
    assert answered["response"]["sha256"] == policy.sha256
    assert answered["response"]["sha256_verified"] is True
    url_answer = ok(client.post(
        f"/api/v1/audits/{audit_id}/evidence-requests/{req2['id']}/respond", headers=auth,
        json={"evidence_file_url": "https://storage.example.test/evidence/restore.png"}))
    assert url_answer["response"]["evidence_file_url"].endswith("/restore.png")

    for control, status in (("CC6.1", "passed"), ("CC7.5", "passed"), ("CC6.6", "failed")):
        ok(client.put(f"/api/v1/auditor/controls/{control}/status", headers=auditor,
                      json={"status": status, "evidence_sufficient": status == "passed"}))
    notes_kept = ok(client.get("/api/v1/auditor/controls/CC6.1/evidence", headers=auditor))
    assert notes_kept["review"]["auditor_notes"] == "Need the quarterly access review"
    assert notes_kept["requests"][0]["response"]["sha256"] == policy.sha256

    major = ok(client.post("/api/v1/auditor/findings", headers=auditor, json={
        "control_id": "CC6.6", "severity": "major",
        "title": "Incomplete access review logs",
        "description": "Access reviews lack evidence of quarterly cadence",
        "remediation": "Implement quarterly access review with documented sign-off"}), 201)
    observation = ok(client.post("/api/v1/auditor/findings", headers=auditor, json={
        "control_id": "soc2-cc7.5", "severity": "observation", "title": "Restore runbook",
        "description": "The restore runbook is not versioned."}), 201)
    assert major["status"] == "open" and observation["control_id"] == "CC7.5"

    advance(client, auth, audit_id, "findings")
    updated = ok(client.put(f"/api/v1/auditor/findings/{major['id']}", headers=auditor,
                            json={"status": "accepted"}))
    assert updated["status"] == "accepted" and updated["severity"] == "major"
    assert [f["id"] for f in ok(client.get("/api/v1/auditor/findings", headers=auditor))] == [
        major["id"], observation["id"]]

    done = ok(client.post("/api/v1/auditor/complete", headers=auditor))
    assert done["status"] == "complete" and done["allowed_next_statuses"] == []

    # Customer: detail with progress and recent activity, findings, the full log.
    detail = ok(client.get(f"/api/v1/audits/{audit_id}", headers=auth))
    assert detail["progress"] == {"total_controls": 33, "reviewed": 3, "passed": 2,
                                  "failed": 1, "needs_evidence": 0, "pending": 30}
    assert detail["recent_activity"][0]["type"] == "status_changed"
    assert detail["recent_activity"][0]["status"] == "complete"
    assert detail["recent_activity"][0]["actor"] == "Jane Smith <auditor@firm.com>"
    assert detail["auditors"][0]["status"] == "accepted"
    assert {f["severity"] for f in ok(client.get(f"/api/v1/audits/{audit_id}/findings",
                                                 headers=auth))} == {"major", "observation"}
    log = ok(client.get(f"/api/v1/audits/{audit_id}/activity", headers=auth))
    assert [(e["type"], e["actor_kind"]) for e in log] == [
        ("audit_created", "customer"), ("auditor_invited", "customer"),
        ("invitation_accepted", "auditor"), ("status_changed", "customer"),
        ("status_changed", "customer"), ("control_reviewed", "auditor"),
        ("evidence_requested", "auditor"), ("evidence_requested", "auditor"),
        ("evidence_provided", "customer"), ("evidence_provided", "customer"),
        ("control_reviewed", "auditor"), ("control_reviewed", "auditor"),
        ("control_reviewed", "auditor"), ("finding_created", "auditor"),
        ("finding_created", "auditor"), ("status_changed", "customer"),
        ("finding_updated", "auditor"), ("status_changed", "auditor")]
    assert [e["status"] for e in log if e["type"] == "status_changed"] == [
        "in_progress", "evidence_review", "findings", "complete"]
    assert log[5] | {"at": None, "id": None} == {
        "id": None, "type": "control_reviewed", "actor_kind": "auditor",
        "actor": "Jane Smith <auditor@firm.com>", "control_id": "CC6.1",
        "status": "needs_evidence", "at": None, "details": {
            "status": "needs_evidence", "previous": "pending",
            "notes": "Need the quarterly access review", "evidence_sufficient": None}}

    # The report: summary, control table, findings with remediation, evidence with SHA-256.
    report = ok(client.post(f"/api/v1/audits/{audit_id}/report", headers=auth))
    md = report["report"]
    assert report["format"] == "markdown"
    assert md.startswith("# SOC 2 Type II Audit Report\n")
    for heading in ("## Executive Summary", "## Control Status", "## Findings by Severity",
                    "### Major (1)", "### Observation (1)", "## Evidence Summary"):
        assert f"\n{heading}\n" in md
    assert "2 passed, 1 failed and 0 need more evidence; 30 remain pending" in md
    assert "> Implement quarterly access review with documented sign-off" in md
    assert "| CC6.6 | " in md and "| failed | no |" in md
    reviewed, _, after = md.partition("### After the freeze (not reviewed)")
    for resource, passing in (("arn:aws:iam::123456789012:root", True),
                              ("arn:aws:s3:::logs", True), ("arn:aws:s3:::exports", False)):
        assert item_hash(resource, passing) in reviewed
    assert policy.sha256 in reviewed
    assert item_hash("arn:aws:s3:::exports", True) not in reviewed
    assert item_hash("arn:aws:s3:::exports", True) in after
    assert item_hash("arn:aws:s3:::new-data", False) in after and late.sha256 in after
    log = ok(client.get(f"/api/v1/audits/{audit_id}/activity", headers=auth))
    assert log[-1]["type"] == "report_generated"
    assert log[-1]["details"]["sha256"] == report["sha256"]

    # Complete means read-only.
    resp = client.put(f"/api/v1/audits/{audit_id}", json={"title": "x"}, headers=auth)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "audit_read_only"
