"""180 simulated days of one AWS account, written through the engine's own functions at
simulated times (store_check_results, close_run / fail_run with `now`, disconnect): daily syncs;
bucket `exports` fails for ten days and is fixed; a week of provider outage (failed runs); a
disconnect and a reconnect ten days later; bucket `archive` appears on day 150. The period
answer, as_of and the control history must say exactly what that implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.as_of import connection_at, controls_at, evidence_at, status_at
from engine.connections import disconnect, ensure_account
from engine.db import session_factory
from engine.evidence import Item, store_check_results
from engine.models import (
    Connection,
    ConnectionStatus,
    ControlResultHistory,
    ControlStatus,
    EvidenceStatus,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.period import GapCause, Outcome, Span, framework_period, period_span
from engine.settings import Settings
from engine.sync import RunTally, close_run, fail_run
from engine.tenancy import scope_to_account

ACCOUNT = "acme"
CHECK = "aws.s3.bucket_default_encryption"
CONTROL = "CC6.1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_START, PERIOD_END = date(2026, 1, 1), date(2026, 6, 30)  # 180 days
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
GRACE = HOUR
OUTAGE = range(60, 67)          # seven failed daily runs
FAILING = range(20, 30)         # exports fails on these days' runs, fixed on day 30's
DISCONNECT = T0 + 100 * DAY + 12 * HOUR
RECONNECT_DAY = 110
ARCHIVE_FROM = 150
OUTAGE_ERROR = "AWS did not answer: 503 Service Unavailable"


def at(day: int, hour: int = 2) -> datetime:
    return T0 + day * DAY + hour * HOUR


def bucket(name: str) -> str:
    return f"arn:aws:s3:::{name}"


@dataclass(frozen=True)
class Scenario:
    first: str
    second: str
    failed_runs: list[str]


def _items(day: int) -> list[Item]:
    buckets = {"logs": True, "exports": day not in FAILING}
    if day >= ARCHIVE_FROM:
        buckets["archive"] = True
    return [Item.of(bucket(name), "aws.s3.bucket", "passing" if ok else "failing",
                    f"Bucket {name} " + ("encrypts at rest" if ok else "has no default encryption"),
                    {"bucket": name, "encrypted": ok})
            for name, ok in sorted(buckets.items())]


def _connection(session: Session, created: datetime) -> str:
    conn = Connection(account_id=ACCOUNT, integration_id="aws", status=ConnectionStatus.ACTIVE,
                      sync_frequency=Frequency.DAILY, created_at=created)
    session.add(conn)
    session.flush()
    return conn.id


def _run(session: Session, settings: Settings, conn_id: str, day: int) -> str:
    now = at(day)
    run = SyncRun(account_id=ACCOUNT, connection_id=conn_id, trigger=Trigger.SCHEDULED,
                  status=RunStatus.RUNNING, errors=[], queued_at=now, started_at=now)
    session.add(run)
    session.flush()
    if day in OUTAGE:
        fail_run(session, run, OUTAGE_ERROR, False, settings, now=now)
        return run.id
    items = _items(day)
    stats = store_check_results(session, account_id=ACCOUNT, connection_id=conn_id,
                                check_id=CHECK, items=items, run_id=run.id, now=now)
    if stats.unchanged:
        # What close_run records, without its control roll-up (half a second over every
        # framework's controls, and nothing changed): the run, and the connection's last sync.
        run.status, run.finished_at, run.evidence_count = RunStatus.SUCCEEDED, now, len(items)
        session.get_one(Connection, conn_id).last_sync_at = now
    else:
        close_run(session, run, RunTally(evidence=len(items)), 1, settings, now=now)
    return run.id


def build(settings: Settings) -> Scenario:
    """Write the 180 days (one transaction: the engine functions do not commit)."""
    with session_factory(settings)() as session, session.begin():
        scope_to_account(session, ACCOUNT)
        ensure_account(session, ACCOUNT)
        first = _connection(session, at(0))
        failed = []
        for day in range(0, 101):
            run_id = _run(session, settings, first, day)
            if day in OUTAGE:
                failed.append(run_id)
        disconnect(session, "aws", DISCONNECT, settings)
        second = _connection(session, at(RECONNECT_DAY))
        for day in range(RECONNECT_DAY, 180):
            _run(session, settings, second, day)
    return Scenario(first, second, failed)


def period(settings: Settings):
    with session_factory(settings)() as session:
        answer = framework_period(session, ACCOUNT, "soc2", period_span(PERIOD_START,
                                                                        PERIOD_END),
                                  GRACE, control_ids=[CONTROL])
    return answer.controls[0]


# --- what the scenario implies ---------------------------------------------------------------

GAPS = [
    (Span(T0, at(0)), GapCause.NOT_CONNECTED),
    (Span(at(59) + DAY + GRACE, at(67)), GapCause.SYNC_FAILED),
    (Span(DISCONNECT, at(RECONNECT_DAY)), GapCause.DISCONNECTED),
]
UNCOVERED = sum((s.length for s, _ in GAPS), timedelta(0))
COVERED = 180 * DAY - UNCOVERED
OPERATING = COVERED - 10 * DAY


def test_the_period_answers_exactly_what_the_180_days_imply(settings, db):
    scenario = build(settings)
    result = period(settings)

    assert result.period == Span(T0, T0 + 180 * DAY)
    assert UNCOVERED == 2 * HOUR + (7 * DAY - HOUR) + (9 * DAY + 14 * HOUR)
    assert result.covered == COVERED
    assert result.operating == OPERATING
    assert result.coverage == COVERED / (180 * DAY)

    assert [(g.span, [c.kind for c in g.causes]) for g in result.gaps] == [
        (span, [kind]) for span, kind in GAPS]
    outage = result.gaps[1].causes[0]
    assert (outage.connection_id, outage.since) == (scenario.first, at(59))
    assert [r.id for r in outage.runs] == scenario.failed_runs
    assert {r.error for r in outage.runs} == {OUTAGE_ERROR}
    gone = result.gaps[2].causes[0]
    assert (gone.connection_id, gone.since) == (scenario.first, DISCONNECT)

    [exception] = result.exceptions
    assert exception.span == Span(at(20), at(30))
    assert [(r.resource_id, r.failed_at, r.fixed_at, r.outcome) for r in exception.resources] == [
        (bucket("exports"), at(20), at(30), Outcome.FIXED)]

    population = {m.resource_id: m for m in result.population}
    assert set(population) == {bucket("logs"), bucket("exports"), bucket("archive")}
    for name, first_seen, failed in (("logs", at(0), False), ("exports", at(0), True),
                                     ("archive", at(ARCHIVE_FROM), False)):
        m = population[bucket(name)]
        assert (m.first_seen, m.last_seen, m.failed) == (first_seen, at(179), failed), name
    logs = population[bucket("logs")]
    assert logs.seen == (Span(at(0), DISCONNECT), Span(at(RECONNECT_DAY), T0 + 180 * DAY))
    assert logs.connection_at(at(5)) == scenario.first
    assert logs.connection_at(at(120)) == scenario.second


def _evidence(session: Session, when: datetime) -> dict[str, EvidenceStatus]:
    conn = connection_at(session, "aws", when)
    page = evidence_at(session, ACCOUNT, [conn.id] if conn else [], when, limit=50)
    assert page.total == len(page.items)
    return {i.resource_id: i.status for i in page.items}


def test_as_of_returns_exactly_the_state_at_each_instant(settings, db):
    scenario = build(settings)
    passing, failing = EvidenceStatus.PASSING, EvidenceStatus.FAILING
    with session_factory(settings)() as session:
        scope_to_account(session, ACCOUNT)
        assert _evidence(session, at(0, 1)) == {}  # before the connection existed
        assert _evidence(session, at(0)) == {bucket("logs"): passing, bucket("exports"): passing}
        assert _evidence(session, at(25)) == {bucket("logs"): passing, bucket("exports"): failing}
        assert _evidence(session, at(30)) == {bucket("logs"): passing, bucket("exports"): passing}
        assert _evidence(session, at(105)) == {}  # disconnected, not yet reconnected
        assert _evidence(session, at(ARCHIVE_FROM, 1)) == {
            bucket("logs"): passing, bucket("exports"): passing}
        assert _evidence(session, at(ARCHIVE_FROM)) == {
            bucket("logs"): passing, bucket("exports"): passing, bucket("archive"): passing}

        connected, counts = controls_at(session, "aws", at(25))
        cc61 = next(c for c in counts if c.control.key == "soc2-cc6.1")
        assert connected and (cc61.status, cc61.passing, cc61.failing) == (
            ControlStatus.FAILING, 1, 1)
        connected, counts = controls_at(session, "aws", at(0, 1))
        assert not connected and all(c.total == 0 for c in counts)

        early = status_at(session, "aws", at(0, 1), 20)
        assert early is not None and (early.status, early.history) == ("not_connected", [])
        outage = status_at(session, "aws", at(63, 12), 20)
        assert outage is not None and outage.connection is not None
        assert (outage.connection.id, outage.status, outage.last_sync) == (
            scenario.first, "error", at(59))
        assert outage.status_message == OUTAGE_ERROR
        assert [r.finished_at for r in outage.history[:2]] == [at(63), at(62)]
        between = status_at(session, "aws", at(105), 20)
        assert between is not None and between.connection is not None
        assert (between.connection.id, between.status) == (scenario.first, "disconnected")
        later = status_at(session, "aws", at(120, 12), 5)
        assert later is not None and later.connection is not None
        assert (later.connection.id, later.status, later.last_sync) == (
            scenario.second, "active", at(120))

        # The control history the runs recorded agrees with the period's reconstruction.
        history = session.execute(select(ControlResultHistory.evaluated_at,
                                         ControlResultHistory.status)
                                  .where(ControlResultHistory.control_id == CONTROL,
                                         ControlResultHistory.framework_id == "soc2")
                                  .order_by(ControlResultHistory.evaluated_at)).all()
    assert [(t, st) for t, st in history] == [
        (at(0), ControlStatus.PASSING), (at(20), ControlStatus.FAILING),
        (at(30), ControlStatus.PASSING), (at(ARCHIVE_FROM), ControlStatus.PASSING)]
