"""The Type II record, end to end (issue #12, "How it is checked"): 180 simulated days under a
controlled clock (time-machine, not ticking), every sync through the engine's real sync path
(connect → verify_connection → request_sync → run_sync, as a worker runs them) against an
emulated provider (tests/engine/type_ii_estate.py):

- `daily` (widgets a, b, c) syncs every day at 02:00; its provider is down for a week (days
  60–66: failed runs); it is disconnected on day 100 at noon and connected again on day 110;
  widget c is unlocked on days 20–29 (fixed by day 30's sync); on day 90 its check's rule
  changes (version 2 also asks for firmware 2, which widget b gets on day 95);
- `hourly` (ports https, ssh) syncs every hour for a week from day 40, 00:30, then is
  disconnected; ssh is open for five of those hours.

Then, from the record alone: the audit's period per control (coverage, operating time,
exceptions, gaps, population), `as_of` at chosen instants, `rejudge` with today's rule (the
provider sealed: any call raises), and the ledger (verify, an edit, a deletion, checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import ledger, registry
from engine.audits import Actor
from engine.connections import connect, disconnect
from engine.db import Job, session_factory
from engine.models import (
    Connection,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.models.audit import ActorKind
from engine.settings import Settings
from engine.sync import request_sync, run_sync
from engine.tenancy import scope_to_account
from engine.verification import verify_connection
from tests.engine import type_ii_estate as estate

pytestmark = pytest.mark.slow

ACME = "acme"
CUSTOMER = Actor(ActorKind.CUSTOMER, "owner@acme.test")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_START, PERIOD_END = date(2026, 1, 1), date(2026, 6, 30)  # 180 days
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
END = T0 + 180 * DAY
TODAY = END + 2 * DAY  # when the auditor asks (and rejudge runs)

OUTAGE = range(60, 67)              # the provider is down for these days' syncs
C_UNLOCKED = range(20, 30)          # widget c is unlocked for these days' syncs
RULE_CHANGE = 90                    # daily.widget.locked version 2 from this day's sync
B_UPGRADED = 95                     # widget b runs firmware 2 from this day's sync
CHECKPOINT_DAY = 80                 # a daily checkpoint kept by the auditor
DISCONNECT_DAY, RECONNECT_DAY = 100, 110
HOURLY_DAY, HOURLY_SYNCS = 40, 7 * 24
SSH_OPEN = range(100, 105)          # the hourly syncs that find ssh open


def at(day: int, hour: int = 2) -> datetime:
    return T0 + day * DAY + hour * HOUR


DISCONNECT = at(DISCONNECT_DAY, 12)
H0 = at(HOURLY_DAY, 0) + 30 * MINUTE
H_DISCONNECT = H0 + (HOURLY_SYNCS - 1) * HOUR + 30 * MINUTE


def h(n: int) -> datetime:
    """The n-th hourly sync."""
    return H0 + n * HOUR


def widgets(day: int) -> dict[str, dict[str, Any]]:
    return {"a": {"locked": True, "firmware": 3},
            "b": {"locked": True, "firmware": 2 if day >= B_UPGRADED else 1},
            "c": {"locked": day not in C_UNLOCKED, "firmware": 2}}


# --- driving the engine ----------------------------------------------------------------------

@dataclass
class Record:
    """What the simulation did, as ids the assertions name."""

    daily: list[str] = field(default_factory=list)
    """The daily connections, in order (before and after the reconnect)."""
    hourly: str = ""
    runs: dict[datetime, tuple[str, RunStatus]] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)


def run_queued(factory: sessionmaker[Session], settings: Settings, conn_id: str,
               trigger: Trigger | None) -> tuple[str, RunStatus]:
    """Queue a run (or take the one verify queued) and run it as a worker would."""
    with factory() as s, s.begin():
        conn = s.get_one(Connection, conn_id)
        if trigger is not None:
            run, _ = request_sync(s, conn, trigger)
        else:
            run = s.scalars(select(SyncRun).where(SyncRun.connection_id == conn_id,
                                                  SyncRun.status == RunStatus.QUEUED)).one()
        run_id = run.id
    status = run_sync(factory, run_id, worker="record", settings=settings)
    assert status is not None
    return run_id, status


def connect_and_sync(factory: sessionmaker[Session], settings: Settings, integration: str,
                     frequency: Frequency) -> tuple[str, str, RunStatus]:
    """Connect as the API does, verify as the worker does (which queues the first sync), and
    run that first sync."""
    with factory() as s, s.begin():
        scope_to_account(s, ACME)
        conn_id = connect(s, integration_id=integration, credentials={"token": "t0k3n"},
                          frequency=frequency, settings=settings).id
    verify_connection(factory, conn_id, settings, worker="record")
    return conn_id, *run_queued(factory, settings, conn_id, None)


def swap_rule() -> None:
    registry.unregister("daily")
    registry.register(estate.DailyV2)


def simulate(factory: sessionmaker[Session], settings: Settings) -> Record:
    record = Record()
    events: list[tuple[datetime, Callable[[], None]]] = []

    def daily_sync(day: int) -> None:
        estate.ESTATE.update(widgets=widgets(day), down=day in OUTAGE)
        if day == RULE_CHANGE:
            swap_rule()
        if day in (0, RECONNECT_DAY):
            conn_id, run_id, status = connect_and_sync(factory, settings, "daily",
                                                       Frequency.DAILY)
            record.daily.append(conn_id)
        else:
            run_id, status = run_queued(factory, settings, record.daily[-1], Trigger.SCHEDULED)
        record.runs[at(day)] = (run_id, status)

    def hourly_sync(n: int) -> None:
        estate.ESTATE.update(ports={"https": False, "ssh": n in SSH_OPEN}, down=False)
        if n == 0:
            record.hourly, run_id, status = connect_and_sync(factory, settings, "hourly",
                                                             Frequency.HOURLY)
        else:
            run_id, status = run_queued(factory, settings, record.hourly, Trigger.SCHEDULED)
        record.runs[h(n)] = (run_id, status)

    def disconnect_now(integration: str) -> None:
        with factory() as s, s.begin():
            scope_to_account(s, ACME)
            disconnect(s, integration, datetime.now(UTC), settings)

    def keep_checkpoint() -> None:
        with factory() as s, s.begin():
            record.checkpoint = ledger.checkpoint_document(
                ledger.checkpoint(s, ACME, reason="daily"))

    for day in range(180):
        if not DISCONNECT_DAY < day < RECONNECT_DAY:
            events.append((at(day), lambda day=day: daily_sync(day)))
    events.append((DISCONNECT, lambda: disconnect_now("daily")))
    events.append((at(CHECKPOINT_DAY, 3), keep_checkpoint))
    events.extend((h(n), lambda n=n: hourly_sync(n)) for n in range(HOURLY_SYNCS))
    events.append((H_DISCONNECT, lambda: disconnect_now("hourly")))
    events.sort(key=lambda e: e[0])
    with time_machine.travel(events[0][0], tick=False) as clock:
        for when, happen in events:
            clock.move_to(when, tick=False)
            happen()
    return record


@pytest.fixture
def factory(settings: Settings, db: None, sent: list[Job]) -> Iterator[sessionmaker[Session]]:
    estate.reset()
    registry.register(estate.DailyV1)
    registry.register(estate.Hourly)
    yield session_factory(settings)
    registry.unregister("daily")
    registry.unregister("hourly")
    estate.reset()


def test_the_type_ii_record_of_180_days(factory: sessionmaker[Session], settings: Settings):
    record = simulate(factory, settings)
    statuses = [st for _, st in record.runs.values()]
    assert statuses.count(RunStatus.FAILED) == len(OUTAGE)
