"""Answering an evidence request with collected evidence (issue 11): each item is recorded as it
stood at answer time (its version and SHA-256), so later syncs never change the answer; another
account's evidence, removed evidence and malformed lists are refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import audits
from engine.accounts import ensure_account
from engine.audits import Actor
from engine.db import session_factory
from engine.errors import Conflict, InvalidInput, NotFound
from engine.evidence import Item, store_check_results
from engine.models import (
    Connection,
    ConnectionStatus,
    Evidence,
    EvidenceStatus,
    EvidenceVersion,
)
from engine.models.audit import (
    ActivityType,
    ActorKind,
    AuditActivity,
    AuditType,
    EvidenceRequest,
    EvidenceRequestItem,
    RequestStatus,
)
from engine.models.ledger import LedgerEntry
from engine.tokens import mint
from tests.audits.conftest import ACCOUNT, accepted_auditor, bearer, create_audit, ok

EXPORTS, LOGS, ROOT = "arn:aws:s3:::exports", "arn:aws:s3:::logs", "arn:aws:iam::123456789012:root"
ENCRYPTION = "aws.s3.bucket_default_encryption"


def evidence_id(settings: Any, resource_id: str, check_id: str = ENCRYPTION,
                account_id: str = ACCOUNT) -> int:
    with session_factory(settings)() as s:
        return s.scalars(select(Evidence.id).where(
            Evidence.account_id == account_id, Evidence.check_id == check_id,
            Evidence.resource_id == resource_id)).one()


def current(settings: Any, ev_id: int) -> tuple[str, str, int]:
    """The evidence's status, hash and latest version id as they are now."""
    with session_factory(settings)() as s:
        e = s.get_one(Evidence, ev_id)
        version = s.scalar(select(func.max(EvidenceVersion.id))
                           .where(EvidenceVersion.evidence_id == ev_id))
        assert version is not None
        return e.status.value, e.content_hash, version


def written(settings: Any) -> tuple[int, int, int]:
    """Answer items, evidence_provided entries and answered requests in the database."""
    with session_factory(settings)() as s:
        return (s.scalar(select(func.count()).select_from(EvidenceRequestItem)) or 0,
                s.scalar(select(func.count()).select_from(AuditActivity).where(
                    AuditActivity.type == ActivityType.EVIDENCE_PROVIDED)) or 0,
                s.scalar(select(func.count()).select_from(EvidenceRequest).where(
                    EvidenceRequest.status == RequestStatus.RESPONDED)) or 0)


@pytest.fixture
def asked(client, auth, estate, audit_settings) -> dict[str, Any]:
    """An audit in progress with an auditor and one open request on CC6.1."""
    audit_id = create_audit(client, auth)["id"]
    ok(client.put(f"/api/v1/audits/{audit_id}", json={"status": "in_progress"}, headers=auth))
    auditor = accepted_auditor(audit_settings, audit_id)
    req = ok(client.post("/api/v1/auditor/evidence-requests", headers=auditor,
                         json={"control_id": "CC6.1", "description": "Bucket encryption"}), 201)
    url = f"/api/v1/audits/{audit_id}/evidence-requests/{req['id']}/respond"
    return {"audit_id": audit_id, "auditor": auditor, "request_id": req["id"], "url": url}


def test_answer_with_collected_evidence_records_each_item_as_it_stands(
        client, auth, asked, audit_settings):
    exports, root = evidence_id(audit_settings, EXPORTS), evidence_id(
        audit_settings, ROOT, "aws.iam.root_account_mfa")
    status, sha, version = current(audit_settings, exports)

    answer = ok(client.post(asked["url"], headers=auth, json={
        "evidence_ids": [f"ev-{exports}", f"ev-{root}"], "note": "both checks"}))

    assert answer["status"] == "responded"
    response = answer["response"]
    assert response["evidence_file_url"] is None and response["pushed_evidence_id"] is None
    assert response["sha256"] is None and response["note"] == "both checks"
    items = response["collected_evidence"]
    assert [i["evidence_id"] for i in items] == [f"ev-{exports}", f"ev-{root}"]  # as sent
    first = items[0]
    assert (first["check_id"], first["resource_id"], first["status"], first["sha256"],
            first["version_id"], first["integration_id"]) == (
        ENCRYPTION, EXPORTS, status, sha, f"evv-{version}", "aws")
    assert status == "failing" and first["collected_at"] and first["verified_at"]
    assert items[1]["resource_id"] == ROOT and items[1]["status"] == "passing"

    with session_factory(audit_settings)() as s:
        entry = s.scalars(select(AuditActivity).where(
            AuditActivity.audit_id == asked["audit_id"],
            AuditActivity.type == ActivityType.EVIDENCE_PROVIDED)).one()
        assert entry.control_id == "CC6.1" and entry.actor_kind == ActorKind.CUSTOMER
        assert [(e["evidence_id"], e["version_id"], e["sha256"])
                for e in entry.details["evidence"]][0] == (f"ev-{exports}", f"evv-{version}",
                                                           sha)
        chained = s.scalars(select(LedgerEntry.content).where(
            LedgerEntry.account_id == ACCOUNT, LedgerEntry.subject == asked["audit_id"])).all()
        assert any(f"evv-{version}" in c and sha in c for c in chained)

    report = ok(client.post(f"/api/v1/audits/{asked['audit_id']}/report", headers=auth))
    row = next(line for line in report["report"].splitlines()
               if line.startswith(f"| `{asked['request_id']}` |"))
    assert f"collected: `ev-{exports}` ({ENCRYPTION} on {EXPORTS}, failing, `{sha}`)" in row


def test_the_answer_stays_as_given_when_the_evidence_changes_later(
        client, auth, asked, estate, audit_settings):
    exports = evidence_id(audit_settings, EXPORTS)
    logs = evidence_id(audit_settings, LOGS)
    _, sha, version = current(audit_settings, exports)
    ok(client.post(asked["url"], headers=auth,
                   json={"evidence_ids": [f"ev-{exports}", f"ev-{logs}"]}))

    estate.store(ENCRYPTION, {EXPORTS: True})   # exports fixed, logs removed
    now_status, now_sha, now_version = current(audit_settings, exports)
    assert now_status == "passing" and now_sha != sha and now_version > version

    for shown in (ok(client.get(f"/api/v1/audits/{asked['audit_id']}/evidence-requests",
                                headers=auth))[0],
                  ok(client.get("/api/v1/auditor/evidence-requests",
                                headers=asked["auditor"]))[0],
                  ok(client.get("/api/v1/auditor/controls/CC6.1/evidence",
                                headers=asked["auditor"]))["requests"][0]):
        items = {i["resource_id"]: i for i in shown["response"]["collected_evidence"]}
        assert items[EXPORTS]["status"] == "failing"
        assert items[EXPORTS]["sha256"] == sha and items[EXPORTS]["version_id"] == \
            f"evv-{version}"
        assert items[LOGS]["status"] == "passing"   # removed since, still answered as it was


def test_account_b_evidence_is_refused_as_unknown_and_nothing_is_written(
        client, auth, asked, audit_settings):
    with session_factory(audit_settings)() as s, s.begin():
        ensure_account(s, "globex")
        conn = Connection(account_id="globex", integration_id="aws",
                          status=ConnectionStatus.ACTIVE)
        s.add(conn)
        s.flush()
        store_check_results(s, account_id="globex", connection_id=conn.id, check_id=ENCRYPTION,
                            items=[Item.of("arn:aws:s3:::globex-secrets", "aws.resource",
                                           "failing", "globex bucket", {"ok": False})],
                            run_id=None, now=datetime.now(UTC))
    theirs = evidence_id(audit_settings, "arn:aws:s3:::globex-secrets", account_id="globex")
    mine = evidence_id(audit_settings, EXPORTS)
    before = written(audit_settings)

    for ids in ([f"ev-{theirs}"], [f"ev-{mine}", f"ev-{theirs}"], ["ev-999999999"]):
        resp = client.post(asked["url"], headers=auth, json={"evidence_ids": ids})
        assert resp.status_code == 404, resp.get_json()
        error = resp.get_json()["error"]
        assert error["code"] == "evidence_not_found"
        assert "globex" not in str(error) and "secrets" not in str(error)
    assert written(audit_settings) == before == (0, 0, 0)

    # account B, answering its own request with A's evidence, is refused the same way
    globex = bearer(mint(audit_settings, "globex"))
    their_audit = create_audit(client, globex)["id"]
    with session_factory(audit_settings)() as s, s.begin():
        theirs_req = audits.request_evidence(
            s, audits.get_audit(s, "globex", their_audit), Actor(ActorKind.AUDITOR, "jane"),
            control_ref="CC6.1", description="encryption").id
    resp = client.post(f"/api/v1/audits/{their_audit}/evidence-requests/{theirs_req}/respond",
                       headers=globex, json={"evidence_ids": [f"ev-{mine}"]})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "evidence_not_found"
    assert client.post(asked["url"], headers=globex,
                       json={"evidence_ids": [f"ev-{mine}"]}).status_code == 404
    assert written(audit_settings) == (0, 0, 0)


def test_removed_evidence_is_refused_and_nothing_is_written(client, auth, asked, estate,
                                                            audit_settings):
    logs = evidence_id(audit_settings, LOGS)
    exports = evidence_id(audit_settings, EXPORTS)
    estate.store(ENCRYPTION, {EXPORTS: False})   # logs removed: its evidence is closed
    resp = client.post(asked["url"], headers=auth,
                       json={"evidence_ids": [f"ev-{exports}", f"ev-{logs}"]})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "evidence_closed"
    assert resp.get_json()["error"]["evidence_ids"] == [f"ev-{logs}"]
    assert written(audit_settings) == (0, 0, 0)


@pytest.mark.parametrize("body", [
    {"evidence_ids": []},
    {"evidence_ids": [f"ev-{n}" for n in range(1, 52)]},
    {"evidence_ids": ["ev-1", "ev-1"]},
    {"evidence_ids": ["1"]},
    {"evidence_ids": ["ev-0"]},
    {"evidence_ids": ["ev-1 OR 1=1"]},
    {"evidence_ids": ["ev-1234567890123456789012"]},
    {"evidence_ids": [1]},
    {"evidence_ids": "ev-1"},
    {"evidence_ids": None},
    {"evidence_ids": ["ev-1"], "evidence_file_url": "https://files.example.com/a.png"},
    {"evidence_ids": ["ev-1"], "sha256": "a" * 64},
    {"evidence_ids": ["ev-1\u0000"]},
])
def test_malformed_evidence_lists_are_refused_with_a_json_error(client, auth, asked,
                                                                audit_settings, body):
    resp = client.post(asked["url"], headers=auth, json=body)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["success"] is False
    assert written(audit_settings) == (0, 0, 0)


def test_a_new_answer_replaces_the_items_and_the_log_keeps_both(client, auth, asked,
                                                                 audit_settings):
    exports, logs = evidence_id(audit_settings, EXPORTS), evidence_id(audit_settings, LOGS)
    ok(client.post(asked["url"], headers=auth, json={"evidence_ids": [f"ev-{exports}"]}))
    again = ok(client.post(asked["url"], headers=auth, json={"evidence_ids": [f"ev-{logs}"]}))
    assert [i["evidence_id"] for i in again["response"]["collected_evidence"]] == [f"ev-{logs}"]
    url = ok(client.post(asked["url"], headers=auth,
                         json={"evidence_file_url": "https://files.example.com/policy.pdf"}))
    assert url["response"]["collected_evidence"] == []
    assert url["response"]["evidence_file_url"] == "https://files.example.com/policy.pdf"
    assert written(audit_settings) == (0, 3, 1)


def test_engine_refuses_without_writing(estate, audit_settings):
    """The engine's own refusals, for callers other than the API (the console)."""
    exports = evidence_id(audit_settings, EXPORTS)
    with session_factory(audit_settings)() as s, s.begin():
        audit = audits.create_audit(s, ACCOUNT, Actor(ActorKind.CUSTOMER, "lead"),
                                    framework_id="soc2", audit_type=AuditType.TYPE_I,
                                    title="T")
        req = audits.request_evidence(s, audit, Actor(ActorKind.AUDITOR, "jane"),
                                      control_ref="CC6.1", description="encryption")
        audit_id, request_id = audit.id, req.id
    lead = Actor(ActorKind.CUSTOMER, "lead")
    refusals: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"evidence_ids": []}, InvalidInput),
        ({"evidence_ids": list(range(1, 52))}, InvalidInput),
        ({"evidence_ids": [exports, exports]}, InvalidInput),
        ({"evidence_ids": [exports], "evidence_file_url": "https://x.example/a"}, InvalidInput),
        ({"evidence_ids": [exports + 10_000]}, NotFound),
    ]
    for kwargs, error in refusals:
        with session_factory(audit_settings)() as s:
            audit = audits.get_audit(s, ACCOUNT, audit_id, for_update=True)
            with pytest.raises(error):
                audits.respond_to_request(s, audit, lead, request_id, **kwargs)
            s.rollback()
    with session_factory(audit_settings)() as s:
        audit = audits.get_audit(s, ACCOUNT, audit_id)
        with pytest.raises(Conflict):   # a complete audit is read-only
            audit.status = audit.status.COMPLETE
            audits.respond_to_request(s, audit, lead, request_id, evidence_ids=[exports])
        s.rollback()
    assert written(audit_settings) == (0, 0, 0)


def test_choices_filter_by_check_status_and_plain_text(estate, audit_settings):
    estate.store("aws.s3.bucket_versioning", {"arn:aws:s3:::100%_sure": False, LOGS: True,
                                              "arn:aws:s3:::1000-sure": True})
    with session_factory(audit_settings)() as s:
        def resources(**kw: Any) -> list[str]:
            found = audits.evidence_choices(s, ACCOUNT, limit=50, **kw)
            return [c.resource_id for c in found.items]

        assert audits.evidence_checks(s, ACCOUNT) == [
            "aws.iam.root_account_mfa", ENCRYPTION, "aws.s3.bucket_versioning"]
        assert resources(text="100%_") == ["arn:aws:s3:::100%_sure"]   # % and _ as typed
        assert resources(check_id="aws.s3.bucket_versioning",
                         status=EvidenceStatus.PASSING) == ["arn:aws:s3:::1000-sure", LOGS]
        assert resources(text="EXPORTS") == [EXPORTS]   # case-insensitive
        assert audits.evidence_choices(s, "globex", limit=50).items == []
        first = audits.evidence_choices(s, ACCOUNT, limit=2)
        rest = audits.evidence_choices(s, ACCOUNT, limit=2, offset=2)
        last = audits.evidence_choices(s, ACCOUNT, limit=2, offset=4)
        assert first.more and rest.more and not last.more
        assert len({c.evidence_id for c in first.items + rest.items + last.items}) == 6
