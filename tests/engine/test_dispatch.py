"""Scheduled dispatch on real Postgres: one run per due connection, slots advanced, no doubles."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.db import Job, session_factory
from engine.dispatch import dispatch_all_due, dispatch_due
from engine.models import (
    Account,
    Connection,
    ConnectionStatus,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.schedule import PERIODS, backoff_delay, next_due, next_due_sql, offset_of
from engine.settings import Settings
from engine.sync import request_sync

NOW = datetime(2026, 3, 4, 12, 30, 15, 250000, tzinfo=UTC)


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    factory = session_factory(settings)
    with factory() as s, s.begin():
        s.add(Account(id="acme"))
    yield factory


def add(factory: sessionmaker[Session], n: int, *, due_at: datetime | None,
        status: ConnectionStatus = ConnectionStatus.ACTIVE,
        frequency: Frequency = Frequency.HOURLY) -> list[str]:
    with factory() as s, s.begin():
        conns = [Connection(account_id="acme", integration_id=f"prov{random.getrandbits(48):x}",
                            status=status, sync_frequency=frequency, next_sync_at=due_at)
                 for _ in range(n)]
        s.add_all(conns)
        s.flush()
        return [c.id for c in conns]


def runs_by_connection(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return dict(s.execute(select(SyncRun.connection_id, func.count())
                              .group_by(SyncRun.connection_id)).tuples().all())


def next_slots(factory: sessionmaker[Session]) -> dict[str, datetime]:
    with factory() as s:
        return dict(s.execute(select(Connection.id, Connection.next_sync_at)).tuples().all())


def test_next_due_in_sql_is_the_python_formula(factory):
    rng = random.Random(7)
    cases = [(f"conn-{rng.getrandbits(128):032x}", rng.choice(list(Frequency)),
              NOW + timedelta(seconds=rng.uniform(-4e7, 4e7))) for _ in range(300)]
    with factory() as s:
        for conn_id, freq, after in cases:
            in_sql = s.scalar(select(next_due_sql(literal(conn_id), literal(freq.value), after)))
            assert in_sql == next_due(conn_id, freq, after), (conn_id, freq, after)


def test_slots_are_stable_per_connection_and_spread_over_the_period():
    ids = [f"conn-{i:05d}" for i in range(2000)]
    hour = PERIODS[Frequency.HOURLY]
    assert [offset_of(i, hour) for i in ids[:50]] == [offset_of(i, hour) for i in ids[:50]]
    minutes = {int(offset_of(i, hour).total_seconds() // 60) for i in ids}
    assert minutes == set(range(60))  # every minute of the hour gets connections
    due = next_due(ids[0], Frequency.DAILY, NOW)
    assert NOW < due <= NOW + timedelta(days=1)
    assert next_due(ids[0], Frequency.DAILY, due) == due + timedelta(days=1)


def test_dispatch_queues_one_run_per_due_connection_and_moves_it_to_its_next_slot(factory,
                                                                                 sent):
    due = add(factory, 5, due_at=NOW - timedelta(minutes=1))
    later = add(factory, 3, due_at=NOW + timedelta(minutes=5))
    paused = add(factory, 2, due_at=NOW - timedelta(minutes=1), status=ConnectionStatus.ERROR)
    never = add(factory, 1, due_at=None)
    with factory() as s, s.begin():
        tick = dispatch_due(s, NOW)
    assert tick.claimed == 5 and len(tick.queued) == 5
    assert runs_by_connection(factory) == dict.fromkeys(due, 1)
    assert sorted(j.args[0] for j in sent) == sorted(tick.queued)
    assert {j.name for j in sent} == {"sync.run"}
    slots = next_slots(factory)
    for conn_id in due:
        assert slots[conn_id] == next_due(conn_id, Frequency.HOURLY, NOW) > NOW
    for conn_id in later + paused:
        assert slots[conn_id] < NOW + timedelta(minutes=6)  # untouched
    assert slots[never[0]] is None
    with factory() as s:
        runs = s.scalars(select(SyncRun)).all()
    assert {(r.trigger, r.status) for r in runs} == {(Trigger.SCHEDULED, RunStatus.QUEUED)}


def test_a_dispatcher_down_for_days_catches_up_once_per_connection(factory):
    conn_ids = add(factory, 3, due_at=NOW - timedelta(days=3))
    with factory() as s, s.begin():
        assert dispatch_due(s, NOW).claimed == 3
    with factory() as s, s.begin():
        assert dispatch_due(s, NOW + timedelta(seconds=30)).claimed == 0
    assert runs_by_connection(factory) == dict.fromkeys(conn_ids, 1)
    assert all(slot > NOW for slot in next_slots(factory).values())


def test_concurrent_dispatchers_split_the_due_rows_instead_of_doubling_them(factory):
    conn_ids = add(factory, 6, due_at=NOW - timedelta(minutes=2))
    with factory() as first, factory() as second:
        with first.begin():
            a = dispatch_due(first, NOW, limit=4)
            with second.begin():
                b = dispatch_due(second, NOW)  # the first still holds its four rows
    assert (a.claimed, b.claimed) == (4, 2)
    assert runs_by_connection(factory) == dict.fromkeys(conn_ids, 1)


def test_a_connection_with_a_run_open_keeps_it_and_still_moves_on(factory, sent):
    [conn_id] = add(factory, 1, due_at=NOW - timedelta(minutes=1))
    with factory() as s, s.begin():
        manual, _ = request_sync(s, s.get_one(Connection, conn_id), Trigger.MANUAL)
    with factory() as s, s.begin():
        tick = dispatch_due(s, NOW)
    assert (tick.claimed, tick.queued) == (1, [])
    assert runs_by_connection(factory) == {conn_id: 1}
    assert next_slots(factory)[conn_id] > NOW


def test_dispatch_all_due_drains_a_backlog_in_batches(factory, sent):
    conn_ids = add(factory, 11, due_at=NOW - timedelta(hours=2), frequency=Frequency.WEEKLY)
    assert dispatch_all_due(factory, NOW, batch=4) == 11
    assert runs_by_connection(factory) == dict.fromkeys(conn_ids, 1)
    assert len(sent) == 11


def test_backoff_skips_one_then_three_then_seven_slots_up_to_the_cap():
    hour, cap = PERIODS[Frequency.HOURLY], timedelta(hours=24)
    delays = [backoff_delay(Frequency.HOURLY, n, cap) for n in range(7)]
    assert delays == [timedelta(0), hour, 3 * hour, 7 * hour, 15 * hour, cap, cap]
    assert backoff_delay(Frequency.WEEKLY, 3, cap) == PERIODS[Frequency.WEEKLY]  # >= a period


def test_dispatch_and_requests_still_find_the_open_run_index_as_prepared_statements(factory):
    """psycopg prepares a statement after a few runs on one connection; the ON CONFLICT must
    still match the partial unique index then."""
    [conn_id] = add(factory, 1, due_at=None)
    with factory() as s, s.begin():  # one transaction: every statement on one connection
        for _ in range(12):
            s.execute(update(Connection).values(next_sync_at=NOW - timedelta(minutes=1)))
            assert dispatch_due(s, NOW).claimed == 1
            _, created = request_sync(s, s.get_one(Connection, conn_id), Trigger.MANUAL)
            assert not created  # the scheduled run is open: the request joins it
            s.execute(update(SyncRun).values(status=RunStatus.SUCCEEDED))
    assert runs_by_connection(factory) == {conn_id: 12}
