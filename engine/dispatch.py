"""Scheduled syncs: claim due connections, advance their next slot, queue one run each.

One statement per batch: claim up to `limit` due connections (FOR UPDATE SKIP LOCKED, so
concurrent dispatchers split the rows instead of doubling them), move each to its next slot,
and insert one queued run per connection that has none open. Its cost grows with the number
of connections due, not with the number of connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session, sessionmaker

from engine.db import enqueue_after_commit
from engine.metrics import RUNS_DISPATCHED
from engine.models import Connection, ConnectionStatus, RunStatus, SyncRun, Trigger
from engine.schedule import next_due_sql
from engine.sync import OPEN_INDEX_WHERE, sync_job


@dataclass(frozen=True)
class Tick:
    """One dispatch batch: connections claimed (and advanced), runs queued for them."""

    claimed: int
    queued: list[str]


def dispatch_due(session: Session, now: datetime, limit: int = 1000) -> Tick:
    """Queue a run for up to `limit` due connections; concurrent dispatchers skip each other.

    A connection overdue by many periods gets one run and its next slot after `now`, so a
    dispatcher that was down catches up once, not once per missed period. A connection that
    already has a run open keeps it (the slot is still advanced).
    """
    due = (select(Connection.id)
           .where(Connection.status == ConnectionStatus.ACTIVE, Connection.next_sync_at <= now)
           .order_by(Connection.next_sync_at)
           .limit(limit)
           .with_for_update(skip_locked=True)
           .cte("due"))
    advanced = (update(Connection)
                .where(Connection.id == due.c.id)
                .values(next_sync_at=next_due_sql(Connection.id, Connection.sync_frequency, now))
                .returning(Connection.id, Connection.account_id)
                .cte("advanced"))
    new_run_id = literal("run-") + func.replace(cast(func.gen_random_uuid(), String), "-", "")
    runs = (insert(SyncRun)
            .from_select(["id", "account_id", "connection_id", "trigger", "status", "errors",
                          "enqueued_at"],
                         select(new_run_id, advanced.c.account_id, advanced.c.id,
                                literal(Trigger.SCHEDULED, SyncRun.trigger.type),
                                literal(RunStatus.QUEUED, SyncRun.status.type),
                                literal([], JSONB), func.now()))
            .on_conflict_do_nothing(index_elements=[SyncRun.connection_id],
                                    index_where=OPEN_INDEX_WHERE)
            .returning(SyncRun.id)
            .cte("runs"))
    claimed, run_ids = session.execute(select(
        select(func.count()).select_from(advanced).scalar_subquery(),
        select(func.array_agg(runs.c.id)).scalar_subquery())).one()
    queued = list(run_ids or [])
    for run_id in queued:
        enqueue_after_commit(session, sync_job(run_id))
    return Tick(claimed=int(claimed), queued=queued)


def dispatch_all_due(factory: sessionmaker[Session], now: datetime, batch: int = 1000) -> int:
    """Dispatch every connection due at `now`, one committed batch at a time; runs queued."""
    queued = 0
    while True:
        with factory() as session, session.begin():
            tick = dispatch_due(session, now, batch)
        queued += len(tick.queued)
        RUNS_DISPATCHED.inc(len(tick.queued))
        if tick.claimed < batch:
            return queued
