"""Seed 000 endpoints with in-process jobs: list, connect (200 or 202 pending), status with
history, evidence paging and filters, controls, disconnect."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.db import session_factory
from engine.models import Connection, ConnectionStatus, Evidence, RunStatus, SyncRun

FAKE = "/api/v1/integrations/fake"


def connect_fake(client, auth, wait: int = 5):
    return client.post(f"{FAKE}/connect?wait={wait}", headers=auth,
                       json={"credentials": {"token": "t0k3n"}, "sync_frequency": "hourly"})


def test_list_filters_by_category_and_shows_the_connection(client, auth, inline_jobs,
                                                           fake_connector):
    assert connect_fake(client, auth).status_code == 200
    everything = client.get("/api/v1/integrations", headers=auth).get_json()["integrations"]
    assert {"aws", "fake"} <= {i["id"] for i in everything}
    monitoring = client.get("/api/v1/integrations?category=monitoring", headers=auth).get_json()
    assert [i["id"] for i in monitoring["integrations"]] == ["fake"]
    (fake,) = monitoring["integrations"]
    assert fake == {"id": "fake", "name": "Fake", "icon": "fake", "category": "monitoring",
                    "authType": "api_key", "connected": True, "status": "active",
                    "lastSync": fake["lastSync"], "evidenceCount": 6}
    assert fake["lastSync"].endswith("Z")
    cloud = client.get("/api/v1/integrations?category=cloud", headers=auth).get_json()
    assert "fake" not in {i["id"] for i in cloud["integrations"]}
    bad = client.get("/api/v1/integrations?category=astrology", headers=auth)
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"][0]["field"] == "category"


def test_connect_answers_202_pending_until_verified_and_status_resolves_it(client, auth, jobs,
                                                                          fake_connector,
                                                                          settings):
    resp = connect_fake(client, auth, wait=0)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["status"] == "pending" and body["connectionId"].startswith("conn-")
    assert [j.name for j in jobs] == ["connections.verify"]
    status = client.get(f"{FAKE}/status", headers=auth).get_json()
    assert (status["status"], status["connected"], status["syncHistory"]) == (
        "pending", True, [])
    sync = client.post(f"{FAKE}/sync", headers=auth)
    assert (sync.status_code, sync.get_json()["error"]["code"]) == (409, "connection_pending")

    from engine.verification import verify_connection

    verify_connection(session_factory(settings), body["connectionId"], settings)
    status = client.get(f"{FAKE}/status", headers=auth).get_json()
    assert status["status"] == "active" and status["metadata"] == {"widgets": 3}
    assert status["syncFrequency"] == "hourly" and status["nextSync"]
    assert [(r["trigger"], r["status"]) for r in status["syncHistory"]] == [
        ("connect", "queued")]


def test_a_failed_verification_is_a_400_with_the_reason(client, auth, inline_jobs,
                                                        fake_connector, settings):
    from tests.engine import fake

    def refuse(self):  # the provider refuses these credentials
        from connectors.base import AuthFailed

        raise AuthFailed("the token was revoked")

    original = fake.FakeConnector.verify
    fake.FakeConnector.verify = refuse  # type: ignore[method-assign]
    try:
        resp = connect_fake(client, auth)
    finally:
        fake.FakeConnector.verify = original  # type: ignore[method-assign]
    assert resp.status_code == 400
    assert resp.get_json()["error"] == {"code": "verification_failed",
                                        "message": "the token was revoked",
                                        "connectionId": resp.get_json()["error"]["connectionId"]}
    status = client.get(f"{FAKE}/status", headers=auth).get_json()
    assert status["status"] == "error" and status["statusMessage"] == "the token was revoked"


def test_evidence_pages_and_filters(client, auth, inline_jobs, fake_connector):
    fake_connector["widgets"] = {f"w{i:02}": i % 3 != 0 for i in range(30)}
    assert connect_fake(client, auth).status_code == 200
    first = client.get(f"{FAKE}/evidence", headers=auth).get_json()
    assert (first["total"], first["limit"], first["offset"], len(first["evidence"])) == (
        60, 50, 0, 50)
    rest = client.get(f"{FAKE}/evidence?limit=50&offset=50", headers=auth).get_json()
    assert len(rest["evidence"]) == 10
    ids = {e["id"] for e in first["evidence"]} | {e["id"] for e in rest["evidence"]}
    assert len(ids) == 60
    item = first["evidence"][0]
    assert set(item) >= {"id", "control_id", "framework_id", "type", "status", "title",
                         "collected_at"}
    failing = client.get(f"{FAKE}/evidence?status=failing&limit=200", headers=auth).get_json()
    assert failing["total"] == 10 and {e["status"] for e in failing["evidence"]} == {"failing"}
    one_check = client.get(f"{FAKE}/evidence?check=fake.widget.locked&limit=5",
                           headers=auth).get_json()
    assert one_check["total"] == 30 and len(one_check["evidence"]) == 5
    assert {e["check_id"] for e in one_check["evidence"]} == {"fake.widget.locked"}
    assert one_check["evidence"][0]["control_id"] == "soc2-cc6.1"
    for bad in ("limit=0", "limit=201", "offset=-1", "status=green", "offset=99999999999999"):
        resp = client.get(f"{FAKE}/evidence?{bad}", headers=auth)
        assert resp.status_code == 422, bad


def test_controls_show_mappings_and_results(client, auth, inline_jobs, fake_connector):
    before = client.get(f"{FAKE}/controls", headers=auth).get_json()
    assert before["connected"] is False
    assert {c["controlId"] for c in before["controlMappings"]} == {
        "soc2-cc6.1", "soc2-cc7.2", "iso27001-a.8.5", "iso27001-a.8.16"}
    assert connect_fake(client, auth).status_code == 200
    after = client.get(f"{FAKE}/controls", headers=auth).get_json()
    results = {c["controlId"]: c for c in after["controlResults"]}
    assert after["connected"] is True
    assert (results["soc2-cc6.1"]["status"], results["soc2-cc6.1"]["passing"],
            results["soc2-cc6.1"]["total"]) == ("failing", 2, 3)
    assert results["soc2-cc7.2"]["status"] == "passing"


def test_disconnect_cancels_queued_runs_and_keeps_evidence(client, auth, inline_jobs,
                                                           fake_connector, settings):
    connected = connect_fake(client, auth)
    assert connected.status_code == 200
    with session_factory(settings)() as s, s.begin():
        conn = s.get_one(Connection, connected.get_json()["connectionId"])
        s.add(SyncRun(account_id="acme", connection_id=conn.id, trigger="scheduled",
                      status=RunStatus.QUEUED, errors=[]))
    resp = client.delete(f"{FAKE}/disconnect", headers=auth)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["success"] is True and body["message"].startswith("Integration disconnected")
    assert "6 evidence item(s) kept as history" in body["message"]
    assert (body["cancelledRuns"], body["evidenceKept"], body["credentialsRevoked"]) == (
        1, 6, False)
    with session_factory(settings)() as s:
        conn = s.get_one(Connection, body["connectionId"])
        assert conn.status == ConnectionStatus.DISCONNECTED
        assert conn.credentials_encrypted is None and conn.disconnected_at is not None
        assert s.scalar(select(func.count()).select_from(Evidence)) == 6
        statuses = {r.status for r in s.scalars(select(SyncRun))}
        assert statuses == {RunStatus.SUCCEEDED, RunStatus.CANCELLED}

    history = client.get(f"{FAKE}/evidence", headers=auth).get_json()
    assert history["total"] == 6  # kept, readable as history
    status = client.get(f"{FAKE}/status", headers=auth).get_json()
    assert (status["status"], status["connected"]) == ("disconnected", False)
    listed = client.get("/api/v1/integrations?category=monitoring", headers=auth).get_json()
    assert listed["integrations"][0]["connected"] is False
    again = client.delete(f"{FAKE}/disconnect", headers=auth)
    assert (again.status_code, again.get_json()["error"]["code"]) == (404, "not_connected")
    assert connect_fake(client, auth).status_code == 200  # a new connection, fresh start
