"""Connect and sync Okta through the API and a real Celery worker, against the local Okta server."""

from __future__ import annotations

from collections import defaultdict

from tests.conftest import all_evidence
from tests.connectors.okta.okta_server import OktaServer


def test_connect_sync_and_read_back_exactly_the_emulated_org(client, auth, worker,
                                                             okta: OktaServer):
    estate = okta.estate
    connected = client.post("/api/v1/integrations/okta/connect?wait=30", headers=auth,
                            json={"credentials": estate.credentials(),
                                  "sync_frequency": "daily"})
    assert connected.status_code == 200, connected.get_json()
    body = connected.get_json()
    assert body["metadata"] == {"orgUrl": okta.url, "authMode": "api_token"}
    assert estate.api_token not in connected.get_data(as_text=True)

    synced = client.post("/api/v1/integrations/okta/sync?wait=60", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    expected_count = sum(len(v) for v in estate.expected.values())
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == expected_count

    found: dict[str, dict[str, str]] = defaultdict(dict)
    for item in all_evidence(client, auth, "okta", page_size=50):
        found[item["check_id"]][item["resource_id"]] = item["status"]
    assert dict(found) == estate.expected

    controls = client.get("/api/v1/integrations/okta/controls", headers=auth).get_json()
    by_id = {c["controlId"]: c for c in controls["controlResults"]}
    assert {"soc2-cc6.1", "iso27001-a.8.5", "iso27001-a.8.2"} <= set(by_id)
    assert by_id["iso27001-a.8.2"]["status"] == "failing"  # six super admins, four allowed

    again = client.post("/api/v1/integrations/okta/sync?wait=60", headers=auth).get_json()
    assert again["success"] is True and again["run"]["changedCount"] == 0


def test_a_revoked_token_fails_verification_with_what_to_fix(client, auth, worker,
                                                            okta: OktaServer):
    raw = {**okta.estate.credentials(), "api_token": "00" + "r" * 40}
    resp = client.post("/api/v1/integrations/okta/connect?wait=30", headers=auth,
                       json={"credentials": raw})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "verification_failed"
    assert "create a new token" in error["message"] and raw["api_token"] not in str(error)
