"""Snapshots of a run fanned out over parts: each part keeps its shard's snapshot, the merged
check names a manifest of every shard's, and rejudge judges shard by shard as the parts did;
when the run stops fanning out, the shards' snapshots stop being current."""

from __future__ import annotations

import json

from sqlalchemy import select

from engine.models import CollectorSnapshot, Evidence, SnapshotKind, SnapshotSeen
from engine.rejudge import rejudge
from engine.snapshots import load_snapshot
from tests.engine import fake, test_parts
from tests.engine.test_parts import fan_out, run_parts
from tests.engine.test_snapshots import sync

factory, connection_id, fanned = test_parts.factory, test_parts.connection_id, test_parts.fanned
GADGETS = fake.collect_gadgets.name


def current(sessions) -> dict[str, str]:
    with sessions() as s:
        return dict(s.execute(select(SnapshotSeen.scope, SnapshotSeen.sha256).where(
            SnapshotSeen.collector == GADGETS, SnapshotSeen.valid_to.is_(None))).tuples().all())


def test_shards_keep_their_own_snapshots_and_rejudge_merges_them(
        factory, connection_id, fanned, sent, settings):
    fake.SPLIT["gadgets"] = {f"g{i}": i % 2 == 0 for i in range(12)}
    _, parts = fan_out(factory, connection_id, fanned, sent)
    run_parts(factory, parts, fanned)
    shards = current(factory)
    assert set(shards) == {"global@0/3", "global@1/3", "global@2/3"}
    with factory() as s:
        [digest] = set(s.scalars(select(Evidence.snapshot_sha256).where(
            Evidence.check_id == "split.gadget.shiny")))
        kind = s.scalar(select(CollectorSnapshot.kind).where(CollectorSnapshot.sha256 == digest))
        manifest = json.loads(load_snapshot(s, settings, "acme", digest) or b"")
    assert kind == SnapshotKind.MANIFEST
    assert manifest == [[GADGETS, scope, sha] for scope, sha in sorted(shards.items())]

    fake.SPLIT.update(refuse=True, reads=[])  # the provider would refuse: nothing may ask it
    with factory() as s:
        report = rejudge(s, settings, account_id="acme", check_id="split.gadget.shiny")
    assert fake.SPLIT["reads"] == []
    assert (report.changes, report.failures, report.intervals) == ([], [], 1)

    fake.SPLIT["refuse"] = False
    sync(factory, connection_id, settings)  # no longer fanned out: one whole snapshot
    assert set(current(factory)) == {"global"}
    with factory() as s:
        again = rejudge(s, settings, account_id="acme", check_id="split.gadget.shiny")
    assert (again.changes, again.failures, again.intervals) == ([], [], 2)
