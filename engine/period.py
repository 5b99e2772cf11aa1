"""The period of a Type II audit, per control of its framework: coverage (the share of the period
with a fresh test result), operating time (the share with a fresh passing result), exceptions
(each interval in which the control failed, with the resources that failed and when each was
fixed), gaps (each interval without a fresh result, with its cause) and the population (every
resource judged for the control during the period, first and last seen).

A result is fresh for `window` = the connection's sync period plus a grace
(EVIDENCE_FRESHNESS_GRACE_SECONDS) after a run that finished `succeeded` or `partial` without an
error on any of the control's checks. A control is fresh while at least one of its connections
is live (created, not disconnected) and every live one is fresh. Its status at any instant is
rolled up (engine.controls.status_of) from the evidence versions of its checks on the
connections live then, so the answer never depends on when control results were recomputed.

Everything here is interval arithmetic over half-open spans [start, end) on plain data (the
`*Facts` types); `load_period` reads those facts with four set-based queries.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import String

from engine.controls import status_of
from engine.errors import Conflict
from engine.frameworks import Control, catalog
from engine.models import Connection, ControlStatus, EvidenceStatus, RunStatus, SyncRun
from engine.models.audit import Audit
from engine.schedule import PERIODS

FOREVER = datetime.max.replace(tzinfo=UTC) - timedelta(days=366)
"""The open end of a span that has not ended (far enough from datetime.max to add a window)."""
GOOD_RUNS = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
LOOKBACK = timedelta(days=31)
"""How far before a period (or an instant) the runs are read, to name a gap's cause and its
last fresh result (or five sync periods, if longer)."""


# --- spans ---------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Span:
    """A half-open interval [start, end)."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return max(self.end - self.start, timedelta(0))

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-empty, non-overlapping spans; touching spans are joined."""
    out: list[Span] = []
    for s in sorted(s for s in spans if s.end > s.start):
        if out and s.start <= out[-1].end:
            if s.end > out[-1].end:
                out[-1] = Span(out[-1].start, s.end)
        else:
            out.append(s)
    return out


def intersect(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    """Where both sets of spans hold."""
    left, right = merge(a), merge(b)
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start, end = max(left[i].start, right[j].start), min(left[i].end, right[j].end)
        if start < end:
            out.append(Span(start, end))
        if left[i].end < right[j].end:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    """Where `a` holds and `b` does not."""
    out: list[Span] = []
    cuts = merge(b)
    for s in merge(a):
        start = s.start
        for c in cuts:
            if c.end <= start or c.start >= s.end:
                continue
            if c.start > start:
                out.append(Span(start, c.start))
            start = max(start, c.end)
        if start < s.end:
            out.append(Span(start, s.end))
    return out


def clip(spans: Iterable[Span], window: Span) -> list[Span]:
    """Sorted, disjoint spans cut to `window` (a cheap `intersect` with one span)."""
    return [Span(max(s.start, window.start), min(s.end, window.end)) for s in spans
            if s.start < window.end and s.end > window.start]


def total(spans: Iterable[Span]) -> timedelta:
    return sum((s.length for s in merge(spans)), timedelta(0))


# --- facts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunFact:
    """A finished sync run: when, how, and which checks reported an error in it."""

    id: str
    status: RunStatus
    finished_at: datetime
    errored_checks: frozenset[str] = frozenset()
    error: str | None = None

    def verified(self, checks: Iterable[str]) -> bool:
        """The run stored a result for every one of `checks` without an error."""
        return self.status in GOOD_RUNS and not self.errored_checks.intersection(checks)


@dataclass(frozen=True)
class ConnectionFacts:
    id: str
    integration_id: str
    created_at: datetime
    disconnected_at: datetime | None
    window: timedelta
    """How long a verified result stays fresh: the sync period plus the grace."""
    runs: tuple[RunFact, ...] = ()
    """Ordered by finished_at."""
    runs_from: datetime | None = None
    """The runs are every run that finished since then (None: every run there was)."""

    @property
    def live(self) -> Span:
        return Span(self.created_at, self.disconnected_at or FOREVER)


State = tuple[datetime, EvidenceStatus | None]
"""An evidence version: from `at` on, the resource had this status (None: it was closed)."""


@dataclass(frozen=True)
class ResourceFacts:
    """One resource's states under one check on one connection, oldest first (the first may
    precede the period: the state it entered the period with)."""

    connection_id: str
    integration_id: str
    check_id: str
    resource_id: str
    resource_type: str
    states: tuple[State, ...]

    def spans(self, status: EvidenceStatus | None = None) -> list[tuple[Span, State | None]]:
        """Spans in which the resource was open (with `status`, if given), each with the state
        that ended it (None: it had not ended). Consecutive matching versions are one span."""
        out: list[tuple[Span, State | None]] = []
        start: datetime | None = None
        for at, st in self.states:
            matches = st is not None and (status is None or st is status)
            if matches and start is None:
                start = at
            elif not matches and start is not None:
                out.append((Span(start, at), (at, st)))
                start = None
        if start is not None:
            out.append((Span(start, FOREVER), None))
        return out


# --- answers -------------------------------------------------------------------------------

class GapCause(StrEnum):
    NOT_CONNECTED = "not_connected"
    DISCONNECTED = "disconnected"
    SYNC_FAILED = "sync_failed"
    SCHEDULE_PAUSED = "schedule_paused"
    FIRST_SYNC_PENDING = "first_sync_pending"

    @property
    def explanation(self) -> str:
        return {
            GapCause.NOT_CONNECTED: "no integration serving the control was connected yet",
            GapCause.DISCONNECTED: "the integration was disconnected",
            GapCause.SYNC_FAILED: "syncs failed (or errored on the control's checks)",
            GapCause.SCHEDULE_PAUSED: "no sync ran: the schedule was paused or behind",
            GapCause.FIRST_SYNC_PENDING: "connected, but its first sync had not completed",
        }[self]


@dataclass(frozen=True)
class RunRef:
    id: str
    status: RunStatus
    finished_at: datetime
    error: str | None


@dataclass(frozen=True)
class Cause:
    kind: GapCause
    connection_id: str | None = None
    integration_id: str | None = None
    since: datetime | None = None
    """The last fresh result before the gap, or when the connection went away."""
    runs: tuple[RunRef, ...] = ()
    """The runs that failed since the last fresh result."""


@dataclass(frozen=True)
class Gap:
    span: Span
    causes: tuple[Cause, ...]


class Outcome(StrEnum):
    """How a resource's failure ended."""

    FIXED = "fixed"
    REMOVED = "removed"
    NO_LONGER_MONITORED = "no_longer_monitored"
    STILL_FAILING = "still_failing"


@dataclass(frozen=True)
class FailedResource:
    integration_id: str
    check_id: str
    resource_id: str
    failed_at: datetime
    fixed_at: datetime | None
    outcome: Outcome


@dataclass(frozen=True)
class ControlException:
    span: Span
    resources: tuple[FailedResource, ...]


@dataclass(frozen=True)
class Member:
    """A resource of the population: judged for the control during the period."""

    integration_id: str
    check_id: str
    resource_id: str
    resource_type: str
    first_seen: datetime
    last_seen: datetime
    failed: bool
    seen: tuple[Span, ...] = field(repr=False, default=())
    """Where it was in the judged set during the period (a sample's dates come from here)."""
    connections: tuple[tuple[Span, str], ...] = field(repr=False, default=())
    """Which connection judged it when: (span, connection id)."""

    def connection_at(self, at: datetime) -> str | None:
        return next((c for s, c in self.connections if s.contains(at)), None)


@dataclass(frozen=True)
class ControlPeriod:
    control: Control
    automated: bool
    """False when no check of a registered connector serves the control."""
    period: Span
    covered: timedelta
    operating: timedelta
    exceptions: tuple[ControlException, ...]
    gaps: tuple[Gap, ...]
    population: tuple[Member, ...]
    integrations: tuple[str, ...]
    passing: tuple[Span, ...] = ()
    """Where its rolled-up status was passing (fresh or not): operating time is where these
    and the fresh spans meet, which the console's period strip draws."""

    @property
    def coverage(self) -> float:
        return self.covered / self.period.length

    @property
    def operating_share(self) -> float:
        return self.operating / self.period.length


# --- the computation, on plain data --------------------------------------------------------

def fresh_spans(conn: ConnectionFacts, checks: Sequence[str]) -> list[Span]:
    """Where the connection had a fresh result for all of `checks`."""
    return intersect([conn.live], [Span(r.finished_at, r.finished_at + conn.window)
                                   for r in conn.runs if r.verified(checks)])


def control_fresh(conns: Sequence[tuple[ConnectionFacts, Sequence[str]]]) -> list[Span]:
    """Where some connection was live and every live one was fresh."""
    live = merge(c.live for c, _ in conns)
    stale = [s for c, checks in conns for s in subtract([c.live], fresh_spans(c, checks))]
    return subtract(live, stale)


def cause_segments(conns: Sequence[tuple[ConnectionFacts, Sequence[str]]]
                   ) -> list[tuple[Span, Cause]]:
    """Every span in which something kept the control from a fresh result, with why."""
    out: list[tuple[Span, Cause]] = []
    if not conns:
        return [(Span(datetime.min.replace(tzinfo=UTC), FOREVER), Cause(GapCause.NOT_CONNECTED))]
    first = min(c.created_at for c, _ in conns)
    out.append((Span(datetime.min.replace(tzinfo=UTC), first), Cause(GapCause.NOT_CONNECTED)))
    for gone in subtract([Span(first, FOREVER)], [c.live for c, _ in conns]):
        last = max((c for c, _ in conns if c.disconnected_at and c.disconnected_at <= gone.start),
                   key=lambda c: c.disconnected_at or first)
        out.append((gone, Cause(GapCause.DISCONNECTED, last.id, last.integration_id,
                                last.disconnected_at)))
    for conn, checks in conns:
        for stale in subtract([conn.live], fresh_spans(conn, checks)):
            out.append((stale, stale_cause(conn, checks, stale)))
    return out


def stale_cause(conn: ConnectionFacts, checks: Sequence[str], stale: Span) -> Cause:
    """Why the connection had no fresh result over `stale`: runs failed (or errored on the
    checks) since its last fresh one, its first sync had not completed, or no run ran."""
    good = [r for r in conn.runs if r.verified(checks) and r.finished_at <= stale.start]
    since = good[-1].finished_at if good else None
    bad = tuple(RunRef(r.id, r.status, r.finished_at, r.error) for r in conn.runs
                if not r.verified(checks) and (since is None or r.finished_at > since)
                and r.finished_at < stale.end)
    if bad:
        kind = GapCause.SYNC_FAILED
    elif since is None and (conn.runs_from is None or conn.created_at >= conn.runs_from):
        kind = GapCause.FIRST_SYNC_PENDING
    else:
        kind = GapCause.SCHEDULE_PAUSED
    return Cause(kind, conn.id, conn.integration_id,
                 since or (conn.created_at if kind is GapCause.FIRST_SYNC_PENDING else None), bad)


def gaps_of(period: Span, fresh: Sequence[Span],
            segments: Sequence[tuple[Span, Cause]]) -> list[Gap]:
    """The period's stale spans, cut where their causes change."""
    out: list[Gap] = []
    for stale in subtract([period], fresh):
        cuts = sorted({stale.start, stale.end} | {t for s, _ in segments
                                                  for t in (s.start, s.end)
                                                  if stale.start < t < stale.end})
        for start, end in zip(cuts, cuts[1:], strict=False):
            piece = Span(start, end)
            causes = tuple(c for s, c in segments if intersect([s], [piece]))
            if out and out[-1].span.end == start and out[-1].causes == causes:
                out[-1] = Gap(Span(out[-1].span.start, end), causes)
            else:
                out.append(Gap(piece, causes))
    return out


def status_timeline(resources: Sequence[ResourceFacts], lives: dict[str, Span],
                    window: Span) -> list[tuple[Span, ControlStatus]]:
    """The control's status over `window`, rolled up from its resources on live connections."""
    events: dict[datetime, list[tuple[int, str, EvidenceStatus | None]]] = defaultdict(list)
    for n, r in enumerate(resources):
        live = lives[r.connection_id]
        for at, st in r.states:
            events[at].append((n, "state", st))
        events[live.start].append((n, "live", None))
        events[live.end].append((n, "dead", None))
    current: list[EvidenceStatus | None] = [None] * len(resources)
    alive = [False] * len(resources)
    counts: Counter[EvidenceStatus] = Counter()
    out: list[tuple[Span, ControlStatus]] = []
    times = [*sorted(t for t in events if t < window.end), window.end]
    if times[0] > window.start:
        out.append((Span(window.start, times[0]), ControlStatus.NOT_EVALUATED))
    for i, t in enumerate(times[:-1]):
        for n, kind, st in events[t]:
            before = current[n] if alive[n] else None
            if kind == "live":
                alive[n] = True
            elif kind == "dead":
                alive[n] = False
            else:
                current[n] = st
            after = current[n] if alive[n] else None
            if before is not None:
                counts[before] -= 1
            if after is not None:
                counts[after] += 1
        start, end = max(t, window.start), min(times[i + 1], window.end)
        if start >= end:
            continue
        status = status_of(counts[EvidenceStatus.PASSING], counts[EvidenceStatus.FAILING],
                           counts[EvidenceStatus.ERROR])
        if out and out[-1][1] is status and out[-1][0].end == start:
            out[-1] = (Span(out[-1][0].start, end), status)
        else:
            out.append((Span(start, end), status))
    return out


def exceptions_of(timeline: Sequence[tuple[Span, ControlStatus]],
                  resources: Sequence[ResourceFacts], lives: dict[str, Span],
                  period: Span) -> list[ControlException]:
    """Each span in which the control failed, with the resources that failed in it."""
    failing = merge(s for s, st in timeline if st is ControlStatus.FAILING)
    out = []
    for span in failing:
        found: list[FailedResource] = []
        for r in resources:
            live = lives[r.connection_id]
            for failed, ended_by in r.spans(EvidenceStatus.FAILING):
                seen = clip([failed], live)
                if not seen or not clip(seen, span):
                    continue
                end = seen[-1].end
                if end > period.end:
                    outcome, fixed = Outcome.STILL_FAILING, None
                elif ended_by is not None and ended_by[0] == end:
                    outcome = Outcome.REMOVED if ended_by[1] is None else Outcome.FIXED
                    fixed = end
                else:
                    outcome, fixed = Outcome.NO_LONGER_MONITORED, end
                found.append(FailedResource(r.integration_id, r.check_id, r.resource_id,
                                            seen[0].start, fixed, outcome))
        found.sort(key=lambda f: (f.failed_at, f.check_id, f.resource_id))
        out.append(ControlException(span, tuple(found)))
    return out


def population_of(resources: Sequence[ResourceFacts], conns: dict[str, ConnectionFacts],
                  window: Span) -> list[Member]:
    """Every resource in the judged set during `window`, merged across the connections of one
    integration; last seen is the last run that verified its check while it was open."""
    grouped: dict[tuple[str, str, str], list[ResourceFacts]] = defaultdict(list)
    for r in resources:
        if not _read_error(r):
            grouped[(r.integration_id, r.check_id, r.resource_id)].append(r)
    verified: dict[tuple[str, str], list[datetime]] = {}
    out = []
    for (integration, check_id, resource_id), facts in sorted(grouped.items()):
        seen: list[tuple[Span, str]] = []
        last: list[datetime] = []
        failed = False
        for r in facts:
            conn = conns[r.connection_id]
            spans = clip(clip([s for s, _ in r.spans()], conn.live), window)
            seen += [(s, conn.id) for s in spans]
            times = verified.get((conn.id, check_id))
            if times is None:
                times = verified[(conn.id, check_id)] = [
                    run.finished_at for run in conn.runs if run.verified([check_id])]
            for s in spans:  # the last verifying run inside each span (runs are in order)
                i = bisect_left(times, s.end) - 1
                if i >= 0 and times[i] >= s.start:
                    last.append(times[i])
            failed = failed or any(clip([s for s, _ in r.spans(EvidenceStatus.FAILING)], s)
                                   for s in spans)
        if not seen:
            continue
        seen.sort()
        first = seen[0][0].start
        out.append(Member(integration, check_id, resource_id, facts[0].resource_type, first,
                          max(last, default=first), failed,
                          tuple(merge(s for s, _ in seen)), tuple(seen)))
    return out


def _read_error(r: ResourceFacts) -> bool:
    """The row a check stores when a collector could not read a scope (`scope:<name>`, status
    error): a failed read, which the gaps account for, not a resource of the population."""
    return r.resource_id.startswith("scope:") and all(
        st is None or st is EvidenceStatus.ERROR for _, st in r.states)


def control_period(control: Control, checks: Sequence[str],
                   conns: Sequence[ConnectionFacts], resources: Sequence[ResourceFacts],
                   period: Span) -> ControlPeriod:
    """One control over the period, from the facts of its checks' connections."""
    mine = [(c, [k for k in checks if _integration_of(k) == c.integration_id]) for c in conns]
    mine = [(c, ks) for c, ks in mine if ks]
    if not checks:
        return ControlPeriod(control, False, period, timedelta(0), timedelta(0), (), (), (), ())
    ids = {c.id for c, _ in mine}
    lives = {c.id: c.live for c, _ in mine}
    res = [r for r in resources if r.connection_id in ids and r.check_id in checks]
    fresh = intersect(control_fresh(mine), [period])
    timeline = status_timeline(res, lives, period)
    passing = [s for s, st in timeline if st is ControlStatus.PASSING]
    return ControlPeriod(
        control, True, period, total(fresh), total(intersect(fresh, passing)),
        tuple(exceptions_of(timeline, res, lives, period)),
        tuple(gaps_of(period, fresh, cause_segments(mine))),
        tuple(population_of(res, {c.id: c for c, _ in mine}, period)),
        tuple(sorted({c.integration_id for c, _ in mine})), tuple(merge(passing)))


def _integration_of(check_id: str) -> str:
    """Every check id starts with its connector's id (docs/DEVELOPING.md)."""
    return check_id.split(".", 1)[0]


def timeline_status(timeline: Sequence[tuple[Span, ControlStatus]],
                    at: datetime) -> ControlStatus:
    """The status a timeline gives at `at` (not evaluated outside it)."""
    starts = [s.start for s, _ in timeline]
    i = bisect_right(starts, at) - 1
    if i < 0 or not timeline[i][0].contains(at):
        return ControlStatus.NOT_EVALUATED
    return timeline[i][1]


# --- reading the facts ---------------------------------------------------------------------

def period_span(start: date, end: date) -> Span:
    """[start 00:00 UTC, end 00:00 UTC)."""
    return Span(datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC))


def window_of(conn: Connection, grace: timedelta) -> timedelta:
    return PERIODS[conn.sync_frequency] + grace


_VERSIONS = text("""
SELECT e.id, e.connection_id, e.check_id, e.resource_id, e.resource_type,
       v.recorded_at, v.status, v.change
FROM evidence e
JOIN evidence_version v ON v.evidence_id = e.id
WHERE e.account_id = :account_id AND e.connection_id = ANY(:connections)
  AND e.check_id = ANY(:checks) AND e.first_seen_at < :end AND v.recorded_at < :end
  AND (v.recorded_at >= :start OR v.id = (
      SELECT p.id FROM evidence_version p WHERE p.evidence_id = e.id AND p.recorded_at < :start
      ORDER BY p.recorded_at DESC, p.id DESC LIMIT 1))
  AND (e.closed_at IS NULL OR e.closed_at >= :start)
ORDER BY e.id, v.recorded_at, v.id
""").bindparams(bindparam("connections", type_=ARRAY(String)),
                bindparam("checks", type_=ARRAY(String)))


@dataclass(frozen=True)
class Facts:
    connections: list[ConnectionFacts]
    resources: list[ResourceFacts]


def load_facts(session: Session, account_id: str, checks: Iterable[str], period: Span,
               grace: timedelta, *, evidence: bool = True) -> Facts:
    """The connections, runs and (unless `evidence` is false: freshness alone) evidence
    versions of `checks` that bear on `period`."""
    checks = sorted(set(checks))
    integrations = sorted({_integration_of(k) for k in checks})
    rows = session.scalars(select(Connection).where(
        Connection.account_id == account_id, Connection.integration_id.in_(integrations),
        Connection.created_at < period.end)).all()
    if not rows:
        return Facts([], [])
    runs_from = period.start - max(LOOKBACK, *(5 * window_of(c, grace) for c in rows))
    runs: dict[str, list[RunFact]] = defaultdict(list)
    for run in session.execute(
            select(SyncRun.id, SyncRun.connection_id, SyncRun.status, SyncRun.finished_at,
                   SyncRun.errors)
            .where(SyncRun.account_id == account_id,
                   SyncRun.connection_id.in_([c.id for c in rows]),
                   SyncRun.status.in_((*GOOD_RUNS, RunStatus.FAILED)),
                   SyncRun.finished_at >= runs_from,
                   SyncRun.finished_at < period.end)
            .order_by(SyncRun.finished_at, SyncRun.id)):
        errors = run.errors or []
        runs[run.connection_id].append(RunFact(
            run.id, run.status, run.finished_at,
            frozenset(e["check"] for e in errors if e.get("check")),
            "; ".join(str(e.get("message")) for e in errors)[:500] or None))
    conns = [ConnectionFacts(c.id, c.integration_id, c.created_at, c.disconnected_at,
                             window_of(c, grace), tuple(runs[c.id]), runs_from) for c in rows]
    by_id = {c.id: c for c in conns}
    if not evidence:
        return Facts(conns, [])
    states: dict[int, list[State]] = defaultdict(list)
    meta: dict[int, tuple[str, str, str, str]] = {}
    for v in session.execute(_VERSIONS, {
            "account_id": account_id, "connections": list(by_id), "checks": checks,
            "start": period.start, "end": period.end}):
        meta[v.id] = (v.connection_id, v.check_id, v.resource_id, v.resource_type)
        states[v.id].append((v.recorded_at, None if v.change == "closed"
                             else EvidenceStatus(v.status)))
    resources = [ResourceFacts(conn_id, by_id[conn_id].integration_id, check_id, resource_id,
                               rtype, tuple(states[eid]))
                 for eid, (conn_id, check_id, resource_id, rtype) in meta.items()]
    return Facts(conns, resources)


@dataclass(frozen=True)
class PeriodAnswer:
    framework_id: str
    period: Span
    grace: timedelta
    controls: list[ControlPeriod]


def framework_period(session: Session, account_id: str, framework_id: str, period: Span,
                     grace: timedelta, *, control_ids: Iterable[str] | None = None,
                     evidence: bool = True) -> PeriodAnswer:
    """Every control of the framework (or those named) over the period (`evidence` false:
    coverage and gaps alone, no evidence read)."""
    cat = catalog()
    fw = cat.frameworks[framework_id]
    wanted = set(control_ids) if control_ids is not None else None
    checks_of: dict[str, list[str]] = defaultdict(list)
    for check_id, served in cat.check_controls.items():
        for c in served:
            if c.framework_id == fw.id:
                checks_of[c.id].append(check_id)
    controls = [c for c in sorted(fw.controls.values(), key=lambda c: c.sort_key)
                if wanted is None or c.id in wanted]
    facts = load_facts(session, account_id,
                       (k for c in controls for k in checks_of.get(c.id, [])), period, grace,
                       evidence=evidence)
    return PeriodAnswer(fw.id, period, grace, [
        control_period(c, sorted(checks_of.get(c.id, [])), facts.connections, facts.resources,
                       period) for c in controls])


def audit_period(session: Session, audit: Audit, grace: timedelta, *,
                 control_ids: Iterable[str] | None = None,
                 now: datetime | None = None) -> PeriodAnswer:
    """The audit's period over its framework, up to `now` while the period is still running
    (409 `period_not_set` without a period, `period_not_started` before it begins)."""
    if audit.period_start is None or audit.period_end is None:
        raise Conflict(f"audit {audit.id} has no period: a type_ii audit answers its period "
                       "once period_start and period_end are set (PUT /api/v1/audits/{id})",
                       code="period_not_set", type=audit.type.value)
    whole = period_span(audit.period_start, audit.period_end)
    now = now or datetime.now(UTC)
    if now <= whole.start:
        raise Conflict(f"the period of audit {audit.id} begins on "
                       f"{audit.period_start.isoformat()}: nothing to answer yet",
                       code="period_not_started", period_start=audit.period_start.isoformat())
    return framework_period(session, audit.account_id, audit.framework_id,
                            Span(whole.start, min(whole.end, now)), grace,
                            control_ids=control_ids)
