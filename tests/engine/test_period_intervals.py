"""The period's interval arithmetic on plain data: spans, freshness, gaps and their causes,
the status timeline, exceptions and the population (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.frameworks import Control
from engine.models import ControlStatus, EvidenceStatus, RunStatus
from engine.period import (
    FOREVER,
    Cause,
    ConnectionFacts,
    GapCause,
    Outcome,
    ResourceFacts,
    RunFact,
    Span,
    control_fresh,
    control_period,
    intersect,
    merge,
    status_timeline,
    subtract,
    timeline_status,
    total,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
P = EvidenceStatus.PASSING
F = EvidenceStatus.FAILING
CHECK = "aws.s3.bucket_default_encryption"
CONTROL = Control("soc2", "CC6.1", "Logical access", "CC6")


def d(days: float) -> datetime:
    return T0 + days * DAY


def span(a: float, b: float) -> Span:
    return Span(d(a), d(b))


def test_merge_joins_overlapping_and_touching_spans_and_drops_empty_ones():
    assert merge([span(3, 4), span(0, 1), span(1, 2), span(5, 5), span(0.5, 1.5)]) == [
        span(0, 2), span(3, 4)]


def test_intersect_and_subtract_are_exact():
    a = [span(0, 10)]
    b = [span(2, 3), span(5, 7), span(9, 12)]
    assert intersect(a, b) == [span(2, 3), span(5, 7), span(9, 10)]
    assert subtract(a, b) == [span(0, 2), span(3, 5), span(7, 9)]
    assert total(subtract(a, b)) == 6 * DAY
    assert subtract([span(1, 2)], [span(0, 3)]) == []
    assert intersect([span(0, 1)], [span(1, 2)]) == []


def run(rid: str, at: datetime, status: RunStatus = RunStatus.SUCCEEDED,
        errored: frozenset[str] = frozenset(), error: str | None = None) -> RunFact:
    return RunFact(rid, status, at, errored, error)


def daily(conn_id: str, runs: list[RunFact], created: float = 0,
          gone: float | None = None) -> ConnectionFacts:
    return ConnectionFacts(conn_id, "aws", d(created), d(gone) if gone is not None else None,
                           DAY + HOUR, tuple(runs))


def test_a_result_is_fresh_for_the_period_plus_grace_and_only_if_the_checks_were_verified():
    conn = daily("c1", [run("r0", d(0)), run("r1", d(1)),
                        run("r2", d(2), RunStatus.PARTIAL, frozenset({CHECK}), "denied"),
                        run("r3", d(3), RunStatus.PARTIAL, frozenset({"aws.other"}))])
    fresh = control_fresh([(conn, [CHECK])])
    assert fresh == [Span(d(0), d(2) + HOUR), Span(d(3), d(4) + HOUR)]


def test_gaps_say_why_failed_runs_not_connected_disconnected_and_paused():
    old = daily("c1", [run("r1", d(1)), run("r2", d(2), RunStatus.FAILED, error="timeout"),
                       run("r3", d(3), RunStatus.FAILED, error="timeout"), run("r4", d(4))],
                created=1, gone=5)
    new = daily("c2", [run("r8", d(8))], created=8)
    period = span(0, 12)
    result = control_period(CONTROL, [CHECK], [old, new], [], period)
    gaps = [(g.span, [c.kind for c in g.causes]) for g in result.gaps]
    assert gaps == [
        (span(0, 1), [GapCause.NOT_CONNECTED]),
        (Span(d(2) + HOUR, d(4)), [GapCause.SYNC_FAILED]),
        (span(5, 8), [GapCause.DISCONNECTED]),
        (Span(d(9) + HOUR, d(12)), [GapCause.SCHEDULE_PAUSED]),
    ]
    failed = result.gaps[1].causes[0]
    assert failed == Cause(GapCause.SYNC_FAILED, "c1", "aws", d(1), failed.runs)
    assert [(r.id, r.error) for r in failed.runs] == [("r2", "timeout"), ("r3", "timeout")]
    assert result.gaps[2].causes[0].since == d(5)
    assert result.gaps[3].causes[0].since == d(8)
    assert result.covered == 12 * DAY - (DAY + (2 * DAY - HOUR) + 3 * DAY + (3 * DAY - HOUR))


def test_a_connection_created_before_its_first_sync_is_pending_not_paused():
    conn = daily("c1", [run("r1", d(2))], created=1)
    result = control_period(CONTROL, [CHECK], [conn], [], span(0, 3))
    assert [(g.span, g.causes[0].kind) for g in result.gaps] == [
        (span(0, 1), GapCause.NOT_CONNECTED), (span(1, 2), GapCause.FIRST_SYNC_PENDING)]


def test_no_connection_at_all_is_one_gap_not_connected():
    result = control_period(CONTROL, [CHECK], [], [], span(0, 3))
    assert [(g.span, g.causes[0].kind) for g in result.gaps] == [
        (span(0, 3), GapCause.NOT_CONNECTED)]
    assert result.covered == timedelta(0) and result.population == ()


def resource(rid: str, states: list[tuple[float, EvidenceStatus | None]],
             conn: str = "c1") -> ResourceFacts:
    return ResourceFacts(conn, "aws", CHECK, rid, "aws.s3.bucket",
                         tuple((d(a), st) for a, st in states))


def test_the_status_timeline_rolls_up_live_resources_only():
    res = [resource("a", [(-5, P)]), resource("b", [(-5, P), (2, F), (4, P), (6, None)])]
    lives = {"c1": Span(d(-10), d(8))}
    timeline = status_timeline(res, lives, span(0, 10))
    assert timeline == [(span(0, 2), ControlStatus.PASSING), (span(2, 4), ControlStatus.FAILING),
                        (span(4, 8), ControlStatus.PASSING),
                        (span(8, 10), ControlStatus.NOT_EVALUATED)]
    assert timeline_status(timeline, d(3)) is ControlStatus.FAILING
    assert timeline_status(timeline, d(-1)) is ControlStatus.NOT_EVALUATED


def test_exceptions_name_each_failed_resource_and_how_its_failure_ended():
    conn = daily("c1", [run(f"r{n}", d(n)) for n in range(0, 10)], created=-1, gone=9)
    res = [resource("fixed", [(-1, P), (2, F), (2.5, F), (4, P)]),
           resource("removed", [(-1, P), (3, F), (5, None)]),
           resource("unmonitored", [(-1, P), (8, F)]),
           resource("ok", [(-1, P)])]
    result = control_period(CONTROL, [CHECK], [conn], res, span(0, 10))
    assert [e.span for e in result.exceptions] == [span(2, 5), span(8, 9)]
    first = [(r.resource_id, r.failed_at, r.fixed_at, r.outcome)
             for r in result.exceptions[0].resources]
    assert first == [("fixed", d(2), d(4), Outcome.FIXED),
                     ("removed", d(3), d(5), Outcome.REMOVED)]
    [last] = result.exceptions[1].resources
    assert (last.resource_id, last.fixed_at, last.outcome) == (
        "unmonitored", d(9), Outcome.NO_LONGER_MONITORED)


def test_a_failure_past_the_period_end_is_still_failing():
    conn = daily("c1", [run(f"r{n}", d(n)) for n in range(0, 4)], created=-1)
    res = [resource("x", [(-1, P), (2, F)])]
    result = control_period(CONTROL, [CHECK], [conn], res, span(0, 4))
    [exc] = result.exceptions
    assert exc.span == span(2, 4)
    assert [(r.fixed_at, r.outcome) for r in exc.resources] == [(None, Outcome.STILL_FAILING)]
    assert result.operating == 2 * DAY and result.covered == 4 * DAY


def test_the_population_merges_connections_and_is_last_seen_at_the_last_verifying_run():
    old = daily("c1", [run("r0", d(0)), run("r1", d(1)), run("r2", d(2))], created=-1, gone=2.5)
    new = daily("c2", [run("r5", d(5)), run("r6", d(6), RunStatus.FAILED)], created=5)
    res = [resource("a", [(-1, P)], "c1"), resource("a", [(5, P)], "c2"),
           resource("gone", [(-1, F), (1, None)], "c1"), resource("late", [(20, P)], "c2")]
    result = control_period(CONTROL, [CHECK], [old, new], res, span(0, 10))
    members = {m.resource_id: m for m in result.population}
    assert set(members) == {"a", "gone"}
    a = members["a"]
    assert (a.first_seen, a.last_seen, a.failed) == (d(0), d(5), False)
    assert a.seen == (Span(d(0), d(2.5)), span(5, 10))
    assert a.connection_at(d(1)) == "c1" and a.connection_at(d(6)) == "c2"
    assert a.connection_at(d(3)) is None
    gone = members["gone"]
    assert (gone.first_seen, gone.last_seen, gone.failed) == (d(0), d(0), True)


def test_the_open_end_is_far_but_arithmetic_on_it_still_works():
    assert FOREVER + DAY > FOREVER


def test_each_connection_is_fresh_for_its_own_period_and_all_live_ones_must_be():
    hourly = ConnectionFacts("h", "aws", d(0), None, HOUR + timedelta(minutes=10),
                             tuple(run(f"h{n}", d(0) + n * HOUR) for n in range(24)
                                   if n not in (5, 6, 7)))
    okta = ConnectionFacts("d", "okta", d(0), None, DAY + HOUR, (run("d0", d(0.5)),))
    checks = [CHECK, "okta.policy.mfa_required"]
    result = control_period(CONTROL, checks, [hourly, okta], [], span(0, 1))
    lapse_start = d(0) + 4 * HOUR + HOUR + timedelta(minutes=10)
    paused, pending = (GapCause.SCHEDULE_PAUSED, "h"), (GapCause.FIRST_SYNC_PENDING, "d")
    assert [(g.span, [(c.kind, c.connection_id) for c in g.causes]) for g in result.gaps] == [
        (Span(d(0), lapse_start), [pending]),
        (Span(lapse_start, d(0) + 8 * HOUR), [paused, pending]),
        (Span(d(0) + 8 * HOUR, d(0.5)), [pending])]
    assert result.covered == 12 * HOUR
    assert result.integrations == ("aws", "okta")
