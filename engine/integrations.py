"""What the integrations API reads: the catalog, evidence, control results, status and runs.

Every function takes a session scoped to the caller's account (engine.tenancy), so none of
them filters by account itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, load_only

from connectors.base import Category, Connector
from engine.connections import (
    latest_connection,
    latest_connection_id,
    live_connection,
    require_connection,
)
from engine.controls import ControlCount, count_controls
from engine.errors import Conflict, NotFound
from engine.frameworks import Control, catalog
from engine.models import (
    CheckState,
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
from engine.tenancy import account_of

SessionOpener = Callable[[], Session]


@dataclass(frozen=True)
class CatalogEntry:
    connector: type[Connector]
    connection: Connection | None
    evidence_count: int


def list_integrations(session: Session, category: Category | None = None) -> list[CatalogEntry]:
    """Every registered integration with this account's connection state."""
    # One statement: the live connections (only what the list shows) with their evidence
    # counts from the per-check result-set rows (see current_evidence_counts).
    count = (select(func.coalesce(func.sum(CheckState.resource_count), 0))
             .where(CheckState.connection_id == Connection.id).scalar_subquery())
    live = {conn.integration_id: (conn, int(total)) for conn, total in session.execute(
        select(Connection, count)
        .options(load_only(Connection.integration_id, Connection.status,
                           Connection.last_sync_at))
        .where(Connection.status != ConnectionStatus.DISCONNECTED)).tuples()}
    return [CatalogEntry(cls, *live.get(cls.id, (None, 0)))
            for cls in connectors().values() if category is None or cls.category == category]


def current_evidence_counts(session: Session, connection_ids: list[str],
                            check_id: str | None = None) -> dict[str, int]:
    """Current evidence per connection, from the per-check result-set rows (O(checks)).

    `check_state.resource_count` is the size of each check's current result set, which is
    exactly its open evidence rows, so no evidence row is read.
    """
    if not connection_ids:
        return {}
    stmt = (select(CheckState.connection_id, func.sum(CheckState.resource_count))
            .where(CheckState.connection_id.in_(connection_ids))
            .group_by(CheckState.connection_id))
    if check_id is not None:
        stmt = stmt.where(CheckState.check_id.in_(catalog().resolve_check(check_id)))
    return {conn: int(total or 0) for conn, total in session.execute(stmt).tuples()}


@dataclass(frozen=True)
class EvidencePage:
    items: list[tuple[Evidence, tuple[Control, ...]]]
    total: int


def list_evidence(session: Session, integration_id: str, *, limit: int, offset: int,
                  status: EvidenceStatus | None = None,
                  check_id: str | None = None) -> EvidencePage:
    """The current evidence of the integration's connection (a disconnected one's is history).

    `check_id` may name a check another replaced (`replaces=`): the filter then answers the old
    id's current rows and those of the checks that replace it."""
    conn_id = latest_connection_id(session, integration_id)
    where = [Evidence.connection_id == conn_id, Evidence.closed_at.is_(None)]
    if status is not None:
        where.append(Evidence.status == status)
    if check_id is not None:
        where.append(Evidence.check_id.in_(catalog().resolve_check(check_id)))
    if status is None:
        total = current_evidence_counts(session, [conn_id], check_id).get(conn_id, 0)
    else:
        total = session.scalar(select(func.count()).select_from(Evidence).where(*where)) or 0
    # The page's ids first, read index-only from a partial index however deep the offset,
    # then only those rows (a plain OFFSET would read every skipped row from the table).
    page = (select(Evidence.id, Evidence.check_id, Evidence.resource_id).where(*where)
            .order_by(Evidence.check_id, Evidence.resource_id)
            .limit(limit).offset(offset).subquery())
    rows = session.scalars(select(Evidence).join(page, page.c.id == Evidence.id)
                           .order_by(page.c.check_id, page.c.resource_id)).all()
    cat = catalog()
    return EvidencePage([(row, cat.controls_for(row.check_id)) for row in rows], total)


def connection_controls(session: Session,
                        integration_id: str) -> tuple[bool, list[ControlCount]]:
    """The controls this integration's checks serve, with results from its current evidence."""
    cls = get_connector(integration_id)
    conn = live_connection(session, integration_id)
    check_ids = {c.id for c in cls.checks}
    counts = count_controls(session, account_of(session),
                            connection_id=conn.id if conn else "", check_ids=check_ids)
    return conn is not None, counts


def sync_integration(session: Session, integration_id: str) -> tuple[SyncRun, bool]:
    """Request a manual sync; a run already queued or running is returned instead."""
    conn = require_connection(session, integration_id)
    if conn.status == ConnectionStatus.PENDING:
        raise Conflict(f"{integration_id} is still being verified; sync once it is active",
                       code="connection_pending")
    return request_sync(session, conn, Trigger.MANUAL)


def needs_fresh_sync(session: Session, conn: Connection) -> bool:
    """A parameter changed after the last run that succeeded started (the seed's needsRestart)."""
    if conn.config_changed_at is None:
        return False
    synced = session.scalar(select(exists().where(
        SyncRun.connection_id == conn.id, SyncRun.started_at >= conn.config_changed_at,
        SyncRun.status.in_((RunStatus.SUCCEEDED, RunStatus.PARTIAL)))))
    return not synced


@dataclass(frozen=True)
class ConnectionState:
    connection: Connection
    needs_restart: bool
    history: list[SyncRun]


def connection_status(session: Session, integration_id: str,
                      history_limit: int) -> ConnectionState:
    """The integration's connection (live, else the last one) with its latest runs."""
    conn = latest_connection(session, integration_id)
    runs = session.scalars(select(SyncRun).where(SyncRun.connection_id == conn.id)
                           .order_by(SyncRun.queued_at.desc(), SyncRun.id)
                           .limit(history_limit)).all()
    return ConnectionState(conn, needs_fresh_sync(session, conn), list(runs))


def get_run(session: Session, run_id: str) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}", code="run_not_found")
    return run


def _poll(timeout: float, settled: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not settled() and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)


def wait_for_run(open_session: SessionOpener, run_id: str, timeout: float) -> SyncRun:
    """Poll the run until it finishes or `timeout` seconds pass; return its latest state."""
    latest: list[SyncRun] = []

    def settled() -> bool:
        with open_session() as session:
            latest[:] = [get_run(session, run_id)]
        return latest[0].status.is_finished

    _poll(timeout, settled)
    return latest[0]


def wait_for_connection(open_session: SessionOpener, connection_id: str,
                        timeout: float) -> Connection:
    """Poll a connection until verification settles or `timeout` seconds pass."""
    latest: list[Connection] = []

    def settled() -> bool:
        with open_session() as session:
            conn = session.get(Connection, connection_id)
        if conn is None:
            raise NotFound(f"no connection {connection_id}", code="not_connected")
        latest[:] = [conn]
        return conn.status != ConnectionStatus.PENDING

    _poll(timeout, settled)
    return latest[0]


def is_settled(run: SyncRun) -> bool:
    return RunStatus(run.status).is_finished


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None
