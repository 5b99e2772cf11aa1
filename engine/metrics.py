"""Prometheus metrics of the engine.

Counters and histograms live in the process that does the work (a worker exports them on its
own port, see workers/metrics.py); the state of the whole system (queue depth, due connections,
open runs) is read from Redis and Postgres when scraped, by the API's /metrics.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Connection, ConnectionStatus, RunStatus, SyncRun

RUNS_STARTED = Counter("evidence_sync_runs_started", "Sync runs a worker claimed and started.",
                       ["provider"])
RUNS_FINISHED = Counter("evidence_sync_runs_finished", "Sync runs that ended, by final status.",
                        ["provider", "status"])
RUN_DURATION = Histogram("evidence_sync_run_duration_seconds",
                         "Wall time of a sync run from claim to its final write.", ["provider"],
                         buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
EVIDENCE_ROWS = Counter("evidence_rows_written",
                        "Evidence rows inserted, changed or closed by sync runs.", ["provider"])
CHECKS_ERRORED = Counter("evidence_checks_errored",
                         "Checks that reported errors in a sync run.", ["provider"])
RUNS_DEFERRED = Counter("evidence_sync_runs_deferred",
                        "Deliveries put back because the account's provider slots were full.",
                        ["provider"])
RUNS_REAPED = Counter("evidence_sync_runs_reaped",
                      "Runs and parts the reaper re-queued (stale lease or lost message), "
                      "failed, or cancelled (parts left open under a finished run).",
                      ["action"])
RUNS_DISPATCHED = Counter("evidence_sync_runs_dispatched",
                          "Scheduled runs queued by dispatch ticks.")


def due_not_dispatched(session: Session, now: datetime) -> int:
    """Active connections whose slot has come but that no dispatch tick has claimed yet."""
    return session.scalar(select(func.count()).select_from(Connection).where(
        Connection.status == ConnectionStatus.ACTIVE, Connection.next_sync_at <= now)) or 0


def open_runs(session: Session) -> dict[RunStatus, int]:
    """How many runs are queued and running right now."""
    counts = dict(session.execute(
        select(SyncRun.status, func.count()).where(
            SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
        .group_by(SyncRun.status)).tuples().all())
    return {status: counts.get(status, 0) for status in (RunStatus.QUEUED, RunStatus.RUNNING)}
