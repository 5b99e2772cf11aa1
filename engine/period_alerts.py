"""Gaps as alerts: a connection whose checks have had no fresh result for longer than its sync
period plus the grace (failing syncs, a paused schedule, a disconnection), said on the status
endpoint with the cause and the controls it leaves uncovered, and counted on /metrics so
operators learn of a hole before the auditor does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from engine.frameworks import Control, catalog
from engine.models import Connection, Frequency, RunStatus, SyncRun
from engine.models.audit import Audit, AuditStatus, AuditType
from engine.period import (
    GOOD_RUNS,
    LOOKBACK,
    ConnectionFacts,
    GapCause,
    RunFact,
    RunRef,
    Span,
    framework_period,
    fresh_spans,
    stale_cause,
    subtract,
    window_of,
)
from engine.registry import connectors
from engine.schedule import PERIODS


@dataclass(frozen=True)
class CoverageAlert:
    """Some of a connection's checks have had no fresh result since `stale_since`."""

    kind: GapCause
    stale_since: datetime
    last_fresh: datetime | None
    """When the last run that verified them finished (None: not within the look-back)."""
    runs: tuple[RunRef, ...]
    check_ids: tuple[str, ...]
    controls: tuple[Control, ...]


def connection_alerts(session: Session, conn: Connection, at: datetime,
                      grace: timedelta) -> list[CoverageAlert]:
    """What the connection leaves uncovered at `at`, grouped by cause (empty: all fresh)."""
    cls = connectors().get(conn.integration_id)
    cat = catalog()
    checks = sorted(c.id for c in cls.checks if cat.controls_for(c.id)) if cls else []
    if not checks:
        return []
    if conn.disconnected_at is not None and conn.disconnected_at <= at:
        return [CoverageAlert(GapCause.DISCONNECTED, conn.disconnected_at, None, (),
                              tuple(checks), _controls(checks))]
    window = window_of(conn, grace)
    since = at - max(LOOKBACK, 5 * window)
    runs = tuple(RunFact(r.id, r.status, r.finished_at or at,
                         frozenset(e["check"] for e in r.errors or [] if e.get("check")),
                         "; ".join(str(e.get("message")) for e in r.errors or [])[:500] or None)
                 for r in session.scalars(select(SyncRun).where(
                     SyncRun.connection_id == conn.id,
                     SyncRun.status.in_((*GOOD_RUNS, RunStatus.FAILED)),
                     SyncRun.finished_at >= since, SyncRun.finished_at <= at)
                     .order_by(SyncRun.finished_at, SyncRun.id)))
    facts = ConnectionFacts(conn.id, conn.integration_id, conn.created_at, None, window, runs,
                            since)
    now = Span(at, at + timedelta(microseconds=1))
    grouped: dict[tuple[GapCause, datetime, datetime | None, tuple[RunRef, ...]],
                  list[str]] = defaultdict(list)
    for check_id in checks:
        stale = [s for s in subtract([Span(facts.created_at, now.end)],
                                     fresh_spans(facts, [check_id])) if s.contains(at)]
        if stale:
            cause = stale_cause(facts, [check_id], stale[0])
            grouped[(cause.kind, stale[0].start, cause.since, cause.runs)].append(check_id)
    return [CoverageAlert(kind, start, last, runs_, tuple(ids), _controls(ids))
            for (kind, start, last, runs_), ids in sorted(grouped.items(),
                                                          key=lambda kv: kv[0][1])]


def _controls(check_ids: list[str]) -> tuple[Control, ...]:
    cat = catalog()
    found = {c.key: c for k in check_ids for c in cat.controls_for(k)}
    return tuple(sorted(found.values(), key=lambda c: c.sort_key))


# --- /metrics --------------------------------------------------------------------------------

_STALE = text("""
SELECT c.integration_id, c.sync_frequency, g.finished_at AS last_good,
       EXISTS (SELECT 1 FROM sync_run f
               WHERE f.connection_id = c.id AND f.status = 'failed'
                 AND f.finished_at > COALESCE(g.finished_at, c.created_at)) AS failed_since
FROM connection c
LEFT JOIN LATERAL (
    SELECT r.finished_at FROM sync_run r
    WHERE r.connection_id = c.id AND r.status IN ('succeeded', 'partial')
    ORDER BY r.queued_at DESC LIMIT 1
) g ON TRUE
WHERE c.status <> 'disconnected' AND c.created_at < :oldest
  AND (g.finished_at IS NULL OR g.finished_at < :oldest)
""")


def stale_connections(session: Session, now: datetime,
                      grace: timedelta) -> dict[tuple[str, GapCause], int]:
    """(provider, cause) → live connections with no successful run for longer than their
    sync period plus the grace (one statement over every account; run-level, not per check)."""
    oldest = now - PERIODS[Frequency.HOURLY] - grace
    found: Counter[tuple[str, GapCause]] = Counter()
    for r in session.execute(_STALE, {"oldest": oldest}):
        window = PERIODS[Frequency(r.sync_frequency)] + grace
        if r.last_good is not None and r.last_good >= now - window:
            continue
        kind = (GapCause.SYNC_FAILED if r.failed_since else
                GapCause.FIRST_SYNC_PENDING if r.last_good is None else GapCause.SCHEDULE_PAUSED)
        found[(r.integration_id, kind)] += 1
    return dict(found)


def current_audits(session: Session, today: date) -> list[Audit]:
    """Type II audits not complete whose period contains `today`."""
    return list(session.scalars(select(Audit).where(
        Audit.type == AuditType.TYPE_II, Audit.status != AuditStatus.COMPLETE,
        Audit.period_start <= today, Audit.period_end > today)))


def period_controls_uncovered(session: Session, now: datetime,
                              grace: timedelta) -> dict[tuple[str, GapCause], int]:
    """(framework, cause) → controls of audits in their period with no fresh result now."""
    found: Counter[tuple[str, GapCause]] = Counter()
    instant = Span(now - timedelta(microseconds=1), now)
    for audit in current_audits(session, now.astimezone(UTC).date()):
        answer = framework_period(session, audit.account_id, audit.framework_id, instant, grace,
                                  evidence=False)
        for control in answer.controls:
            # A control of an integration the account never connected is not an alert.
            if control.integrations and control.gaps and control.gaps[-1].causes:
                found[(answer.framework_id, control.gaps[-1].causes[0].kind)] += 1
    return dict(found)
