"""Bad input to the audit endpoints is a 4xx JSON error that writes nothing; a schemathesis run
over the audit and auditor operations finds no 5xx and no response outside its schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from engine.db import session_factory
from engine.mail import MAX_ATTEMPTS, send_mail
from engine.models.audit import AuditActivity, MailStatus, OutboundMail
from tests.audits.conftest import accepted_auditor, create_audit, ok

GOOD = {"framework_id": "soc2", "type": "type_ii", "title": "Annual",
        "period_start": "2026-01-01", "period_end": "2026-07-01"}


def activity_count(settings) -> int:
    with session_factory(settings)() as s:
        return s.scalar(select(func.count()).select_from(AuditActivity)) or 0


@pytest.mark.parametrize("body, code", [
    ({}, "invalid_request"),
    ({**GOOD, "framework_id": "pci"}, "unknown_framework"),
    ({**GOOD, "type": "type_iii"}, "invalid_request"),
    ({**GOOD, "title": ""}, "invalid_request"),
    ({**GOOD, "title": "nul\x00byte"}, "invalid_request"),
    ({**GOOD, "title": "x" * 301}, "invalid_request"),
    ({**GOOD, "description": "nul\x00"}, "invalid_request"),
    ({**GOOD, "target_completion": "next tuesday"}, "invalid_request"),
    ({**GOOD, "owner": "someone"}, "invalid_request"),
    (["not", "an", "object"], "invalid_request"),
])
def test_a_bad_audit_is_refused_and_nothing_is_written(client, auth, audit_settings, body,
                                                       code):
    resp = client.post("/api/v1/audits", json=body, headers=auth)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["code"] == code
    assert activity_count(audit_settings) == 0
    assert ok(client.get("/api/v1/audits", headers=auth)) == []


def test_bad_references_are_4xx_and_write_nothing(client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    auditor = accepted_auditor(audit_settings, audit_id)
    before = activity_count(audit_settings)
    req = f"/api/v1/audits/{audit_id}/evidence-requests/evr-nope/respond"
    cases = [
        (auth, "post", f"/api/v1/audits/{audit_id}/invite-auditor",
         {"email": "not-an-email", "name": "X"}, 422, "invalid_request"),
        (auth, "post", f"/api/v1/audits/{audit_id}/invite-auditor",
         {"email": "a@b.test, c@d.test", "name": "X"}, 422, "invalid_request"),
        (auth, "post", "/api/v1/audits/audit-nope/invite-auditor",
         {"email": "a@b.test", "name": "X"}, 404, "audit_not_found"),
        (auth, "post", req, {"evidence_file_url": "https://e.test/a", "pushed_evidence_id":
                             "evo-1"}, 422, "invalid_request"),
        (auth, "post", req, {}, 422, "invalid_request"),
        (auth, "post", req, {"evidence_file_url": "javascript:alert(1)"}, 422,
         "invalid_request"),
        (auth, "post", req, {"evidence_file_url": "https://e.test/a"}, 404,
         "evidence_request_not_found"),
        (auth, "put", f"/api/v1/audits/{audit_id}", {"status": "archived"}, 422,
         "invalid_request"),
        (auditor, "put", "/api/v1/auditor/controls/CC99.9/status", {"status": "passed"}, 404,
         "unknown_control"),
        (auditor, "put", "/api/v1/auditor/controls/A.8.5/status", {"status": "passed"}, 404,
         "unknown_control"),  # an ISO control in a SOC 2 audit
        (auditor, "put", "/api/v1/auditor/controls/CC6.1/status", {"status": "great"}, 422,
         "invalid_request"),
        (auditor, "get", "/api/v1/auditor/controls/nope/evidence", None, 404,
         "unknown_control"),
        (auditor, "post", "/api/v1/auditor/findings", {
            "control_id": "CC99.9", "severity": "major", "title": "t", "description": "d"},
         422, "unknown_control"),
        (auditor, "post", "/api/v1/auditor/findings", {
            "control_id": "CC6.1", "severity": "catastrophic", "title": "t",
            "description": "d"}, 422, "invalid_request"),
        (auditor, "post", "/api/v1/auditor/evidence-requests", {
            "control_id": "CC6.1", "description": "d", "priority": "urgent"}, 422,
         "invalid_request"),
        (auditor, "put", "/api/v1/auditor/findings/fnd-nope", {"status": "resolved"}, 404,
         "finding_not_found"),
    ]
    for headers, method, path, body, status, code in cases:
        resp = getattr(client, method)(path, json=body, headers=headers)
        assert resp.status_code == status, (path, body, resp.get_json())
        assert resp.get_json()["error"]["code"] == code, (path, body)
    assert activity_count(audit_settings) == before

    finding = ok(client.post("/api/v1/auditor/findings", headers=auditor, json={
        "control_id": "CC6.1", "severity": "minor", "title": "t", "description": "d"}), 201)
    req_row = ok(client.post("/api/v1/auditor/evidence-requests", headers=auditor,
                             json={"control_id": "CC6.1", "description": "d"}), 201)
    unknown = client.post(f"/api/v1/audits/{audit_id}/evidence-requests/{req_row['id']}/respond",
                          headers=auth, json={"pushed_evidence_id": "evo-missing"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == \
        "unknown_evidence"
    cleared = ok(client.put(f"/api/v1/auditor/findings/{finding['id']}", headers=auditor,
                            json={"remediation": "Fix it"}))
    assert cleared["remediation"] == "Fix it"
    cleared = ok(client.put(f"/api/v1/auditor/findings/{finding['id']}", headers=auditor,
                            json={"remediation": None}))
    assert cleared["remediation"] is None and cleared["title"] == "t"


def test_mail_that_cannot_be_sent_stays_queued_then_fails(audit_settings, db):
    from engine.mail import queue_mail

    unreachable = audit_settings.model_copy(update={"smtp_port": 1})
    with session_factory(audit_settings)() as s, s.begin():
        mail_id = queue_mail(s, unreachable, to="a@b.test", subject="s", body="secret body").id
        s.info.pop("pending_jobs", None)  # this test runs the attempts itself
    for attempt in range(1, MAX_ATTEMPTS + 1):
        sent = send_mail(session_factory(audit_settings), unreachable, mail_id)
        expected = MailStatus.FAILED if attempt == MAX_ATTEMPTS else MailStatus.QUEUED
        assert sent.status == expected
        assert (sent.retry_in is None) == (attempt == MAX_ATTEMPTS)  # backing off until then
    with session_factory(audit_settings)() as s:
        mail = s.get_one(OutboundMail, mail_id)
    assert mail.attempts == MAX_ATTEMPTS and "Connection" in (mail.last_error or "")
    assert mail.body_sealed is not None and b"secret body" not in mail.body_sealed


# --- schemathesis over the audit surface -----------------------------------------------------

@pytest.fixture
def fuzz_headers(client, auth, audit_settings) -> dict[str, dict[str, str]]:
    """One audit and an accepted auditor for it: the customer's and the auditor's headers."""
    audit_id = create_audit(client, auth)["id"]
    auditor = accepted_auditor(audit_settings, audit_id)
    return {"customer": auth, "auditor": auditor}


@pytest.fixture
def audit_schema(client, fuzz_headers):
    """The audit and auditor operations of the app's own OpenAPI document."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", client.application)
    return schema.include(path_regex=r"^/api/v1/audit")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def exercise(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Send generated requests for one operation and check each response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=4, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    def send(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    send()


def test_no_input_breaks_the_audit_api(audit_schema, fuzz_headers):
    """Valid and invalid requests to every audit operation (customer or auditor token): never a
    5xx, always a documented status, always a body matching its declared model."""
    operations = [result.ok() for result in audit_schema.get_all_operations()]
    assert len(operations) == 26  # 13 customer, 13 auditor
    for operation in operations:
        side = "auditor" if operation.path.startswith("/api/v1/auditor/") else "customer"
        takes_input = operation.method != "get" or "{" in operation.path
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[:2 if takes_input else 1]:
            exercise(operation, mode, fuzz_headers[side])
