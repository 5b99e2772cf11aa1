"""A run fanned out over the worker pool: planning, parts, the last part closing the run, the
reaper giving crashed parts back, and a refusing provider failing every part."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.aws import AwsConnector
from connectors.github import GithubConnector
from engine import registry
from engine.db import Job, session_factory
from engine.maintenance import reap_stale_runs
from engine.models import (
    Connection,
    ConnectionStatus,
    Evidence,
    RunStatus,
    SyncPart,
    SyncRun,
    Trigger,
)
from engine.parts import run_part
from engine.settings import Settings
from engine.sync import SlotBusy, plan_parts, request_sync, run_sync
from engine.vault import vault
from tests.engine import fake


@pytest.mark.parametrize("connector", [AwsConnector, GithubConnector, fake.SplitConnector])
@pytest.mark.parametrize("parts", [1, 2, 4, 64])
def test_a_plan_runs_every_check_once_or_on_every_shard(connector, parts):
    plan = plan_parts(connector.checks, parts)
    assert 1 <= len(plan) <= parts
    sharded = set(plan[0].sharded)
    assert all(set(p.sharded) == sharded <= set(p.check_ids) for p in plan)
    for chk in connector.checks:  # sharded: only over shardable collectors, in every part
        assert (chk.id in sharded) == (parts > 1 and all(c.shardable for c in chk.needs)
                                       and not _shares_with_unshardable(connector, chk))
    whole = [c for p in plan for c in p.check_ids if c not in sharded]
    assert sorted(whole) == sorted(c.id for c in connector.checks if c.id not in sharded)
    part_of = {c: n for n, p in enumerate(plan) for c in p.check_ids if c not in sharded}
    for a, b in itertools.combinations(connector.checks, 2):
        if set(a.needs) & set(b.needs) and a.id not in sharded:  # one part runs a collector
            assert part_of[a.id] == part_of[b.id], (a.id, b.id)
    assert plan == plan_parts(connector.checks, parts)  # a redelivery plans the same


def _shares_with_unshardable(connector, chk) -> bool:
    """Whether chk is tied, through collectors shared with other checks, to one that is not
    shardable (then its whole group runs in one part)."""
    group, grew = {chk}, True
    while grew:
        linked = {c for c in connector.checks if any(set(c.needs) & set(g.needs) for g in group)}
        grew, group = linked != group, linked
    return any(not coll.shardable for c in group for coll in c.needs)


def test_the_aws_buckets_and_users_are_sharded_over_as_many_parts_as_asked():
    plan = plan_parts(AwsConnector.checks, 4)
    assert len(plan) == 4
    assert set(plan[0].sharded) == {"aws.s3.bucket_default_encryption",
                                    "aws.s3.bucket_public_access_block",
                                    "aws.s3.bucket_versioning", "aws.s3.bucket_tls_only",
                                    "aws.s3.bucket_mfa_delete", "aws.iam.console_users_mfa"}
    [single] = plan_parts(AwsConnector.checks, 1)
    assert single.sharded == [] and len(single.check_ids) == len(AwsConnector.checks)


@pytest.fixture
def fanned(settings: Settings) -> Settings:
    return settings.model_copy(update={"sync_parts": 3, "max_run_attempts": 2})


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    registry.register(fake.SplitConnector)
    fake.ESTATE.update(widgets={"a": True, "b": False, "c": True}, explode=False)
    fake.SPLIT.update(gadgets={"x": True, "y": False}, gears={"g": True}, refuse=False,
                      reads=[])
    yield session_factory(settings)
    registry.unregister("split")


@pytest.fixture
def connection_id(factory: sessionmaker[Session], settings: Settings) -> str:
    return fake.add_connection(factory, settings, "split")


def fan_out(factory, connection_id, fanned, sent) -> tuple[str, list[str]]:
    """Queue a run and deliver it: it hands its checks to parts; returns the part ids sent."""
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
    sent.clear()
    assert run_sync(factory, run_id, worker="coordinator", settings=fanned) == RunStatus.RUNNING
    assert {j.name for j in sent} == {"sync.part"}
    return run_id, [j.args[0] for j in sent]


def run_parts(factory, part_ids: list[str], settings: Settings) -> None:
    for part_id in part_ids:
        run_part(factory, part_id, worker="w", settings=settings)


def crash_part(factory, part_id: str, attempts: int) -> None:
    """The part's worker died holding it: running, its heartbeat an hour old."""
    with factory() as s, s.begin():
        s.execute(text("UPDATE sync_part SET status = 'running', worker = 'dead',"
                       " attempts = :n, heartbeat_at = now() - interval '1 hour'"
                       " WHERE id = :id"), {"id": part_id, "n": attempts})


def get_run(factory, run_id) -> SyncRun:
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def verdicts(factory) -> dict[tuple[str, str], str]:
    with factory() as s:
        return {(e.check_id, e.resource_id): e.status
                for e in s.scalars(select(Evidence).where(Evidence.closed_at.is_(None)))}


EXPECTED = {
    ("split.widget.locked", "widget:a"): "passing",
    ("split.widget.locked", "widget:b"): "failing",
    ("split.widget.locked", "widget:c"): "passing",
    ("split.widget.exploding", "widget:a"): "passing",
    ("split.widget.exploding", "widget:b"): "passing",
    ("split.widget.exploding", "widget:c"): "passing",
    ("split.gadget.shiny", "gadget:x"): "passing",
    ("split.gadget.shiny", "gadget:y"): "failing",
    ("split.gear.oiled", "gear:g"): "passing",
}


def test_the_last_part_to_finish_closes_the_run_with_every_parts_tally(
        factory, connection_id, fanned, sent):
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    assert len(parts) == 3
    with factory() as s:
        run = s.get_one(SyncRun, run_id)
        assert (run.status, run.parts) == (RunStatus.RUNNING, 3)
        planned = {p.part_no: (p.check_ids, p.sharded) for p in s.scalars(select(SyncPart))}
    shiny = "split.gadget.shiny"
    assert planned == {
        0: (["split.widget.locked", shiny, "split.widget.exploding"], [shiny]),
        1: ([shiny, "split.gear.oiled"], [shiny]),
        2: ([shiny], [shiny]),
    }
    for n, part_id in enumerate(reversed(parts)):  # any order
        assert run_part(factory, part_id, worker=f"w{n}", settings=fanned) == RunStatus.SUCCEEDED
        assert get_run(factory, run_id).status == (
            RunStatus.SUCCEEDED if n == len(parts) - 1 else RunStatus.RUNNING)
    run = get_run(factory, run_id)
    assert (run.evidence_count, run.changed_count, run.errors) == (9, 9, [])
    assert run.duration_ms is not None and run.finished_at is not None
    assert verdicts(factory) == EXPECTED
    with factory() as s:
        assert s.get_one(Connection, connection_id).last_sync_at == run.finished_at
    # a second delivery of a finished part does nothing
    assert run_part(factory, parts[0], worker="late", settings=fanned) is None


def test_a_fanned_run_stores_what_one_worker_would(factory, connection_id, settings, fanned,
                                                   sent):
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
    assert run_sync(factory, run.id, worker="whole", settings=settings) == RunStatus.SUCCEEDED
    whole = verdicts(factory)
    fake.SPLIT["gadgets"] = {"x": False, "y": False}  # one change, seen by a fanned run
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    run_parts(factory, parts, fanned)
    run = get_run(factory, run_id)
    assert (run.status, run.evidence_count, run.changed_count) == (RunStatus.SUCCEEDED, 9, 1)
    assert verdicts(factory) == {**whole, ("split.gadget.shiny", "gadget:x"): "failing"}


def test_a_raising_check_in_one_part_ends_the_run_partial_and_the_rest_stands(
        factory, connection_id, fanned, sent):
    fake.ESTATE["explode"] = True
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    statuses = [run_part(factory, part_id, worker="w", settings=fanned) for part_id in parts]
    assert sorted(statuses) == sorted([RunStatus.PARTIAL, RunStatus.SUCCEEDED,
                                       RunStatus.SUCCEEDED])
    run = get_run(factory, run_id)
    assert run.status == RunStatus.PARTIAL
    assert run.errors == [{"check": "split.widget.exploding", "message": "RuntimeError: boom"}]
    assert {k for k in verdicts(factory) if k[0] != "split.widget.exploding"} == {
        k for k in EXPECTED if k[0] != "split.widget.exploding"}


def test_a_refusing_provider_in_one_part_fails_the_run_and_stops_the_others(
        factory, connection_id, fanned, sent):
    fake.SPLIT["refuse"] = True
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    with factory() as s:
        gadget_part = s.scalar(select(SyncPart.id).where(
            SyncPart.check_ids.contains(["split.gadget.shiny"])))
    assert run_part(factory, gadget_part, worker="w", settings=fanned) == RunStatus.FAILED
    run = get_run(factory, run_id)
    assert run.status == RunStatus.FAILED
    assert run.errors == [{"check": None,
                           "message": "the token was revoked: connect again with a valid one"}]
    with factory() as s:
        conn = s.get_one(Connection, connection_id)
        assert conn.status == ConnectionStatus.ERROR and "revoked" in (conn.status_message or "")
        assert set(s.scalars(select(SyncPart.status))) == {RunStatus.FAILED}
    for part_id in set(parts) - {gadget_part}:  # their tasks arrive late: nothing to do
        assert run_part(factory, part_id, worker="w", settings=fanned) is None
    assert verdicts(factory) == {}


def test_the_reaper_gives_a_crashed_part_back_and_gives_up_after_its_attempts(
        factory, connection_id, fanned, sent):
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    first, *rest = parts
    run_parts(factory, rest, fanned)
    # the part's worker died mid-way: running, heartbeat long stale; and the run's own
    # heartbeat is stale too, which for a fanned-out run must not get it re-queued whole
    crash_part(factory, first, attempts=1)
    with factory() as s, s.begin():
        s.execute(text("UPDATE sync_run SET heartbeat_at = now() - interval '1 hour'"))
    sent.clear()
    with factory() as s, s.begin():
        reaped = reap_stale_runs(s, fanned)
    assert (reaped.requeued, reaped.failed) == ([first], [])
    assert [(j.name, j.args) for j in sent] == [("sync.part", (first,))]
    assert run_part(factory, first, worker="again", settings=fanned) == RunStatus.SUCCEEDED
    assert get_run(factory, run_id).status == RunStatus.SUCCEEDED
    assert verdicts(factory) == EXPECTED

    # a part whose workers keep dying is given up, and the run closes without it
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    first, *rest = parts
    run_parts(factory, rest, fanned)
    crash_part(factory, first, attempts=2)
    with factory() as s, s.begin():
        reaped = reap_stale_runs(s, fanned)
    assert reaped.failed == [first]
    run = get_run(factory, run_id)
    assert run.status == RunStatus.PARTIAL
    assert run.errors == [{"check": None, "message": "the worker running part 0 of this sync "
                           "stopped answering 2 times; giving up"}]


def test_a_lost_part_message_is_sent_again(factory, connection_id, fanned, sent):
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    with factory() as s, s.begin():
        s.execute(text("UPDATE sync_part SET enqueued_at = now() - interval '1 day'"
                       " WHERE id = :id"), {"id": parts[1]})
    sent.clear()
    with factory() as s, s.begin():
        reaped = reap_stale_runs(s, fanned)
    assert reaped.resent == [parts[1]] and [j.args for j in sent] == [(parts[1],)]


def test_a_fanned_run_holds_its_provider_slot_while_its_parts_wait(factory, connection_id,
                                                                   settings, fanned, sent):
    run_id, _ = fan_out(factory, connection_id, fanned, sent)
    with factory() as s, s.begin():
        s.execute(text("UPDATE sync_run SET heartbeat_at = now() - interval '1 hour'"))
        other = Connection(account_id="acme", integration_id="split",
                           status=ConnectionStatus.DISCONNECTED,
                           credentials_encrypted=vault(settings).seal({"token": "t"}))
        s.add(other)
        s.flush()
        waiting, _ = request_sync(s, other, Trigger.MANUAL)
        waiting_id = waiting.id
    with pytest.raises(SlotBusy):
        run_sync(factory, waiting_id, worker="w", settings=fanned)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.status == RunStatus.RUNNING)) == 1


def test_a_sharded_check_reads_each_resource_in_one_part_and_stores_the_merged_set(
        factory, connection_id, fanned, sent):
    gadgets = {f"g{i:02d}": i % 3 != 0 for i in range(30)}
    fake.SPLIT["gadgets"] = gadgets
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    run_parts(factory, parts, fanned)
    reads = fake.SPLIT["reads"]
    assert len(reads) == 3 and all(reads)  # every shard read some, none read them all
    assert sorted(name for shard in reads for name in shard) == sorted(gadgets)  # disjoint
    shiny = {k[1]: v for k, v in verdicts(factory).items() if k[0] == "split.gadget.shiny"}
    assert shiny == {f"gadget:{n}": "passing" if ok else "failing" for n, ok in gadgets.items()}
    assert get_run(factory, run_id).evidence_count == 6 + 30 + 1

    # a gadget gone from one shard is closed; the others' rows stay as they were
    del fake.SPLIT["gadgets"]["g01"]
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    run_parts(factory, parts, fanned)
    run = get_run(factory, run_id)
    assert (run.status, run.evidence_count, run.changed_count) == (RunStatus.SUCCEEDED, 36, 1)
    assert ("split.gadget.shiny", "gadget:g01") not in verdicts(factory)


def test_a_shard_that_never_ran_leaves_its_checks_evidence_as_it_was(factory, connection_id,
                                                                      fanned, sent):
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    run_parts(factory, parts, fanned)
    before = verdicts(factory)
    fake.SPLIT["gadgets"] = {"x": False}  # would fail x and close y, if every shard were read
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    first, *rest = parts
    run_parts(factory, rest, fanned)
    crash_part(factory, first, attempts=2)
    with factory() as s, s.begin():
        assert reap_stale_runs(s, fanned).failed == [first]
    run = get_run(factory, run_id)
    assert run.status == RunStatus.PARTIAL
    after = verdicts(factory)
    assert {k: v for k, v in after.items() if k[0] == "split.gadget.shiny"} == {
        k: v for k, v in before.items() if k[0] == "split.gadget.shiny"}


def test_parts_left_open_under_a_finished_run_are_cancelled_not_sent_again(
        factory, connection_id, fanned, sent):
    run_id, parts = fan_out(factory, connection_id, fanned, sent)
    crash_part(factory, parts[0], attempts=1)  # its worker died
    with factory() as s, s.begin():  # and another part's message was lost long ago
        s.execute(text("UPDATE sync_part SET enqueued_at = now() - interval '1 day'"
                       " WHERE id = :id"), {"id": parts[1]})
        s.execute(text("UPDATE sync_run SET status = 'failed', finished_at = now()"
                       " WHERE id = :id"), {"id": run_id})  # the run ended meanwhile
    sent.clear()
    with factory() as s, s.begin():
        reaped = reap_stale_runs(s, fanned)
    assert (reaped.requeued, reaped.resent, reaped.failed) == ([], [], [])
    assert sorted(reaped.cancelled) == sorted(parts) and sent == []
    with factory() as s:
        assert set(s.scalars(select(SyncPart.status))) == {RunStatus.CANCELLED}
    with factory() as s, s.begin():
        assert reap_stale_runs(s, fanned).cancelled == []  # once
    assert run_part(factory, parts[2], worker="late", settings=fanned) is None
