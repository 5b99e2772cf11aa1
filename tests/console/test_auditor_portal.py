"""The auditor portal through Flask's test client: the magic link opens it, the forms write
through the engine (bad input writes nothing, a POST without its CSRF token is refused), and
the refusals: an auditor on customer pages, a customer on the portal, another audit's ids, a
withdrawn auditor."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from api import create_app
from engine import audits
from engine.audits import Actor
from engine.db import unit_of_work
from engine.models.audit import (
    ActorKind,
    AuditControl,
    EvidenceRequest,
    Finding,
    FindingSeverity,
)
from tests.console.auditor_helpers import accept, advance, create_audit, csrf_of, invite
from tests.console.conftest import CSRF


def _count(settings, model) -> int:
    with unit_of_work(settings) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _signed_in(client, auth, settings, sent, **audit_fields):
    audit_id = create_audit(client, auth, **audit_fields)
    link, invitation_id = invite(settings, audit_id)
    answer = accept(client, link)
    assert answer.status_code == 303 and answer.headers["Location"] == "/auditor"
    return audit_id, invitation_id


def test_the_magic_link_opens_the_portal_with_an_httponly_cookie(client, auth, settings, sent):
    page = client.get("/auditor/accept")  # the mailed link's path; its token rides in the #
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "auditor_accept.js" in page.get_data(as_text=True)
    audit_id = create_audit(client, auth)
    link, _ = invite(settings, audit_id)
    assert link.startswith(f"{settings.public_base_url}/auditor/accept#token=")

    answer = accept(client, link)
    assert answer.status_code == 303 and answer.headers["Location"] == "/auditor"
    set_cookie = next(h for h in answer.headers.getlist("Set-Cookie")
                      if h.startswith("evidence_auditor="))
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Path=/auditor" in set_cookie and "Secure" not in set_cookie  # http base URL

    home = client.get("/auditor")
    html = home.get_data(as_text=True)
    assert home.status_code == 200, html[:500]
    assert "SOC 2 Type II Annual Audit 2026" in html and "SOC 2" in html
    assert "0 of " in html and "controls reviewed" in html and "Draft" in html
    assert 'href="/auditor/controls/CC6.1"' in html

    # The link worked once, through the same engine call as the API's accept-invitation.
    again = accept(client, link)
    assert again.status_code == 401 and "already been used" in again.get_data(as_text=True)
    token = link.split("#token=", 1)[1]
    api = client.post("/api/v1/auditor/accept-invitation", json={"token": token})
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "invitation_used"


def test_a_post_without_its_csrf_token_is_refused_and_writes_nothing(
        client, auth, settings, sent):
    _signed_in(client, auth, settings, sent)
    answer = client.post("/auditor/controls/CC6.1/review",
                         data={"status": "passed", "auditor_notes": "MFA enforced"})
    assert answer.status_code == 400
    assert "could not be sent" in answer.get_data(as_text=True)
    assert _count(settings, AuditControl) == 0
    # and the accept endpoint, too, takes no token without one
    refused = client.post("/auditor/accept", data={"token": "x" * 40})
    assert refused.status_code == 400


def test_bad_input_shows_the_message_beside_the_field_and_writes_nothing(
        client, auth, settings, sent):
    _signed_in(client, auth, settings, sent)
    csrf = csrf_of(client, "/auditor/controls/CC6.1")
    answer = client.post("/auditor/controls/CC6.1/review",
                         data={"csrf_token": csrf, "status": "great", "auditor_notes": "x\x00"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="status-error"' in html and "Choose passed, failed or needs evidence" in html
    assert 'id="auditor_notes-error"' in html and 'aria-invalid="true"' in html
    answer = client.post("/auditor/controls/CC6.1/evidence-requests",
                         data={"csrf_token": csrf, "description": " ", "priority": "urgent"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Enter what evidence you need" in html and "Choose a priority" in html
    answer = client.post("/auditor/findings", data={
        "csrf_token": csrf, "control_id": "ZZ9.9", "severity": "major", "title": "Gap",
        "description": "Quarterly reviews missing"})
    assert answer.status_code == 422
    assert 'id="control_id-error"' in answer.get_data(as_text=True)
    assert _count(settings, AuditControl) == 0
    assert _count(settings, EvidenceRequest) == 0
    assert _count(settings, Finding) == 0


def test_review_request_file_update_and_complete_then_read_only(client, auth, settings, sent):
    audit_id, _ = _signed_in(client, auth, settings, sent)
    csrf = csrf_of(client, "/auditor/controls/CC6.1")
    answer = client.post("/auditor/controls/CC6.1/review", data={
        "csrf_token": csrf, "status": "needs_evidence", "auditor_notes": "Show the MFA policy",
        "evidence_sufficient": "no"})
    assert answer.status_code == 303
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Your review is saved" in page and "Needs evidence" in page
    answer = client.post("/auditor/controls/CC6.1/evidence-requests", data={
        "csrf_token": csrf, "description": "Export of the IdP MFA policy", "priority": "high"})
    assert answer.status_code == 303
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Export of the IdP MFA policy" in page and "Waiting for the customer" in page
    answer = client.post("/auditor/findings", data={
        "csrf_token": csrf, "control_id": "CC6.1", "severity": "major",
        "title": "MFA not enforced for contractors", "description": "Two contractor accounts",
        "remediation": "Enforce MFA in the IdP"})
    assert answer.status_code == 303
    with unit_of_work(settings) as session:
        finding = session.scalars(select(Finding)).one()
        finding_id = finding.id
    answer = client.post(f"/auditor/findings/{finding_id}", data={
        "csrf_token": csrf, "control_id": "CC6.1", "severity": "minor", "status": "resolved",
        "title": "MFA not enforced for contractors", "description": "Two contractor accounts",
        "remediation": ""})
    assert answer.status_code == 303
    findings = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The finding is updated" in findings and "Resolved" in findings and "Minor" in findings

    # Completing needs the customer to have moved the audit to findings, and a confirmation.
    assert "Findings stage" in client.get("/auditor/complete").get_data(as_text=True)
    advance(client, auth, audit_id, "in_progress", "evidence_review", "findings")
    answer = client.post("/auditor/complete", data={"csrf_token": csrf})
    assert answer.status_code == 422 and 'id="confirm-error"' in answer.get_data(as_text=True)
    answer = client.post("/auditor/complete", data={"csrf_token": csrf, "confirm": "yes"})
    assert answer.status_code == 303
    home = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The audit is complete" in home and "Read-only." in home
    control = client.get("/auditor/controls/CC6.1").get_data(as_text=True)
    assert "Save the review" not in control and "Send the request" not in control
    assert "Read-only." in control
    refused = client.post("/auditor/controls/CC6.1/review",
                          data={"csrf_token": csrf, "status": "passed"})
    assert refused.status_code == 409 and "read-only" in refused.get_data(as_text=True)


def test_an_auditor_cookie_is_not_a_customer_session(client, auth, settings, sent):
    _signed_in(client, auth, settings, sent)
    auditor_cookie = client.get_cookie("evidence_auditor", path="/auditor")
    assert auditor_cookie is not None
    assert client.get("/console").status_code == 302  # never sent there: not signed in
    client.set_cookie("evidence_console", auditor_cookie.value, path="/console")
    answer = client.get("/console/controls")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]
    client.set_cookie("evidence_auditor", auditor_cookie.value, path="/")
    assert client.get("/console/runs").status_code == 302
    # nor does it open the customer API
    api = client.get("/api/v1/audits", headers={"Authorization": f"Bearer {auditor_cookie.value}"})
    assert api.status_code == 401


def test_a_customer_session_is_refused_on_the_portal(client, auth, settings, sign_in):
    create_audit(client, auth)
    sign_in("acme")
    customer_cookie = client.get_cookie("evidence_console", path="/console")
    assert customer_cookie is not None
    answer = client.get("/auditor")
    assert answer.status_code == 401
    assert "Open the link from your invitation mail" in answer.get_data(as_text=True)
    client.set_cookie("evidence_auditor", customer_cookie.value, path="/auditor")
    answer = client.get("/auditor/findings")
    assert answer.status_code == 401 and "SOC 2 Type II" not in answer.get_data(as_text=True)
    assert client.get_cookie("evidence_auditor", path="/auditor") is None  # dropped


def test_another_audits_ids_are_not_found(client, auth, settings, sent):
    _signed_in(client, auth, settings, sent)
    other_id = create_audit(client, auth, title="ISO audit", framework_id="iso27001")
    with unit_of_work(settings) as session:
        other = audits.get_audit(session, "acme", other_id)
        finding = audits.create_finding(
            session, other, Actor(ActorKind.AUDITOR, "Other <o@firm.test>"),
            control_ref="A.5.1", severity=FindingSeverity.MINOR, title="Other audit's finding",
            description="not yours")
        other_finding = finding.id
    assert client.get(f"/auditor/findings/{other_finding}").status_code == 404
    csrf = csrf_of(client, "/auditor/findings")
    answer = client.post(f"/auditor/findings/{other_finding}", data={
        "csrf_token": csrf, "control_id": "CC6.1", "severity": "major", "status": "resolved",
        "title": "Taken over", "description": "x"})
    assert answer.status_code == 404
    with unit_of_work(settings) as session:
        assert session.get_one(Finding, other_finding).title == "Other audit's finding"
    assert client.get("/auditor/controls/A.5.1").status_code == 404  # not in this framework
    assert "Other audit" not in client.get("/auditor/findings").get_data(as_text=True)
    assert client.get("/auditor/nothing-here").status_code == 404


def test_a_withdrawn_auditor_lands_on_the_withdrawn_page(client, auth, settings, sent):
    audit_id, invitation_id = _signed_in(client, auth, settings, sent)
    assert client.get("/auditor").status_code == 200
    revoked = client.delete(f"/api/v1/audits/{audit_id}/auditors/{invitation_id}", headers=auth)
    assert revoked.status_code == 200, revoked.get_json()
    answer = client.get("/auditor/controls/CC6.1")
    assert answer.status_code == 403
    assert "Your access was withdrawn" in answer.get_data(as_text=True)
    assert client.get_cookie("evidence_auditor", path="/auditor") is None


def test_signing_out_ends_the_session_server_side(client, auth, settings, sent):
    _signed_in(client, auth, settings, sent)
    cookie = client.get_cookie("evidence_auditor", path="/auditor")
    assert cookie is not None
    refused = client.post("/auditor/signout")  # CSRF here too
    assert refused.status_code == 400
    answer = client.post("/auditor/signout", data={"csrf_token": csrf_of(client, "/auditor")})
    assert answer.status_code == 200 and "You have signed out" in answer.get_data(as_text=True)
    assert client.get_cookie("evidence_auditor", path="/auditor") is None
    client.set_cookie("evidence_auditor", cookie.value, path="/auditor")  # a copied cookie
    again = client.get("/auditor")
    assert again.status_code == 401 and "has expired" in again.get_data(as_text=True)
    api = client.get("/api/v1/auditor/audit",
                     headers={"Authorization": f"Bearer {cookie.value}"})
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "token_expired"


def test_on_https_the_auditor_cookie_is_secure_and_a_cross_site_post_is_refused(
        client, auth, settings, sent):
    https_settings = settings.model_copy(update={"public_base_url": "https://ev.example.com"})
    audit_id = create_audit(client, auth)
    link, _ = invite(https_settings, audit_id)
    assert link.startswith("https://ev.example.com/auditor/accept#token=")
    browser = create_app(https_settings).test_client()
    https = {"base_url": "https://ev.example.com",
             "headers": {"Referer": "https://ev.example.com/auditor/accept"}}
    found = CSRF.search(browser.get("/auditor/accept", **https).get_data(as_text=True))
    assert found
    token = link.split("#token=", 1)[1]
    cross = browser.post("/auditor/accept", base_url="https://ev.example.com",
                         headers={"Referer": "https://evil.example.net/"},
                         data={"token": token, "csrf_token": found.group(1)})
    assert cross.status_code == 400  # Flask-WTF's https referrer check; the link still works
    answer = browser.post("/auditor/accept", **https,
                          data={"token": token, "csrf_token": found.group(1)})
    assert answer.status_code == 303
    set_cookie = next(h for h in answer.headers.getlist("Set-Cookie")
                      if h.startswith("evidence_auditor="))
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "Path=/auditor" in set_cookie


def test_the_magic_link_endpoint_has_the_apis_stricter_limit_per_address(settings, db):
    prefix = f"{settings.redis_key_prefix}{uuid.uuid4().hex[:8]}:"
    browser = create_app(settings.model_copy(update={
        "auth_rate_limit": "2/minute", "redis_key_prefix": prefix})).test_client()
    csrf = csrf_of(browser, "/auditor/accept")
    statuses = [browser.post("/auditor/accept", data={"token": f"guess{i}", "csrf_token": csrf})
                .status_code for i in range(3)]
    assert statuses == [401, 401, 429]
