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

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import time_machine
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from engine import audits, ledger, registry
from engine.as_of import connection_at, controls_at, evidence_at
from engine.audits import Actor
from engine.connections import connect, disconnect
from engine.db import Job, session_factory
from engine.models import (
    Connection,
    ControlStatus,
    Evidence,
    EvidenceStatus,
    EvidenceVersion,
    Frequency,
    Judgement,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.models.audit import ActorKind, AuditType
from engine.models.ledger import LedgerEntry, LedgerKind
from engine.models.snapshot import CollectorSnapshot, SnapshotKind, SnapshotSeen
from engine.period import GapCause, Outcome, Span, audit_period
from engine.rejudge import rejudge
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

    events.extend((at(day), partial(daily_sync, day)) for day in range(180)
                  if not DISCONNECT_DAY < day < RECONNECT_DAY)
    events.append((DISCONNECT, partial(disconnect_now, "daily")))
    events.append((at(CHECKPOINT_DAY, 3), keep_checkpoint))
    events.extend((h(n), partial(hourly_sync, n)) for n in range(HOURLY_SYNCS))
    events.append((H_DISCONNECT, partial(disconnect_now, "hourly")))
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


# --- what the scenario implies ----------------------------------------------------------------

GRACE = HOUR
DAILY_CHECK, HOURLY_CHECK = "daily.widget.locked", "hourly.port.closed"
DAILY_GAPS = [(Span(T0, at(0)), GapCause.NOT_CONNECTED),
              (Span(at(OUTAGE[0] - 1) + DAY + GRACE, at(OUTAGE[-1] + 1)), GapCause.SYNC_FAILED),
              (Span(DISCONNECT, at(RECONNECT_DAY)), GapCause.DISCONNECTED)]
DAILY_COVERED = 180 * DAY - sum((span.length for span, _ in DAILY_GAPS), timedelta(0))
HOURLY_GAPS = [(Span(T0, H0), GapCause.NOT_CONNECTED),
               (Span(H_DISCONNECT, END), GapCause.DISCONNECTED)]
PASSING, FAILING = EvidenceStatus.PASSING, EvidenceStatus.FAILING


def check_snapshots(factory: sessionmaker[Session], record: Record) -> None:
    """A snapshot is kept when what a collector read changed, not on every sync: the widgets
    changed on days 20, 30 (back to day 0's content) and 95, the ports at two hours; the
    bodies are content-addressed (day 30's is day 0's, the reconnect's is day 95's)."""
    with factory() as s:
        seen = s.execute(select(SnapshotSeen.connection_id, SnapshotSeen.collector,
                                SnapshotSeen.valid_from, SnapshotSeen.valid_to,
                                SnapshotSeen.sha256)
                         .order_by(SnapshotSeen.valid_from, SnapshotSeen.id)).tuples().all()
        bodies = s.scalars(select(CollectorSnapshot.sha256).where(
            CollectorSnapshot.kind == SnapshotKind.SNAPSHOT)).all()
    old, new = record.daily
    widgets_from = [at(0), at(C_UNLOCKED[0]), at(C_UNLOCKED[-1] + 1), at(B_UPGRADED)]
    ports_from = [h(0), h(SSH_OPEN[0]), h(SSH_OPEN[-1] + 1)]
    assert [row[:4] for row in seen] == sorted(
        [(old, estate.collect_widgets.name, start, end)
         for start, end in zip(widgets_from, widgets_from[1:] + [None], strict=True)]
        + [(record.hourly, estate.collect_ports.name, start, end)
           for start, end in zip(ports_from, ports_from[1:] + [None], strict=True)]
        + [(new, estate.collect_widgets.name, at(RECONNECT_DAY), None)], key=lambda row: row[2])
    sha = {(row[0], row[2]): row[4] for row in seen}
    assert sha[old, at(0)] == sha[old, at(C_UNLOCKED[-1] + 1)]
    assert sha[old, at(B_UPGRADED)] == sha[new, at(RECONNECT_DAY)]
    assert sha[record.hourly, h(0)] == sha[record.hourly, h(SSH_OPEN[-1] + 1)]
    assert len(bodies) == len(set(sha.values())) == 5


def check_period(factory: sessionmaker[Session], record: Record) -> None:
    with factory() as s, s.begin():
        scope_to_account(s, ACME)
        audit = audits.create_audit(s, ACME, CUSTOMER, framework_id="soc2",
                                    audit_type=AuditType.TYPE_II, title="SOC 2 Type II",
                                    period_start=PERIOD_START, period_end=PERIOD_END, now=TODAY)
        answer = audit_period(s, audit, GRACE, now=TODAY)
    assert answer.period == Span(T0, END)
    controls = {c.control.id: c for c in answer.controls}
    cc61, cc66 = controls.pop("CC6.1"), controls.pop("CC6.6")

    # CC6.1, served by the daily widgets: three gaps, two exceptions, three resources.
    assert 180 * DAY - DAILY_COVERED == 2 * HOUR + (7 * DAY - GRACE) + (9 * DAY + 14 * HOUR)
    assert cc61.covered == DAILY_COVERED
    assert cc61.operating == DAILY_COVERED - 10 * DAY - 5 * DAY
    assert cc61.coverage == DAILY_COVERED / (180 * DAY)
    assert [(g.span, [c.kind for c in g.causes]) for g in cc61.gaps] == [
        (span, [kind]) for span, kind in DAILY_GAPS]
    outage = cc61.gaps[1].causes[0]
    assert (outage.connection_id, outage.integration_id, outage.since) == (
        record.daily[0], "daily", at(OUTAGE[0] - 1))
    assert [(r.id, r.status, r.finished_at, r.error) for r in outage.runs] == [
        (record.runs[at(day)][0], RunStatus.FAILED, at(day), estate.OUTAGE_ERROR)
        for day in OUTAGE]
    gone = cc61.gaps[2].causes[0]
    assert (gone.connection_id, gone.since) == (record.daily[0], DISCONNECT)
    assert [(e.span, [(r.integration_id, r.check_id, r.resource_id, r.failed_at, r.fixed_at,
                       r.outcome) for r in e.resources]) for e in cc61.exceptions] == [
        (Span(at(C_UNLOCKED[0]), at(C_UNLOCKED[-1] + 1)),
         [("daily", DAILY_CHECK, "widget:c", at(C_UNLOCKED[0]), at(C_UNLOCKED[-1] + 1),
           Outcome.FIXED)]),
        (Span(at(RULE_CHANGE), at(B_UPGRADED)),
         [("daily", DAILY_CHECK, "widget:b", at(RULE_CHANGE), at(B_UPGRADED), Outcome.FIXED)])]
    assert [(m.check_id, m.resource_id, m.first_seen, m.last_seen, m.failed, m.seen)
            for m in sorted(cc61.population, key=lambda m: m.resource_id)] == [
        (DAILY_CHECK, f"widget:{name}", at(0), at(179), failed,
         (Span(at(0), DISCONNECT), Span(at(RECONNECT_DAY), END)))
        for name, failed in (("a", False), ("b", True), ("c", True))]
    member = cc61.population[0]
    assert member.connection_at(at(5)) == record.daily[0]
    assert member.connection_at(at(105)) is None
    assert member.connection_at(at(120)) == record.daily[1]

    # CC6.6, served by the hourly ports for a week: five failing hours.
    covered = H_DISCONNECT - H0
    assert (cc66.covered, cc66.operating) == (covered, covered - 5 * HOUR)
    assert [(g.span, [c.kind for c in g.causes]) for g in cc66.gaps] == [
        (span, [kind]) for span, kind in HOURLY_GAPS]
    assert cc66.gaps[1].causes[0].since == H_DISCONNECT
    assert [(e.span, [(r.resource_id, r.failed_at, r.fixed_at, r.outcome) for r in e.resources])
            for e in cc66.exceptions] == [
        (Span(h(SSH_OPEN[0]), h(SSH_OPEN[-1] + 1)),
         [("port:ssh", h(SSH_OPEN[0]), h(SSH_OPEN[-1] + 1), Outcome.FIXED)])]
    assert [(m.resource_id, m.first_seen, m.last_seen, m.failed, m.seen)
            for m in sorted(cc66.population, key=lambda m: m.resource_id)] == [
        (f"port:{name}", H0, h(HOURLY_SYNCS - 1), failed, (Span(H0, H_DISCONNECT),))
        for name, failed in (("https", False), ("ssh", True))]

    # Every other control of the framework: no evidence of this account, so none of it.
    assert controls
    for c in controls.values():
        assert (c.covered, c.operating, c.exceptions, c.population) == (
            timedelta(0), timedelta(0), (), ()), c.control.id


def evidence(s: Session, integration: str, when: datetime) -> dict[str, EvidenceStatus]:
    conn = connection_at(s, integration, when)
    page = evidence_at(s, ACME, [conn.id] if conn else [], when, limit=50)
    assert page.total == len(page.items)
    return {i.resource_id: i.status for i in page.items}


def check_as_of(factory: sessionmaker[Session]) -> None:
    ok = {"widget:a": PASSING, "widget:b": PASSING, "widget:c": PASSING}
    with factory() as s:
        scope_to_account(s, ACME)
        assert evidence(s, "daily", at(0, 1)) == {}  # before the connection existed
        assert evidence(s, "daily", at(0)) == ok
        assert evidence(s, "daily", at(25)) == {**ok, "widget:c": FAILING}
        assert evidence(s, "daily", at(63, 12)) == ok  # the outage changed no verdict
        assert evidence(s, "daily", at(RULE_CHANGE, 1)) == ok
        assert evidence(s, "daily", at(92)) == {**ok, "widget:b": FAILING}
        assert evidence(s, "daily", at(B_UPGRADED)) == ok
        assert evidence(s, "daily", at(105)) == {}  # disconnected
        assert evidence(s, "daily", at(120)) == ok
        assert evidence(s, "hourly", H0 - MINUTE) == {}
        assert evidence(s, "hourly", h(SSH_OPEN[0]) + MINUTE) == {
            "port:https": PASSING, "port:ssh": FAILING}
        assert evidence(s, "hourly", h(SSH_OPEN[-1] + 1)) == {
            "port:https": PASSING, "port:ssh": PASSING}
        assert evidence(s, "hourly", H_DISCONNECT) == {}

        connected, counts = controls_at(s, "daily", at(25))
        cc61 = next(c for c in counts if c.control.key == "soc2-cc6.1")
        assert connected and (cc61.status, cc61.passing, cc61.failing) == (
            ControlStatus.FAILING, 2, 1)
        connected, counts = controls_at(s, "daily", at(105))
        assert not connected and all(c.total == 0 for c in counts)


def rejudged(factory: sessionmaker[Session], settings: Settings, *, apply: bool) -> list[Any]:
    with factory() as s, s.begin():
        scope_to_account(s, ACME)
        report = rejudge(s, settings, account_id=ACME, apply=apply, now=TODAY)
    assert report.failures == []
    assert (report.connections, report.checks) == (3, 3)
    return [(c.connection_id, c.check_id, c.resource_id, c.valid_from, c.valid_to,
             c.old_status, c.new_status, c.old_check_version, c.new_check_version, c.title)
            for c in report.changes]


def check_rejudge(factory: sessionmaker[Session], settings: Settings, record: Record) -> None:
    """Today's rule (version 2) over the stored snapshots: widget b, judged passing by version
    1 while its firmware was 1 (the states from day 0 and from day 20), fails; the state from
    day 30 was last judged by version 2 already (day 90's sync), so nothing else changes."""
    estate.ESTATE["sealed"] = True  # any provider call raises
    expected = [(record.daily[0], DAILY_CHECK, "widget:b", start, end, "passing", "failing", 1,
                 2, "Widget b is locked on firmware 1")
                for start, end in ((at(0), at(C_UNLOCKED[0])),
                                   (at(C_UNLOCKED[0]), at(C_UNLOCKED[-1] + 1)))]
    assert rejudged(factory, settings, apply=False) == expected
    assert rejudged(factory, settings, apply=True) == expected
    with factory() as s:
        judgements = [(j.resource_id, j.valid_from, j.valid_to, j.old_status, j.new_status,
                       j.old_check_version, j.new_check_version, j.judged_at)
                      for j in s.scalars(select(Judgement).order_by(Judgement.id))]
    assert judgements == [("widget:b", start, end, PASSING, FAILING, 1, 2, TODAY)
                          for _, _, _, start, end, *_ in expected]
    assert rejudged(factory, settings, apply=False) == []  # recorded: nothing left to change
    estate.ESTATE["sealed"] = False


def as_superuser(factory: sessionmaker[Session], sql: str, **params: Any) -> None:
    """Change rows behind the ledger's back: triggers off for this transaction only."""
    with factory() as s, s.begin():
        s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(text(sql), params)


def verify(factory: sessionmaker[Session],
           checkpoint: dict[str, Any] | None = None) -> ledger.Verdict:
    with factory() as s:
        return ledger.verify(s, ACME, checkpoint=checkpoint)


def check_ledger(factory: sessionmaker[Session], record: Record) -> None:
    kept = record.checkpoint  # signed on day 80, before the edit below
    verdict = verify(factory, kept)
    assert verdict.ok and verdict.checkpoint is not None and verdict.checkpoint.ok
    assert 0 < kept["length"] < verdict.length
    with factory() as s:
        chain = list(s.scalars(select(LedgerEntry).where(LedgerEntry.account_id == ACME)
                               .order_by(LedgerEntry.seq)))
        version_id, status, title = s.execute(
            select(EvidenceVersion.id, EvidenceVersion.status, EvidenceVersion.title)
            .join(Evidence, Evidence.id == EvidenceVersion.evidence_id)
            .where(Evidence.connection_id == record.daily[0],
                   Evidence.resource_id == "widget:b",
                   EvidenceVersion.recorded_at == at(B_UPGRADED))).one()
    assert [e.seq for e in chain] == list(range(1, verdict.length + 1))
    assert chain[-1].kind == LedgerKind.JUDGEMENT.value  # the rejudge --apply
    covering = [e for e in chain if e.kind == LedgerKind.EVIDENCE_VERSIONS.value
                and any(lo <= version_id <= hi for lo, hi in json.loads(e.content)["ids"])]
    [entry] = covering
    assert entry.seq > kept["length"]

    # Widget b's day-95 version (passing) rewritten as failing, triggers bypassed.
    as_superuser(factory, "UPDATE evidence_version SET status = 'failing', title = 'Widget b "
                 "is unlocked' WHERE id = :id", id=version_id)
    verdict = verify(factory, kept)
    assert verdict.broken is not None and not verdict.ok
    assert (verdict.broken.seq, verdict.broken.kind) == (entry.seq, "evidence_versions")
    assert "was changed" in verdict.broken.reason
    assert verdict.checkpoint is not None and verdict.checkpoint.ok  # its prefix still holds
    with factory() as s, s.begin():
        after = ledger.checkpoint_document(ledger.checkpoint(s, ACME, reason="after the edit",
                                                             now=TODAY))
    verdict = verify(factory, after)
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok
    assert f"entry {entry.seq}, inside" in verdict.checkpoint.reason

    as_superuser(factory, "UPDATE evidence_version SET status = :status, title = :title "
                 "WHERE id = :id", id=version_id, status=status.value, title=title)
    assert verify(factory).ok  # put back as it was: whole again

    # One ledger row deleted: the day-45 daily run's completion.
    run_id = record.runs[at(45)][0]
    [gone] = [e for e in chain if e.kind == LedgerKind.RUN_COMPLETED.value
              and e.subject == run_id]
    as_superuser(factory, "DELETE FROM ledger_entry WHERE account_id = :account AND seq = :seq",
                 account=ACME, seq=gone.seq)
    verdict = verify(factory, kept)
    assert verdict.broken is not None and verdict.broken.seq == gone.seq
    assert f"entry {gone.seq} is missing" in verdict.broken.reason
    assert gone.seq <= kept["length"]
    assert verdict.checkpoint is not None and not verdict.checkpoint.ok


def test_the_type_ii_record_of_180_days(factory: sessionmaker[Session], settings: Settings):
    record = simulate(factory, settings)
    daily_days = [d for d in range(180) if not DISCONNECT_DAY < d < RECONNECT_DAY]
    assert len(daily_days) == 171 and len(record.runs) == 171 + HOURLY_SYNCS
    assert {when: status for when, (_, status) in record.runs.items()} == {
        **{at(d): RunStatus.FAILED if d in OUTAGE else RunStatus.SUCCEEDED for d in daily_days},
        **{h(n): RunStatus.SUCCEEDED for n in range(HOURLY_SYNCS)}}
    check_snapshots(factory, record)
    check_period(factory, record)
    check_as_of(factory)
    check_rejudge(factory, settings, record)
    check_ledger(factory, record)


def test_an_outage_inside_a_collector_is_a_gap_and_its_error_row_no_resource(
        factory: sessionmaker[Session], settings: Settings):
    """The provider answers 503 to the widgets' read (days 3–5) while its session opens: each
    run ends partial with the check's error (a `scope:global` error row stands for the
    widgets); the period counts those days as a sync_failed gap, and its population is still
    the three widgets (the error row is a failed read, not a resource)."""
    runs = {}
    with time_machine.travel(at(0), tick=False) as clock:
        for day in range(10):
            clock.move_to(at(day), tick=False)
            estate.ESTATE.update(widgets=widgets(0), unreadable=day in range(3, 6))
            if day == 0:
                conn_id, run_id, status = connect_and_sync(factory, settings, "daily",
                                                           Frequency.DAILY)
            else:
                run_id, status = run_queued(factory, settings, conn_id, Trigger.SCHEDULED)
            runs[day] = run_id, status
    assert [status for _, status in runs.values()] == [RunStatus.SUCCEEDED] * 3 + [
        RunStatus.PARTIAL] * 3 + [RunStatus.SUCCEEDED] * 4
    with factory() as s, s.begin():
        scope_to_account(s, ACME)
        assert s.get_one(SyncRun, runs[3][0]).errors == [
            {"check": DAILY_CHECK, "message": f"{estate.collect_widgets.name}: "
                                              f"{estate.OUTAGE_ERROR}"}]
        audit = audits.create_audit(s, ACME, CUSTOMER, framework_id="soc2",
                                    audit_type=AuditType.TYPE_II, title="Ten days",
                                    period_start=PERIOD_START, period_end=date(2026, 1, 11),
                                    now=at(10))
        [cc61] = audit_period(s, audit, GRACE, control_ids=["CC6.1"], now=at(10)).controls
    assert [(g.span, [(c.kind, c.since, [r.id for r in c.runs]) for c in g.causes])
            for g in cc61.gaps] == [
        (Span(T0, at(0)), [(GapCause.NOT_CONNECTED, None, [])]),
        (Span(at(3) + GRACE, at(6)),
         [(GapCause.SYNC_FAILED, at(2), [runs[day][0] for day in range(3, 6)])])]
    assert sorted(m.resource_id for m in cc61.population) == [
        "widget:a", "widget:b", "widget:c"]
