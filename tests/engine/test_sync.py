"""The sync path on real Postgres: upsert by content hash, versions, partial runs, one run."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine import registry
from engine.db import Job, session_factory
from engine.evidence import Item
from engine.models import (
    Account,
    ChangeKind,
    Connection,
    ConnectionStatus,
    ControlResult,
    Evidence,
    EvidenceVersion,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.schedule import next_due
from engine.settings import Settings
from engine.sync import SlotBusy, request_sync, run_sync
from engine.vault import vault
from tests.engine import fake
from tests.faults import slow


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    registry.register(fake.FakeConnector)
    fake.ESTATE.update(widgets={"a": True, "b": False, "c": True}, explode=False)
    yield session_factory(settings)
    registry.unregister("fake")


@pytest.fixture
def connection_id(factory: sessionmaker[Session], settings: Settings) -> str:
    return fake.add_connection(factory, settings, "fake")


def sync(factory: sessionmaker[Session], connection_id: str) -> SyncRun:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
    run_sync(factory, run_id, worker="test")
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_first_sync_stores_one_row_and_one_version_per_result(factory, connection_id):
    run = sync(factory, connection_id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.evidence_count == 6
    assert count(factory, Evidence) == 6
    assert count(factory, EvidenceVersion) == 6
    with factory() as s:
        statuses = dict(s.execute(select(Evidence.resource_id, Evidence.status).where(
            Evidence.check_id == "fake.widget.locked")).tuples().all())
    assert statuses == {"widget:a": "passing", "widget:b": "failing", "widget:c": "passing"}


def test_sync_twice_with_same_content_writes_no_new_version(factory, connection_id):
    sync(factory, connection_id)
    before = count(factory, EvidenceVersion)
    second = sync(factory, connection_id)
    assert second.status == RunStatus.SUCCEEDED
    assert second.changed_count == 0
    assert count(factory, EvidenceVersion) == before


def test_changed_resource_writes_one_version_and_gone_resource_is_closed(factory,
                                                                          connection_id):
    sync(factory, connection_id)
    fake.ESTATE["widgets"] = {"a": True, "b": True}  # b fixed, c deleted
    run = sync(factory, connection_id)
    assert run.changed_count == 3  # b changed in one check, c closed in both
    with factory() as s:
        changes = s.execute(select(Evidence.resource_id, EvidenceVersion.change)
                            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
                            .where(EvidenceVersion.run_id == run.id)).tuples().all()
        closed = s.scalars(select(Evidence).where(Evidence.resource_id == "widget:c")).all()
    assert sorted(changes) == [("widget:b", ChangeKind.CHANGED),
                               ("widget:c", ChangeKind.CLOSED), ("widget:c", ChangeKind.CLOSED)]
    assert all(e.closed_at is not None for e in closed)
    assert count(factory, Evidence) == 6  # closed, not deleted


def test_a_raising_check_leaves_the_others_and_ends_partial(factory, connection_id):
    sync(factory, connection_id)
    fake.ESTATE.update(explode=True, widgets={"a": False, "b": False, "c": True})
    run = sync(factory, connection_id)
    assert run.status == RunStatus.PARTIAL
    assert run.errors == [{"check": "fake.widget.exploding", "message": "RuntimeError: boom"}]
    with factory() as s:
        locked = dict(s.execute(select(Evidence.resource_id, Evidence.status).where(
            Evidence.check_id == "fake.widget.locked")).tuples().all())
        exploding = s.scalar(select(func.count()).select_from(Evidence).where(
            Evidence.check_id == "fake.widget.exploding", Evidence.closed_at.is_(None)))
    assert locked["widget:a"] == "failing"  # the healthy check stored its new verdict
    assert exploding == 3  # the raising check's earlier evidence stands


def test_control_results_roll_up_every_mapped_result(factory, connection_id):
    sync(factory, connection_id)
    with factory() as s:
        results = {(r.framework_id, r.control_id): (r.status, r.passing, r.total)
                   for r in s.scalars(select(ControlResult))}
    assert results[("soc2", "CC6.1")] == ("failing", 2, 3)
    assert results[("iso27001", "A.8.5")] == ("failing", 2, 3)
    assert results[("soc2", "CC7.2")] == ("passing", 3, 3)
    fake.ESTATE["widgets"] = {"a": True, "b": True, "c": True}
    sync(factory, connection_id)
    with factory() as s:
        cc61 = s.get_one(ControlResult, ("acme", "soc2", "CC6.1"))
    assert (cc61.status, cc61.passing, cc61.total) == ("passing", 3, 3)


def test_concurrent_sync_requests_make_one_run(factory, connection_id, sent):
    def request(_: int) -> tuple[str, bool]:
        with factory() as s, s.begin():
            run, created = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
            return run.id, created

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(request, range(8)))
    assert len({run_id for run_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert [j.name for j in sent] == ["sync.run"]


def test_a_second_delivery_of_a_running_run_does_nothing(factory, connection_id):
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        run_id = run.id
        s.get_one(SyncRun, run_id).status = RunStatus.RUNNING
        s.get_one(SyncRun, run_id).worker = "other"
        s.execute(text("UPDATE sync_run SET heartbeat_at = now() WHERE id = :id"),
                  {"id": run_id})
    assert run_sync(factory, run_id, worker="me") is None
    assert count(factory, Evidence) == 0


def test_item_hash_ignores_key_order_and_sees_value_changes():
    a = Item.of("r", "t", "passing", "x", {"b": 1, "a": [1, 2]})
    b = Item.of("r", "t", "passing", "x", {"a": [1, 2], "b": 1})
    c = Item.of("r", "t", "passing", "x", {"a": [2, 1], "b": 1})
    assert a.content_hash == b.content_hash != c.content_hash


# --- leases, provider slots and backoff ---------------------------------------------------


@pytest.fixture
def slow_connection(factory, settings, tmp_path) -> Iterator[str]:
    """A connection to the file-driven `slow` connector (see tests/faults/slow.py)."""
    registry.register(slow.SlowConnector)
    slow.control(tmp_path, resources=3)
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
        s.flush()
        conn = Connection(account_id="acme", integration_id="slow",
                          status=ConnectionStatus.ACTIVE, sync_frequency=Frequency.HOURLY,
                          config={"control": str(tmp_path)},
                          credentials_encrypted=vault(settings).seal({"token": "t"}))
        s.add(conn)
        s.flush()
        conn_id = conn.id
    yield conn_id
    registry.unregister("slow")


def queue(factory: sessionmaker[Session], connection_id: str) -> str:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        return run.id


def set_run(factory: sessionmaker[Session], run_id: str, **values: object) -> None:
    assignments = ", ".join(f"{k} = {v}" for k, v in values.items())
    with factory() as s, s.begin():
        s.execute(text(f"UPDATE sync_run SET {assignments} WHERE id = :id"), {"id": run_id})


def running_elsewhere(factory, settings, heartbeat: str) -> str:
    """An older connection of acme to `slow`, disconnected while its run still runs."""
    with factory() as s, s.begin():
        old = Connection(account_id="acme", integration_id="slow",
                         status=ConnectionStatus.DISCONNECTED,
                         credentials_encrypted=vault(settings).seal({"token": "t"}))
        s.add(old)
        s.flush()
        old_id = old.id
    run_id = queue(factory, old_id)
    set_run(factory, run_id, status="'running'", worker="'elsewhere'", attempts=1,
            heartbeat_at=heartbeat)
    return run_id


def test_a_run_past_the_accounts_provider_slots_waits_then_runs(factory, settings,
                                                                  slow_connection):
    other = running_elsewhere(factory, settings, heartbeat="now()")
    run_id = queue(factory, slow_connection)
    set_run(factory, run_id, enqueued_at="now() - interval '1 hour'")
    with pytest.raises(SlotBusy):
        run_sync(factory, run_id, worker="me", settings=settings)
    with factory() as s:
        waiting = s.get_one(SyncRun, run_id)
        assert (waiting.status, waiting.attempts) == (RunStatus.QUEUED, 0)
        assert waiting.enqueued_at > datetime.now(UTC) - timedelta(minutes=1)  # not "lost"
    set_run(factory, other, status="'succeeded'")
    assert run_sync(factory, run_id, worker="me", settings=settings) == RunStatus.SUCCEEDED


def test_a_crashed_runs_slot_frees_itself_when_its_heartbeat_goes_stale(factory, settings,
                                                                         slow_connection):
    running_elsewhere(factory, settings, heartbeat="now() - interval '1 hour'")
    run_id = queue(factory, slow_connection)
    assert run_sync(factory, run_id, worker="me", settings=settings) == RunStatus.SUCCEEDED


def test_a_stale_lease_is_taken_over_until_attempts_run_out(factory, settings,
                                                            slow_connection):
    run_id = queue(factory, slow_connection)
    set_run(factory, run_id, status="'running'", worker="'dead'", attempts=1,
            heartbeat_at="now() - interval '1 hour'")
    assert run_sync(factory, run_id, worker="me", settings=settings) == RunStatus.SUCCEEDED
    with factory() as s:
        assert s.get_one(SyncRun, run_id).attempts == 2
    again = queue(factory, slow_connection)
    set_run(factory, again, status="'running'", worker="'dead'",
            attempts=settings.max_run_attempts, heartbeat_at="now() - interval '1 hour'")
    assert run_sync(factory, again, worker="me", settings=settings) is None


def test_a_provider_that_answers_nothing_pushes_the_next_sync_out_until_it_recovers(
        factory, settings, slow_connection, tmp_path):
    slow.control(tmp_path, fail=True)
    delays = []
    for failures in (1, 2, 3):
        run_id = queue(factory, slow_connection)
        assert run_sync(factory, run_id, worker="me", settings=settings) == RunStatus.PARTIAL
        with factory() as s:
            conn = s.get_one(Connection, slow_connection)
            run = s.get_one(SyncRun, run_id)
            assert conn.consecutive_failures == failures
            delays.append(conn.next_sync_at - run.finished_at)
    hour = timedelta(hours=1)
    assert [d // hour for d in delays] == [1, 3, 7]  # skips 1, 3, 7 slots (+ its offset)
    slow.control(tmp_path, fail=False)
    run_id = queue(factory, slow_connection)
    assert run_sync(factory, run_id, worker="me", settings=settings) == RunStatus.SUCCEEDED
    with factory() as s:
        conn = s.get_one(Connection, slow_connection)
        finished = s.get_one(SyncRun, run_id).finished_at
    assert conn.consecutive_failures == 0
    assert conn.next_sync_at == next_due(conn.id, Frequency.HOURLY, finished)
