"""Scheduled syncs: claim due connections, advance their next slot, queue one run each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Connection, ConnectionStatus, Trigger
from engine.schedule import next_due
from engine.sync import request_sync


def dispatch_due(session: Session, now: datetime, limit: int = 1000) -> int:
    """Queue a run for each due connection; concurrent dispatchers skip each other's rows.

    A connection overdue by many periods gets one run and its next slot after `now`, so a
    dispatcher that was down catches up once, not once per missed period.
    """
    due = session.scalars(
        select(Connection)
        .where(Connection.status == ConnectionStatus.ACTIVE, Connection.next_sync_at <= now)
        .order_by(Connection.next_sync_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for conn in due:
        conn.next_sync_at = next_due(conn.id, conn.sync_frequency, now)
        request_sync(session, conn, Trigger.SCHEDULED)
    return len(due)
