"""Connect and sync GitHub through the API, a real Celery worker and the local GitHub server."""

from __future__ import annotations

from collections import defaultdict

from connectors.github.emulated import TOKEN, seed_estate
from tests.conftest import all_evidence


def test_connect_sync_and_read_back_exactly_the_emulated_organization(client, auth, worker,
                                                                      github_api):
    # Connections take configuration parameters separately; without them no repository is
    # allowed to be public, and the expected verdicts say so.
    estate = seed_estate(github_api.base_url, allowed_public_repos=())
    github_api.serve(estate)

    connected = client.post("/api/v1/integrations/github/connect?wait=30", headers=auth,
                            json={"credentials": estate.credentials(),
                                  "sync_frequency": "daily"})
    assert connected.status_code == 200, connected.get_json()
    body = connected.get_json()
    assert body["success"] is True and body["connectionId"].startswith("conn-")
    assert body["metadata"] == {"organization": "acme-corp", "plan": "enterprise",
                                "repositories": len(estate.repos)}
    assert TOKEN not in connected.get_data(as_text=True)

    synced = client.post("/api/v1/integrations/github/sync?wait=60", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    expected_count = sum(len(v) for v in estate.expected.values())
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == expected_count

    found: dict[str, dict[str, str]] = defaultdict(dict)
    for item in all_evidence(client, auth, "github", page_size=50):
        found[item["check_id"]][item["resource_id"]] = item["status"]
    assert dict(found) == estate.expected

    listed = client.get("/api/v1/integrations", headers=auth).get_json()["integrations"]
    github = next(i for i in listed if i["id"] == "github")
    assert github["connected"] and github["status"] == "active"
    assert github["evidenceCount"] == expected_count
    status = client.get("/api/v1/integrations/github/status", headers=auth)
    assert status.status_code == 200 and TOKEN not in status.get_data(as_text=True)
