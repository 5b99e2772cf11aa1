"""One end-to-end run of a connector against its test kit, through the public API and a real
Celery worker: connect, sync, read back exactly the kit's verdicts, and re-sync unchanged."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from connectors.base import Connector
from connectors.testkit import Seeded, Verdicts
from engine.db import session_factory
from engine.frameworks import catalog
from engine.models import EvidenceVersion
from engine.settings import Settings
from tests.conftest import all_evidence


def versions(settings: Settings) -> int:
    with session_factory(settings)() as s:
        return s.scalar(select(func.count()).select_from(EvidenceVersion)) or 0


def expected_controls(cls: type[Connector], expected: Verdicts) -> dict[str, dict[str, Any]]:
    """Every control the connector's checks serve, rolled up from the kit's verdicts by the
    documented rule: failing if any result fails, else error if any errs, else passing if any
    passes; `not_applicable` is not counted."""
    counts: dict[str, Counter[str]] = {}
    for chk in cls.checks:
        for control in catalog().controls_for(chk.id):
            counts.setdefault(control.key, Counter()).update(expected.get(chk.id, {}).values())
    rolled = {}
    for key, c in counts.items():
        status = ("failing" if c["failing"] else "error" if c["error"]
                  else "passing" if c["passing"] else "not_evaluated")
        rolled[key] = {"status": status, "passing": c["passing"], "failing": c["failing"],
                       "errors": c["error"], "total": c["passing"] + c["failing"] + c["error"]}
    return rolled


def connect_sync_and_read_back(client: FlaskClient, auth: dict[str, str], settings: Settings,
                               cls: type[Connector], seeded: Seeded) -> None:
    """The whole public path for one connector; every assertion is against the kit."""
    cid = cls.id
    statuses = {v for verdicts in seeded.expected.values() for v in verdicts.values()}
    assert {"passing", "failing"} <= statuses, "a kit's estate holds compliant and non-compliant"
    assert set(seeded.expected) <= {chk.id for chk in cls.checks}

    connected = client.post(f"/api/v1/integrations/{cid}/connect?wait=30", headers=auth,
                            json={"credentials": seeded.credentials, "config": seeded.config,
                                  "sync_frequency": "daily"})
    assert connected.status_code == 200, connected.get_json()
    body = connected.get_json()
    assert body["success"] is True and body["connectionId"].startswith("conn-")
    if seeded.metadata is not None:
        assert body["metadata"] == seeded.metadata
    _assert_no_secret(connected.get_data(as_text=True), seeded)

    synced = client.post(f"/api/v1/integrations/{cid}/sync?wait=90", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == seeded.evidence_count
    assert isinstance(result["duration"], int)

    found: dict[str, dict[str, str]] = defaultdict(dict)
    evidence = all_evidence(client, auth, cid, page_size=50)
    assert len(evidence) == seeded.evidence_count
    for item in evidence:
        found[item["check_id"]][item["resource_id"]] = item["status"]
        assert len(item["sha256"]) == 64
    assert dict(found) == seeded.expected

    controls = client.get(f"/api/v1/integrations/{cid}/controls", headers=auth).get_json()
    assert controls["connected"] is True
    reported = {c["controlId"]: {k: c[k] for k in ("status", "passing", "failing", "errors",
                                                   "total")}
                for c in controls["controlResults"]}
    assert reported == expected_controls(cls, seeded.expected)

    listed = client.get("/api/v1/integrations", headers=auth).get_json()["integrations"]
    entry = next(i for i in listed if i["id"] == cid)
    assert entry["connected"] and entry["status"] == "active" and entry["lastSync"]
    assert entry["evidenceCount"] == seeded.evidence_count
    status = client.get(f"/api/v1/integrations/{cid}/status", headers=auth)
    assert status.status_code == 200
    _assert_no_secret(status.get_data(as_text=True), seeded)

    before = versions(settings)
    again = client.post(f"/api/v1/integrations/{cid}/sync?wait=90", headers=auth).get_json()
    assert again["success"] is True and again["run"]["changedCount"] == 0
    assert versions(settings) == before


def _assert_no_secret(text: str, seeded: Seeded) -> None:
    for secret in seeded.secrets:
        assert secret not in text
