"""Connecting Google Cloud through the API and a real Celery worker: what a failed verification
says (the project end to end: tests/connectors/test_end_to_end.py)."""

from __future__ import annotations

from tests.connectors.gcp.local_gcs import LocalGcs


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
