"""The maintenance jobs on real Postgres: the reaper and history pruning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.db import Job, session_factory
from engine.maintenance import prune_history, reap_stale_runs
from engine.models import (
    Account,
    Connection,
    ConnectionStatus,
    ControlResultHistory,
    ControlStatus,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.settings import Settings
from engine.sync import request_sync


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    factory = session_factory(settings)
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
    yield factory


@pytest.fixture
def reaping(settings: Settings) -> Settings:
    return settings.model_copy(update={"lease_stale_seconds": 30, "queued_stale_seconds": 300,
                                       "max_run_attempts": 3})


def new_run(factory: sessionmaker[Session], **sql_values: str) -> str:
    with factory() as s, s.begin():
        conn = Connection(account_id="acme", integration_id=f"p{datetime.now().timestamp()}",
                          status=ConnectionStatus.ACTIVE, sync_frequency=Frequency.HOURLY)
        s.add(conn)
        s.flush()
        run, _ = request_sync(s, conn, Trigger.MANUAL)
        run_id = run.id
        if sql_values:
            assignments = ", ".join(f"{k} = {v}" for k, v in sql_values.items())
            s.execute(text(f"UPDATE sync_run SET {assignments} WHERE id = :id"), {"id": run_id})
    return run_id


def reap(factory: sessionmaker[Session], settings: Settings):
    with factory() as s, s.begin():
        return reap_stale_runs(s, settings)


def run(factory: sessionmaker[Session], run_id: str) -> SyncRun:
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def test_a_run_whose_worker_died_is_queued_again_and_sent(factory, reaping, sent):
    dead = new_run(factory, status="'running'", worker="'w1'", attempts=1,
                   heartbeat_at="now() - interval '2 minutes'")
    live = new_run(factory, status="'running'", worker="'w2'", attempts=1,
                   heartbeat_at="now() - interval '5 seconds'")
    sent.clear()
    reaped = reap(factory, reaping)
    assert (reaped.requeued, reaped.failed, reaped.resent) == ([dead], [], [])
    assert [(j.name, j.args) for j in sent] == [("sync.run", (dead,))]
    assert (run(factory, dead).status, run(factory, dead).worker) == (RunStatus.QUEUED, None)
    assert run(factory, live).status == RunStatus.RUNNING


def test_a_run_out_of_attempts_is_failed_and_its_connection_backs_off(factory, reaping):
    dead = new_run(factory, status="'running'", worker="'w1'", attempts=3,
                   started_at="now() - interval '10 minutes'",
                   heartbeat_at="now() - interval '2 minutes'")
    reaped = reap(factory, reaping)
    assert reaped.failed == [dead]
    failed = run(factory, dead)
    assert failed.status == RunStatus.FAILED and failed.finished_at is not None
    assert "stopped answering 3 times" in failed.errors[-1]["message"]
    with factory() as s:
        conn = s.get_one(Connection, failed.connection_id)
    assert conn.consecutive_failures == 1
    assert conn.next_sync_at > datetime.now(UTC) + timedelta(hours=1)


def test_a_run_queued_too_long_lost_its_message_and_is_sent_again_once(factory, reaping,
                                                                       sent):
    lost = new_run(factory, enqueued_at="now() - interval '10 minutes'")
    fresh = new_run(factory)
    sent.clear()
    assert reap(factory, reaping).resent == [lost]
    assert [j.args for j in sent] == [(lost,)]
    assert reap(factory, reaping).resent == []  # just sent: not again at the next tick
    assert run(factory, fresh).status == RunStatus.QUEUED


def test_prune_deletes_only_finished_history_older_than_the_retention(factory):
    now = datetime.now(UTC)
    new_run(factory, status="'succeeded'", finished_at="now() - interval '400 days'")
    recent = new_run(factory, status="'succeeded'", finished_at="now() - interval '3 days'")
    still_open = new_run(factory, queued_at="now() - interval '400 days'")
    with factory() as s, s.begin():
        s.add_all(ControlResultHistory(account_id="acme", framework_id="soc2",
                                       control_id="CC6.1", status=ControlStatus.PASSING,
                                       passing=1, total=1, evaluated_at=now - timedelta(days=d))
                  for d in (500, 300, 1))
    pruned = prune_history(factory, now, timedelta(days=365), batch=1)
    assert (pruned.runs, pruned.control_history) == (1, 1)
    with factory() as s:
        assert set(s.scalars(select(SyncRun.id))) == {recent, still_open}
        assert s.scalar(select(func.count()).select_from(ControlResultHistory)) == 2
