"""What the integrations API reads: the catalog, evidence, control results and runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from engine.connections import live_connection, require_connection
from engine.controls import ControlCount, count_controls
from engine.errors import Conflict, NotFound
from engine.frameworks import Control, catalog
from engine.models import (
    Connection,
    ConnectionStatus,
    Evidence,
    EvidenceStatus,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.registry import connectors, get_connector
from engine.sync import request_sync


@dataclass(frozen=True)
class CatalogEntry:
    connector: type[Connector]
    connection: Connection | None
    evidence_count: int


def list_integrations(session: Session, account_id: str,
                      category: str | None = None) -> list[CatalogEntry]:
    """Every registered integration with this account's connection state."""
    live = {c.integration_id: c for c in session.scalars(select(Connection).where(
        Connection.account_id == account_id,
        Connection.status != ConnectionStatus.DISCONNECTED))}
    counts = dict(session.execute(
        select(Evidence.connection_id, func.count())
        .where(Evidence.account_id == account_id, Evidence.closed_at.is_(None))
        .group_by(Evidence.connection_id)).tuples().all())
    entries = []
    for cls in connectors().values():
        if category is not None and cls.category != category:
            continue
        conn = live.get(cls.id)
        entries.append(CatalogEntry(cls, conn, counts.get(conn.id, 0) if conn else 0))
    return entries


@dataclass(frozen=True)
class EvidencePage:
    items: list[tuple[Evidence, tuple[Control, ...]]]
    total: int


def list_evidence(session: Session, account_id: str, integration_id: str, *, limit: int,
                  offset: int, status: EvidenceStatus | None = None,
                  check_id: str | None = None) -> EvidencePage:
    """The current evidence of one connection, newest change first."""
    conn = require_connection(session, account_id, integration_id)
    where = [Evidence.account_id == account_id, Evidence.connection_id == conn.id,
             Evidence.closed_at.is_(None)]
    if status is not None:
        where.append(Evidence.status == status)
    if check_id is not None:
        where.append(Evidence.check_id == check_id)
    total = session.scalar(select(func.count()).select_from(Evidence).where(*where)) or 0
    rows = session.scalars(select(Evidence).where(*where)
                           .order_by(Evidence.check_id, Evidence.resource_id)
                           .limit(limit).offset(offset)).all()
    cat = catalog()
    return EvidencePage([(row, cat.controls_for(row.check_id)) for row in rows], total)


def connection_controls(session: Session, account_id: str,
                        integration_id: str) -> tuple[bool, list[ControlCount]]:
    """The controls this integration's checks serve, with results from its current evidence."""
    cls = get_connector(integration_id)
    conn = live_connection(session, account_id, integration_id)
    check_ids = {c.id for c in cls.checks}
    counts = count_controls(session, account_id, connection_id=conn.id if conn else "",
                            check_ids=check_ids)
    return conn is not None, counts


def sync_integration(session: Session, account_id: str,
                     integration_id: str) -> tuple[SyncRun, bool]:
    """Request a manual sync; a run already queued or running is returned instead."""
    conn = require_connection(session, account_id, integration_id)
    if conn.status == ConnectionStatus.PENDING:
        raise Conflict(f"{integration_id} is still being verified; sync once it is active",
                       code="connection_pending")
    return request_sync(session, conn, Trigger.MANUAL)


def get_run(session: Session, account_id: str, run_id: str) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is None or run.account_id != account_id:
        raise NotFound(f"no sync run {run_id}", code="run_not_found")
    return run


def wait_for_run(factory: sessionmaker[Session], account_id: str, run_id: str,
                 timeout: float) -> SyncRun:
    """Poll the run until it finishes or `timeout` seconds pass; return its latest state."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        with factory() as session:
            run = get_run(session, account_id, run_id)
        if run.status.is_finished or time.monotonic() >= deadline:
            return run
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


def wait_for_connection(factory: sessionmaker[Session], account_id: str, connection_id: str,
                        timeout: float) -> Connection:
    """Poll a connection until verification settles or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        with factory() as session:
            conn = session.get(Connection, connection_id)
        if conn is None or conn.account_id != account_id:
            raise NotFound(f"no connection {connection_id}", code="not_connected")
        if conn.status != ConnectionStatus.PENDING or time.monotonic() >= deadline:
            return conn
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


def latest_run(session: Session, connection_id: str,
               trigger: Trigger | None = None) -> SyncRun | None:
    stmt = select(SyncRun).where(SyncRun.connection_id == connection_id)
    if trigger is not None:
        stmt = stmt.where(SyncRun.trigger == trigger)
    return session.scalars(stmt.order_by(SyncRun.queued_at.desc()).limit(1)).first()


def is_settled(run: SyncRun) -> bool:
    return RunStatus(run.status).is_finished


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None
