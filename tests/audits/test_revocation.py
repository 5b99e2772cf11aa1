"""An auditor can be cut off: every auditor token names a server-side session that each auditor
request checks, so a customer's revocation (or a re-invitation of the same address) refuses the
auditor's very next request; completing the audit leaves its sessions reading, never writing.
Every withdrawal is in the activity log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from flask.testing import FlaskClient

from engine import audits
from engine.auditor_tokens import _signing_key, new_link_token, verify_auditor_token
from engine.db import session_factory
from engine.errors import Unauthorized
from engine.models.audit import AuditorInvitation
from engine.settings import Settings
from engine.tokens import mint
from tests.audits.conftest import ACCOUNT, advance, bearer, create_audit, ok

WRITES = [
    ("put", "/api/v1/auditor/controls/CC6.1/status", {"status": "passed"}),
    ("post", "/api/v1/auditor/evidence-requests", {"control_id": "CC6.1", "description": "x"}),
    ("post", "/api/v1/auditor/findings", {"control_id": "CC6.1", "severity": "minor",
                                          "title": "t", "description": "d"}),
    ("post", "/api/v1/auditor/complete", None),
]
READS = ["/api/v1/auditor/audit", "/api/v1/auditor/controls",
         "/api/v1/auditor/controls/CC6.1/evidence", "/api/v1/auditor/findings",
         "/api/v1/auditor/evidence-requests"]


def invitation_link(settings: Settings, audit_id: str, email: str = "auditor@firm.com", *,
                    expires_in: timedelta = timedelta(days=7)) -> str:
    """A pending invitation written to the database, and its magic-link token (the mail
    round trip is test_lifecycle's subject; these tests are about what happens after)."""
    token, token_hash = new_link_token()
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        s.add(AuditorInvitation(audit_id=audit_id, account_id=ACCOUNT, email=email,
                                name=email.split("@")[0].title(), firm="Big4 Audit LLP",
                                token_hash=token_hash, invited_by="developer",
                                created_at=now, expires_at=now + expires_in))
    return token


def accept(client: FlaskClient, token: str) -> tuple[dict[str, str], dict]:
    data = ok(client.post("/api/v1/auditor/accept-invitation", json={"token": token}))
    return bearer(data["token"]), data


def join(client: FlaskClient, settings: Settings, audit_id: str,
         email: str = "auditor@firm.com") -> tuple[dict[str, str], dict]:
    """An auditor invited and accepted: its header and the accept answer."""
    return accept(client, invitation_link(settings, audit_id, email))


def listed(client: FlaskClient, auth: dict[str, str], audit_id: str) -> dict[str, dict]:
    return {a["email"]: a for a in ok(client.get(f"/api/v1/audits/{audit_id}/auditors",
                                                 headers=auth))}


def refused(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_json()
    error: dict = resp.get_json()["error"]
    assert error["code"] == code, error
    return error


def activity_of(client, auth, audit_id: str, kind: str) -> list[dict]:
    log = ok(client.get(f"/api/v1/audits/{audit_id}/activity", headers=auth))
    return [e for e in log if e["type"] == kind]


def test_a_revoked_auditor_is_refused_on_the_very_next_request(client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    auditor, accepted = join(client, audit_settings, audit_id)
    assert ok(client.get("/api/v1/auditor/audit", headers=auditor))["id"] == audit_id
    ok(client.post("/api/v1/auditor/findings", headers=auditor, json=WRITES[2][2]), 201)
    inv_id = listed(client, auth, audit_id)["auditor@firm.com"]["id"]

    revoked = ok(client.delete(f"/api/v1/audits/{audit_id}/auditors/{inv_id}", headers=auth))

    assert revoked["status"] == "revoked" and revoked["revoked_by"] == "developer"
    assert [(s["id"], s["status"], s["revoked_reason"]) for s in revoked["sessions"]] == [
        (accepted["session_id"], "revoked", "revoked")]
    for path in READS:
        error = refused(client.get(path, headers=auditor), 401, "session_revoked")
        assert error["reason"] == "revoked" and "withdrawn" in error["message"]
    for method, path, body in WRITES:
        refused(getattr(client, method)(path, json=body, headers=auditor), 401,
                "session_revoked")
    [entry] = activity_of(client, auth, audit_id, "auditor_revoked")
    assert (entry["actor_kind"], entry["actor"]) == ("customer", "developer")
    assert entry["details"] == {"invitation_id": inv_id, "email": "auditor@firm.com",
                                "name": "Auditor", "reason": "revoked",
                                "session_ids": [accepted["session_id"]]}
    assert len(ok(client.get(f"/api/v1/audits/{audit_id}/findings", headers=auth))) == 1


def test_revoking_a_pending_invitation_kills_its_link_and_revoking_twice_changes_nothing(
        client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    link = invitation_link(audit_settings, audit_id)
    inv_id = listed(client, auth, audit_id)["auditor@firm.com"]["id"]
    path = f"/api/v1/audits/{audit_id}/auditors/{inv_id}"

    first = ok(client.delete(path, headers=auth))
    again = ok(client.delete(path, headers=auth))

    assert first == again and first["status"] == "revoked" and first["sessions"] == []
    refused(client.post("/api/v1/auditor/accept-invitation", json={"token": link}), 401,
            "invitation_revoked")
    assert len(activity_of(client, auth, audit_id, "auditor_revoked")) == 1


def test_the_auditor_list_shows_each_invitation_its_status_and_its_sessions(
        client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    invitation_link(audit_settings, audit_id, "pending@firm.com")
    invitation_link(audit_settings, audit_id, "late@firm.com", expires_in=timedelta(seconds=-1))
    _, active = join(client, audit_settings, audit_id, "active@firm.com")
    join(client, audit_settings, audit_id, "gone@firm.com")
    gone_id = listed(client, auth, audit_id)["gone@firm.com"]["id"]
    ok(client.delete(f"/api/v1/audits/{audit_id}/auditors/{gone_id}", headers=auth))

    resp = client.get(f"/api/v1/audits/{audit_id}/auditors", headers=auth)
    found = {a["email"]: a for a in ok(resp)}

    assert {e: a["status"] for e, a in found.items()} == {
        "pending@firm.com": "invited", "late@firm.com": "expired",
        "active@firm.com": "accepted", "gone@firm.com": "revoked"}
    me = found["active@firm.com"]
    assert me["name"] == "Active" and me["firm"] == "Big4 Audit LLP"
    assert me["invited_at"] and me["accepted_at"] and me["revoked_at"] is None
    [session] = me["sessions"]
    assert session["id"] == active["session_id"] and session["id"].startswith("aus-")
    assert (session["status"], session["can_write"]) == ("active", True)
    assert session["expires_at"] == active["expires_at"]
    assert found["pending@firm.com"]["sessions"] == []
    assert found["gone@firm.com"]["revoked_at"] is not None
    # the list names sessions, never a credential
    body = resp.get_data(as_text=True)
    assert active["token"] not in body and "token" not in json.loads(body)["data"][0]
    # the audit detail shows the same auditors
    detail = ok(client.get(f"/api/v1/audits/{audit_id}", headers=auth))
    assert {a["email"]: a["status"] for a in detail["auditors"]} == {
        e: a["status"] for e, a in found.items()}


def test_reinviting_an_address_ends_its_earlier_session(client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    old, old_accept = join(client, audit_settings, audit_id, "auditor@firm.com")
    other, _ = join(client, audit_settings, audit_id, "partner@firm.com")
    old_id = listed(client, auth, audit_id)["auditor@firm.com"]["id"]

    new = ok(client.post(f"/api/v1/audits/{audit_id}/invite-auditor", headers=auth,
                         json={"email": "Auditor@Firm.com", "name": "Jane Smith"}), 201)

    error = refused(client.get("/api/v1/auditor/audit", headers=old), 401, "session_revoked")
    assert error["reason"] == "replaced" and "newer invitation" in error["message"]
    ok(client.get("/api/v1/auditor/audit", headers=other))  # another address keeps its access
    auditors = ok(client.get(f"/api/v1/audits/{audit_id}/auditors", headers=auth))
    assert [(a["id"], a["status"]) for a in auditors
            if a["email"].lower() == "auditor@firm.com"] == [(old_id, "revoked"),
                                                              (new["id"], "invited")]
    [entry] = activity_of(client, auth, audit_id, "auditor_revoked")
    assert entry["details"] == {"invitation_id": old_id, "email": "auditor@firm.com",
                                "name": "Auditor", "reason": "replaced",
                                "replaced_by": new["id"],
                                "session_ids": [old_accept["session_id"]]}


def test_completing_the_audit_ends_auditor_writes_and_keeps_reads(client, auth,
                                                                  audit_settings):
    audit_id = create_audit(client, auth)["id"]
    auditor, accepted = join(client, audit_settings, audit_id)
    late_link = invitation_link(audit_settings, audit_id, "late@firm.com")
    advance(client, auth, audit_id, "in_progress", "evidence_review", "findings")
    ok(client.post("/api/v1/auditor/complete", headers=auditor))
    late, late_accept = accept(client, late_link)  # accepted after completion: reads only

    for headers in (auditor, late):
        for method, path, body in WRITES:
            error = refused(getattr(client, method)(path, json=body, headers=headers), 409,
                            "audit_read_only")
            assert "read-only" in error["message"]
        for path in READS:
            assert client.get(path, headers=headers).status_code == 200, path
    sessions = {a["email"]: a["sessions"][0] for a in ok(
        client.get(f"/api/v1/audits/{audit_id}/auditors", headers=auth))}
    assert {e: (s["status"], s["can_write"]) for e, s in sessions.items()} == {
        "auditor@firm.com": ("active", False), "late@firm.com": ("active", False)}
    assert sessions["auditor@firm.com"]["writes_ended_at"] is not None
    completed = [e for e in activity_of(client, auth, audit_id, "status_changed")
                 if e["status"] == "complete"]
    assert completed[0]["details"]["auditor_sessions_read_only"] == [accepted["session_id"]]
    assert late_accept["session_id"] != accepted["session_id"]

    # Withdrawing access still works on a complete audit, and ends the reads too.
    inv_id = next(a["id"] for a in ok(client.get(f"/api/v1/audits/{audit_id}/auditors",
                                                 headers=auth))
                  if a["email"] == "auditor@firm.com")
    ok(client.delete(f"/api/v1/audits/{audit_id}/auditors/{inv_id}", headers=auth))
    refused(client.get("/api/v1/auditor/audit", headers=auditor), 401, "session_revoked")
    ok(client.get("/api/v1/auditor/audit", headers=late))


def test_another_account_can_neither_list_nor_revoke_an_audits_auditors(client, auth,
                                                                        audit_settings):
    audit_id = create_audit(client, auth)["id"]
    other_audit = create_audit(client, auth, title="Other")["id"]
    auditor, _ = join(client, audit_settings, audit_id)
    inv_id = listed(client, auth, audit_id)["auditor@firm.com"]["id"]
    globex = bearer(mint(audit_settings, "globex"))

    refused(client.get(f"/api/v1/audits/{audit_id}/auditors", headers=globex), 404,
            "audit_not_found")
    refused(client.delete(f"/api/v1/audits/{audit_id}/auditors/{inv_id}", headers=globex),
            404, "audit_not_found")
    # an auditor is revoked through its own audit only, and an auditor token is no customer's
    refused(client.delete(f"/api/v1/audits/{other_audit}/auditors/{inv_id}", headers=auth),
            404, "auditor_not_found")
    refused(client.delete(f"/api/v1/audits/{audit_id}/auditors/inv-nothing", headers=auth),
            404, "auditor_not_found")
    assert client.get(f"/api/v1/audits/{audit_id}/auditors",
                      headers=auditor).status_code == 401
    assert client.delete(f"/api/v1/audits/{audit_id}/auditors/{inv_id}",
                         headers=auditor).status_code == 401

    ok(client.get("/api/v1/auditor/audit", headers=auditor))
    assert listed(client, auth, audit_id)["auditor@firm.com"]["status"] == "accepted"
    assert activity_of(client, auth, audit_id, "auditor_revoked") == []


def test_an_auditor_token_without_a_live_session_is_refused(client, auth, audit_settings):
    audit_id = create_audit(client, auth)["id"]
    _, accepted = join(client, audit_settings, audit_id)
    claims = jwt.decode(accepted["token"], options={"verify_signature": False})
    key = _signing_key(audit_settings)

    def signed(**changes: object) -> dict[str, str]:
        forged = {k: v for k, v in {**claims, **changes}.items() if v is not None}
        return bearer(jwt.encode(forged, key, algorithm="HS256"))

    no_session = signed(sid=None)  # as minted before auditor sessions existed
    unknown = signed(sid="aus-unknown")
    for headers in (no_session, unknown):
        refused(client.get("/api/v1/auditor/audit", headers=headers), 401, "invalid_token")
    ok(client.get("/api/v1/auditor/audit", headers=bearer(accepted["token"])))


def test_the_new_routes_are_documented_with_their_shapes(client):
    doc = client.get("/openapi.json").get_json()
    listing = doc["paths"]["/api/v1/audits/{audit_id}/auditors"]["get"]
    revoke = doc["paths"]["/api/v1/audits/{audit_id}/auditors/{auditor_id}"]["delete"]
    for op, reply in ((listing, "AuditorListReply"), (revoke, "InvitationReply")):
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{reply}"}
        assert op["security"] == [{"bearer": []}]
        assert "404" in op["responses"] and "401" in op["responses"]
    auditor = doc["components"]["schemas"]["AuditorOut"]["properties"]
    assert {"status", "sessions", "revoked_at", "accepted_at"} <= set(auditor)
    session = doc["components"]["schemas"]["AuditorSessionOut"]["properties"]
    assert {"id", "status", "can_write", "revoked_reason"} <= set(session)


def test_a_change_authenticated_before_a_revocation_committed_is_refused(
        client, auth, audit_settings):
    """Revoking and auditor changes both lock the audit row, and a change reads its session
    again under that lock: a request already past authentication cannot land after the
    revocation."""
    audit_id = create_audit(client, auth)["id"]
    _, accepted = join(client, audit_settings, audit_id)
    sessions = session_factory(audit_settings)
    with sessions() as s:
        principal = verify_auditor_token(audit_settings, s, accepted["token"])
    inv_id = listed(client, auth, audit_id)["auditor@firm.com"]["id"]
    ok(client.delete(f"/api/v1/audits/{audit_id}/auditors/{inv_id}", headers=auth))

    with sessions() as s:
        audits.get_audit(s, principal.account_id, principal.audit_id, for_update=True)
        with pytest.raises(Unauthorized) as refusal:
            audits.require_session_writable(s, principal)
    assert refusal.value.code == "session_revoked"
