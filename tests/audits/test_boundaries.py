"""Who can reach what: customer and auditor tokens stay on their side, an auditor reaches one
audit, a magic link works once and expires, a complete audit is read-only, the status flow is
one step at a time, and the activity log cannot be rewritten."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from engine.auditor_tokens import hash_link_token, new_link_token
from engine.db import session_factory
from engine.models.audit import AuditActivity, AuditorInvitation, MailStatus, OutboundMail
from engine.tokens import mint
from tests.audits.conftest import advance, bearer, create_audit, ok

AUDITOR_ROUTES = [
    ("get", "/api/v1/auditor/audit", None),
    ("get", "/api/v1/auditor/controls", None),
    ("get", "/api/v1/auditor/controls/CC6.1/evidence", None),
    ("put", "/api/v1/auditor/controls/CC6.1/status", {"status": "passed"}),
    ("post", "/api/v1/auditor/evidence-requests", {"control_id": "CC6.1", "description": "x"}),
    ("get", "/api/v1/auditor/evidence-requests", None),
    ("post", "/api/v1/auditor/findings", {"control_id": "CC6.1", "severity": "minor",
                                          "title": "t", "description": "d"}),
    ("get", "/api/v1/auditor/findings", None),
    ("put", "/api/v1/auditor/findings/fnd-1", {"status": "resolved"}),
    ("post", "/api/v1/auditor/complete", None),
]


def customer_routes(audit_id: str) -> list[tuple[str, str, dict | None]]:
    base = f"/api/v1/audits/{audit_id}"
    return [
        ("get", "/api/v1/audits", None),
        ("post", "/api/v1/audits", {"framework_id": "soc2", "type": "type_i", "title": "t"}),
        ("get", base, None),
        ("put", base, {"status": "in_progress"}),
        ("post", f"{base}/invite-auditor", {"email": "x@y.z", "name": "X"}),
        ("get", f"{base}/findings", None),
        ("get", f"{base}/evidence-requests", None),
        ("post", f"{base}/evidence-requests/evr-1/respond",
         {"evidence_file_url": "https://e.test/f"}),
        ("post", f"{base}/report", None),
        ("get", f"{base}/activity", None),
    ]


def call(client, method: str, path: str, body: dict | None, headers: dict[str, str]):
    return getattr(client, method)(path, json=body, headers=headers)


def test_customer_token_cannot_reach_auditor_endpoints(client, auth):
    create_audit(client, auth)
    for method, path, body in AUDITOR_ROUTES:
        resp = call(client, method, path, body, auth)
        assert resp.status_code == 401, (path, resp.get_json())
        assert resp.get_json()["error"]["code"] == "invalid_token"


def test_auditor_token_cannot_reach_customer_endpoints(client, auth, auditor_for):
    audit_id = create_audit(client, auth)["id"]
    auditor = auditor_for(audit_id)
    assert ok(client.get("/api/v1/auditor/audit", headers=auditor))["id"] == audit_id
    for method, path, body in [*customer_routes(audit_id),
                               ("get", "/api/v1/integrations", None)]:
        resp = call(client, method, path, body, auditor)
        assert resp.status_code == 401, (path, resp.get_json())
    assert ok(client.get(f"/api/v1/audits/{audit_id}/activity", headers=auth))[-1]["type"] \
        == "invitation_accepted"  # the refused calls changed nothing


def test_auditor_token_reaches_only_its_own_audit(client, auth, auditor_for):
    mine = create_audit(client, auth, title="Mine")["id"]
    other = create_audit(client, auth, title="Other")["id"]
    me = auditor_for(mine, "me@firm.com")
    them = auditor_for(other, "them@firm.com")
    theirs = ok(client.post("/api/v1/auditor/findings", headers=them, json={
        "control_id": "CC6.1", "severity": "minor", "title": "Theirs", "description": "d"}), 201)

    assert ok(client.get("/api/v1/auditor/audit", headers=me))["id"] == mine
    assert ok(client.get("/api/v1/auditor/findings", headers=me)) == []
    resp = client.put(f"/api/v1/auditor/findings/{theirs['id']}", headers=me,
                      json={"status": "resolved"})
    assert resp.status_code == 404
    assert ok(client.get(f"/api/v1/audits/{other}/findings", headers=auth))[0]["status"] == "open"
    # An audit id in a path is a customer route, which refuses the auditor token outright.
    assert client.get(f"/api/v1/audits/{other}", headers=me).status_code == 401


def test_another_account_cannot_see_an_audit(client, auth, settings):
    audit_id = create_audit(client, auth)["id"]
    globex = bearer(mint(settings, "globex"))
    assert client.get(f"/api/v1/audits/{audit_id}", headers=globex).status_code == 404
    assert client.post(f"/api/v1/audits/{audit_id}/report", headers=globex).status_code == 404
    assert ok(client.get("/api/v1/audits", headers=globex)) == []


def test_a_used_magic_link_is_refused(client, auth, invite):
    audit_id = create_audit(client, auth)["id"]
    token = invite(audit_id)
    ok(client.post("/api/v1/auditor/accept-invitation", json={"token": token}))
    again = client.post("/api/v1/auditor/accept-invitation", json={"token": token})
    assert again.status_code == 401
    assert again.get_json()["error"]["code"] == "invitation_used"


def insert_invitation(settings, audit_id: str, *, expires_at: datetime) -> str:
    token, token_hash = new_link_token()
    with session_factory(settings)() as s, s.begin():
        s.add(AuditorInvitation(audit_id=audit_id, account_id="acme", email="late@firm.com",
                                name="Late", token_hash=token_hash, invited_by="developer",
                                created_at=expires_at - timedelta(days=7),
                                expires_at=expires_at))
    return token


def test_an_expired_or_unknown_magic_link_is_refused(client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    expired = insert_invitation(audit_settings, audit_id,
                                expires_at=datetime.now(UTC) - timedelta(seconds=1))
    current = insert_invitation(audit_settings, audit_id,
                                expires_at=datetime.now(UTC) + timedelta(days=1))
    resp = client.post("/api/v1/auditor/accept-invitation", json={"token": expired})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "invitation_expired"
    resp = client.post("/api/v1/auditor/accept-invitation", json={"token": "not-a-real-token"})
    assert resp.get_json()["error"]["code"] == "invitation_invalid"
    ok(client.post("/api/v1/auditor/accept-invitation", json={"token": current}))


def test_a_new_invitation_replaces_the_earlier_link(client, auth, invite):
    audit_id = create_audit(client, auth)["id"]
    first = invite(audit_id)
    second = invite(audit_id)
    resp = client.post("/api/v1/auditor/accept-invitation", json={"token": first})
    assert resp.get_json()["error"]["code"] == "invitation_revoked"
    ok(client.post("/api/v1/auditor/accept-invitation", json={"token": second}))


def test_magic_link_is_stored_only_as_a_hash_and_the_sent_mail_body_is_erased(
        client, auth, invite, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    token = invite(audit_id)
    deadline = time.monotonic() + 20  # the worker commits just after SMTP took the message
    while True:
        with session_factory(audit_settings)() as s:
            invitation = s.scalars(select(AuditorInvitation)).one()
            mail = s.get_one(OutboundMail, invitation.mail_id)
        if mail.status != MailStatus.QUEUED or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    with session_factory(audit_settings)() as s:
        dump = s.execute(text("SELECT string_agg(t::text, '') FROM (SELECT * FROM "
                              "auditor_invitation) t")).scalar_one()
        dump += s.execute(text("SELECT string_agg(t::text, '') FROM (SELECT * FROM "
                               "outbound_mail) t")).scalar_one()
        dump += s.execute(text("SELECT string_agg(t::text, '') FROM (SELECT * FROM "
                               "audit_activity) t")).scalar_one()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert hash_link_token(token) == invitation.token_hash
    assert mail.status == MailStatus.SENT and mail.body_sealed is None
    assert token not in dump


def walk_to_complete(client, auth, auditor, audit_id: str) -> None:
    advance(client, auth, audit_id, "in_progress", "evidence_review", "findings")
    ok(client.post("/api/v1/auditor/complete", headers=auditor))


def test_a_completed_audit_is_read_only(client, auth, auditor_for):
    audit_id = create_audit(client, auth)["id"]
    auditor = auditor_for(audit_id)
    req = ok(client.post("/api/v1/auditor/evidence-requests", headers=auditor,
                         json={"control_id": "CC6.1", "description": "x"}), 201)
    finding = ok(client.post("/api/v1/auditor/findings", headers=auditor, json={
        "control_id": "CC6.1", "severity": "minor", "title": "t", "description": "d"}), 201)
    walk_to_complete(client, auth, auditor, audit_id)
    before = ok(client.get(f"/api/v1/audits/{audit_id}/activity", headers=auth))

    writes = [
        (auth, "put", f"/api/v1/audits/{audit_id}", {"title": "Renamed"}),
        (auth, "put", f"/api/v1/audits/{audit_id}", {"status": "complete"}),
        (auth, "post", f"/api/v1/audits/{audit_id}/invite-auditor",
         {"email": "new@firm.com", "name": "New"}),
        (auth, "post", f"/api/v1/audits/{audit_id}/evidence-requests/{req['id']}/respond",
         {"evidence_file_url": "https://e.test/f"}),
        (auditor, "put", "/api/v1/auditor/controls/CC6.1/status", {"status": "passed"}),
        (auditor, "post", "/api/v1/auditor/evidence-requests",
         {"control_id": "CC6.1", "description": "x"}),
        (auditor, "post", "/api/v1/auditor/findings", {"control_id": "CC6.1",
                                                       "severity": "minor", "title": "t",
                                                       "description": "d"}),
        (auditor, "put", f"/api/v1/auditor/findings/{finding['id']}", {"status": "resolved"}),
        (auditor, "post", "/api/v1/auditor/complete", None),
    ]
    for headers, method, path, body in writes:
        resp = call(client, method, path, body, headers)
        assert resp.status_code == 409, (path, resp.get_json())
        assert resp.get_json()["error"]["code"] == "audit_read_only"
    assert ok(client.get(f"/api/v1/audits/{audit_id}/activity", headers=auth)) == before
    assert ok(client.get("/api/v1/auditor/controls", headers=auditor))  # reads still work
    ok(client.post(f"/api/v1/audits/{audit_id}/report", headers=auth))


def test_status_moves_one_step_along_the_flow_else_409_with_the_allowed_next(client, auth):
    audit_id = create_audit(client, auth)["id"]
    path = f"/api/v1/audits/{audit_id}"
    skip = client.put(path, json={"status": "evidence_review", "title": "Not applied"},
                      headers=auth)
    assert skip.status_code == 409
    error = skip.get_json()["error"]
    assert error["code"] == "invalid_status_transition"
    assert error["allowed_next_statuses"] == ["in_progress"]
    assert ok(client.get(path, headers=auth))["title"] == "SOC 2 Type II Annual Audit 2026"

    same = ok(client.put(path, json={"status": "draft"}, headers=auth))
    assert same["status"] == "draft"
    advance(client, auth, audit_id, "in_progress", "evidence_review")
    back = client.put(path, json={"status": "in_progress"}, headers=auth)
    assert back.status_code == 409
    assert back.get_json()["error"]["allowed_next_statuses"] == ["findings"]
    log = ok(client.get(f"{path}/activity", headers=auth))
    assert [e["details"].get("status") for e in log if e["type"] == "status_changed"] == [
        "in_progress", "evidence_review"]


def test_auditor_completes_only_from_findings(client, auth, auditor_for):
    audit_id = create_audit(client, auth)["id"]
    auditor = auditor_for(audit_id)
    early = client.post("/api/v1/auditor/complete", headers=auditor)
    assert early.status_code == 409
    assert early.get_json()["error"]["allowed_next_statuses"] == ["in_progress"]


def test_a_forged_auditor_token_is_refused(client, auth, settings, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    token = insert_invitation(audit_settings, audit_id,
                              expires_at=datetime.now(UTC) + timedelta(days=1))
    accepted = ok(client.post("/api/v1/auditor/accept-invitation", json={"token": token}))
    claims = jwt.decode(accepted["token"], options={"verify_signature": False})
    secret = settings.jwt_secret.get_secret_value()
    forgeries = {
        "customer secret": jwt.encode(claims, secret, algorithm="HS256"),
        "customer audience": mint(settings, "acme"),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "expired": None,
    }
    expired_claims = {**claims, "exp": int(datetime.now(UTC).timestamp()) - 10}
    from engine.auditor_tokens import _signing_key
    forgeries["expired"] = jwt.encode(expired_claims, _signing_key(settings), algorithm="HS256")
    for name, forged in forgeries.items():
        resp = client.get("/api/v1/auditor/audit", headers=bearer(forged))
        assert resp.status_code == 401, name
    assert client.get("/api/v1/auditor/audit",
                      headers=bearer(accepted["token"])).status_code == 200


def test_the_activity_log_is_append_only(client, auth, audit_settings):
    create_audit(client, auth)
    with session_factory(audit_settings)() as s:
        assert s.scalar(select(func.count()).select_from(AuditActivity)) == 1
        for statement in ("UPDATE audit_activity SET actor = 'someone else'",
                          "DELETE FROM audit_activity"):
            with pytest.raises(DBAPIError, match="append-only"):
                s.execute(text(statement))
            s.rollback()


def test_inviting_without_mail_configured_answers_503_and_writes_nothing(client, auth,
                                                                         audit_settings):
    from cli.wiring import api_app

    audit_id = create_audit(client, auth)["id"]
    no_mail = api_app(audit_settings.model_copy(update={"smtp_host": None})).test_client()
    resp = no_mail.post(f"/api/v1/audits/{audit_id}/invite-auditor", headers=auth,
                        json={"email": "auditor@firm.com", "name": "Jane"})
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "mail_unavailable"
    with session_factory(audit_settings)() as s:
        assert s.scalar(select(func.count()).select_from(AuditorInvitation)) == 0
        assert s.scalar(select(func.count()).select_from(OutboundMail)) == 0


def test_the_mailed_link_opens_a_page_that_accepts_it_without_sending_the_token(
        client, auth, invite):
    audit = create_audit(client, auth)
    token = invite(audit["id"])
    page = client.get("/auditor/accept")  # the path of the mailed link; the token rides in #
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"  # a Referer never has the #
    html = page.get_data(as_text=True)
    assert 'action="/auditor/accept"' in html and 'name="csrf_token"' in html
    script = client.get("/console/static/auditor_accept.js").get_data(as_text=True)
    assert 'get("token")' in script and "location.hash" in script  # read from the fragment
    assert "history.replaceState" in script  # and dropped from the address bar
    # the portal accepts it with the engine call the API makes (tests/console: the portal)
    ok(client.post("/api/v1/auditor/accept-invitation", json={"token": token}))
