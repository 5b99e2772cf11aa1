"""Connect and sync through the API, a real Celery worker and moto's server over HTTP."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from connectors.aws.emulated import seed_estate
from engine.db import session_factory
from engine.models import EvidenceVersion
from engine.settings import Settings
from tests.conftest import all_evidence


def versions(settings: Settings) -> int:
    with session_factory(settings)() as s:
        return s.scalar(select(func.count()).select_from(EvidenceVersion)) or 0


def test_connect_sync_and_read_back_exactly_the_emulated_estate(client, auth, worker,
                                                                aws_endpoint, settings):
    estate = seed_estate(aws_endpoint)
    connected = client.post("/api/v1/integrations/aws/connect?wait=30", headers=auth,
                            json={"credentials": estate.credentials(),
                                  "sync_frequency": "hourly"})
    assert connected.status_code == 200, connected.get_json()
    body = connected.get_json()
    assert body["success"] is True and body["connectionId"].startswith("conn-")
    assert body["metadata"]["accountAlias"] == estate.account_alias
    assert body["metadata"]["regions"] == list(estate.regions)

    synced = client.post("/api/v1/integrations/aws/sync?wait=90", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    expected_count = sum(len(v) for v in estate.expected.values())
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == expected_count
    assert isinstance(result["duration"], int)

    found: dict[str, dict[str, str]] = defaultdict(dict)
    for item in all_evidence(client, auth, "aws", page_size=200):
        found[item["check_id"]][item["resource_id"]] = item["status"]
        assert len(item["sha256"]) == 64
    assert dict(found) == estate.expected

    controls = client.get("/api/v1/integrations/aws/controls", headers=auth).get_json()
    assert controls["connected"] is True
    by_id = {c["controlId"]: c for c in controls["controlResults"]}
    failing_checks = {check for check, verdicts in estate.expected.items()
                      if "failing" in verdicts.values()}
    assert failing_checks, "the estate must hold non-compliant resources"
    assert any(c["status"] == "failing" for c in by_id.values())
    for c in by_id.values():
        assert c["total"] >= c["passing"]
        assert (c["status"] == "passing") == (c["total"] > 0 and c["passing"] == c["total"])

    listed = client.get("/api/v1/integrations", headers=auth).get_json()["integrations"]
    aws = next(i for i in listed if i["id"] == "aws")
    assert aws["connected"] and aws["status"] == "active" and aws["lastSync"]
    assert aws["evidenceCount"] == expected_count

    before = versions(settings)
    again = client.post("/api/v1/integrations/aws/sync?wait=90", headers=auth).get_json()
    assert again["success"] is True and again["run"]["changedCount"] == 0
    assert versions(settings) == before


def test_wrong_credentials_fail_verification_with_a_clear_error(client, auth, worker,
                                                                 aws_endpoint):
    resp = client.post("/api/v1/integrations/aws/connect?wait=30", headers=auth, json={
        "credentials": {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
                        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                        "regions": ["us-east-1"], "endpoint_url": "http://127.0.0.1:9"}})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "verification_failed"
