"""Connect and sync Google Cloud through the API, a real Celery worker and the GCS emulator."""

from __future__ import annotations

from collections import defaultdict

from connectors.gcp.emulated import seed_estate
from tests.conftest import all_evidence
from tests.connectors.gcp.local_gcs import LocalGcs


def test_connect_sync_and_read_back_exactly_the_emulated_project(client, auth, worker,
                                                                gcs_endpoint):
    estate = seed_estate(gcs_endpoint)
    connected = client.post("/api/v1/integrations/gcp/connect?wait=30", headers=auth,
                            json={"credentials": estate.credentials(),
                                  "sync_frequency": "daily"})
    assert connected.status_code == 200, connected.get_json()
    assert connected.get_json()["metadata"] == {"projectId": "acme-prod",
                                                "serviceAccount": "anonymous"}

    synced = client.post("/api/v1/integrations/gcp/sync?wait=60", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    expected_count = sum(len(v) for v in estate.expected.values())
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == expected_count

    found: dict[str, dict[str, str]] = defaultdict(dict)
    evidence = all_evidence(client, auth, "gcp", page_size=25)
    assert len(evidence) == expected_count
    for item in evidence:
        found[item["check_id"]][item["resource_id"]] = item["status"]
    assert dict(found) == estate.expected

    controls = client.get("/api/v1/integrations/gcp/controls", headers=auth).get_json()
    assert controls["connected"] is True
    results = controls["controlResults"]
    assert results and any(c["status"] == "failing" for c in results)
    ids = {c["controlId"] for c in results}
    assert {"soc2-cc6.1", "iso27001-a.8.13", "iso27001-a.8.15"} <= ids
    for c in results:
        assert c["total"] >= c["passing"]

    again = client.post("/api/v1/integrations/gcp/sync?wait=60", headers=auth).get_json()
    assert again["success"] is True and again["run"]["changedCount"] == 0


def test_a_provider_answering_401_leaves_the_connection_in_error_with_what_to_fix(
        client, auth, worker, local_gcs: LocalGcs):
    local_gcs.fail("list", 401, times=None)
    resp = client.post("/api/v1/integrations/gcp/connect?wait=30", headers=auth, json={
        "credentials": {"project_id": "acme-prod", "endpoint_url": local_gcs.endpoint}})
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "verification_failed"
    assert "provide service_account_json" in error["message"]
    listed = client.get("/api/v1/integrations", headers=auth).get_json()["integrations"]
    gcp = next(i for i in listed if i["id"] == "gcp")
    assert gcp["status"] == "error"
