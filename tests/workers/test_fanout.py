"""One AWS sync fanned out over a real worker pool: the parts run as tasks of their own and
the evidence is exactly what one worker stores."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.aws.emulated import seed_estate
from engine.db import session_factory
from engine.models import RunStatus, SyncPart, SyncRun
from engine.settings import Settings
from tests.conftest import all_evidence, running_worker, settings_env

PARTS = 4


@pytest.fixture
def fanned(settings: Settings, db: None, tmp_path: Path) -> Iterator[Settings]:
    """Settings that fan a run out into parts, on a broker key space of their own, served by a
    worker process of their own (so the session's worker never takes these runs)."""
    fanned = settings.model_copy(update={
        "sync_parts": PARTS, "redis_key_prefix": f"fanout-{uuid.uuid4().hex[:8]}:"})
    env = {**settings_env(fanned), "EVIDENCE_SYNC_PARTS": str(PARTS)}
    with running_worker(env, tmp_path / "worker.log", concurrency=PARTS):
        yield fanned


@pytest.fixture
def fanned_client(fanned: Settings) -> FlaskClient:
    from cli.wiring import api_app

    return api_app(fanned).test_client()


def test_an_aws_sync_fans_out_over_the_pool_and_stores_the_exact_estate(
        fanned_client, fanned, auth, aws_endpoint):
    client = fanned_client
    estate = seed_estate(aws_endpoint)
    connected = client.post("/api/v1/integrations/aws/connect?wait=30", headers=auth,
                            json={"credentials": estate.credentials(),
                                  "sync_frequency": "hourly"})
    assert connected.status_code == 200, connected.get_json()

    synced = client.post("/api/v1/integrations/aws/sync?wait=120", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == sum(len(v) for v in estate.expected.values())

    found: dict[str, dict[str, str]] = defaultdict(dict)
    for item in all_evidence(client, auth, "aws", page_size=200):
        found[item["check_id"]][item["resource_id"]] = item["status"]
    assert dict(found) == estate.expected

    with session_factory(fanned)() as s:
        run = s.scalars(select(SyncRun).where(SyncRun.id == result["run"]["id"])).one()
        parts = s.scalars(select(SyncPart).where(SyncPart.run_id == run.id)).all()
    assert run.parts == PARTS and len(parts) == PARTS
    assert {p.status for p in parts} == {RunStatus.SUCCEEDED}
    sharded = set(parts[0].sharded)  # buckets and users: every part read its own shard
    assert {"aws.s3.bucket_versioning", "aws.iam.console_users_mfa"} <= sharded
    assert all(set(p.sharded) == sharded for p in parts)
    whole = sorted(c for p in parts for c in p.check_ids if c not in sharded)
    assert sorted([*whole, *sharded]) == sorted(estate.expected)  # the rest ran once
    assert sum(p.evidence_count for p in parts) == run.evidence_count - sum(
        len(estate.expected[c]) for c in sharded)
