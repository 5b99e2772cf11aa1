"""Verifying a connection: prove its credentials with the provider in the background, then
activate it and request its first sync (or say why the provider refused them).

Above engine.connections (which enqueues the verify) and engine.sync (which it calls on
success); the task `connections.verify` runs it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import ConnectorError
from engine.credentials import open_connector
from engine.errors import NotFound
from engine.lease import Lease, TaskKind, TaskLease, claim_task, drop_task, end_task, worker_id
from engine.models import Connection, ConnectionStatus, Trigger
from engine.schedule import next_due
from engine.settings import Settings, get_settings
from engine.sync import request_sync

log = logging.getLogger(__name__)


def verify_connection(factory: sessionmaker[Session], connection_id: str,
                      settings: Settings | None = None, *,
                      worker: str | None = None) -> ConnectionStatus:
    """Prove a pending connection's credentials; on success activate it and request a sync.

    The verification is leased (engine/lease.py): a second delivery of the task finds the
    lease held and leaves, the provider call runs under a heartbeat, and the outcome is written
    only while the lease is still this worker's (a reconnect meanwhile takes it back, so an old
    verify never judges new credentials). A worker killed mid-call is replaced by the reaper.
    """
    settings = settings or get_settings()
    worker = worker or worker_id()
    with factory() as session, session.begin():
        conn = session.get(Connection, connection_id)
        if conn is None or conn.status != ConnectionStatus.PENDING:
            drop_task(session, TaskKind.VERIFY, connection_id)
            return conn.status if conn else ConnectionStatus.DISCONNECTED
        held = claim_task(session, TaskKind.VERIFY, connection_id, worker, settings)
        if held is None:  # another worker is verifying it right now
            return conn.status
    # Read transaction over: open_connector works on its own, and must not wait behind ours.
    with Lease(factory, held, worker, settings.heartbeat_seconds, TaskLease) as lease:
        metadata, message = _prove(conn, settings)
    with factory() as session, session.begin():
        if not lease.renew(session):
            log.info("verification of %s was taken over; its outcome is dropped", connection_id)
            return session.get_one(Connection, connection_id).status
        conn = session.get(Connection, connection_id, with_for_update=True)
        end_task(session, lease)
        if conn is None or conn.status != ConnectionStatus.PENDING:
            return conn.status if conn else ConnectionStatus.DISCONNECTED
        if metadata is None:
            conn.status, conn.status_message = ConnectionStatus.ERROR, message
            return conn.status
        now = datetime.now(UTC)
        conn.status, conn.status_message, conn.meta = ConnectionStatus.ACTIVE, None, metadata
        conn.next_sync_at = next_due(conn.id, conn.sync_frequency, now)
        request_sync(session, conn, Trigger.CONNECT)
        return conn.status


def _prove(conn: Connection, settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The connector's verify: its metadata, or None and why the credentials were refused."""
    try:
        return open_connector(conn, settings).verify(), None
    except ConnectorError as exc:
        return None, exc.message
    except NotFound as exc:  # its credentials were removed meanwhile
        return None, exc.message
    except DBAPIError:
        raise  # the database went away: the lease goes stale and the reaper sends it again
    except Exception as exc:  # noqa: BLE001 - a connector bug must not leave it pending forever
        log.exception("verifying connection %s crashed", conn.id)
        return None, f"verification failed: {exc.__class__.__name__}"


def give_up_verify(session: Session, connection_id: str, attempts: int) -> None:
    """The workers verifying the connection kept dying: say so on the connection (the reaper
    calls this after EVIDENCE_MAX_RUN_ATTEMPTS)."""
    conn = session.get(Connection, connection_id, with_for_update=True)
    if conn is not None and conn.status == ConnectionStatus.PENDING:
        conn.status = ConnectionStatus.ERROR
        conn.status_message = (
            f"checking the credentials with the provider did not finish: the worker doing it "
            f"stopped answering {attempts} times. Connect again to retry; if it keeps "
            f"happening, look at the worker's logs.")
