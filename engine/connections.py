"""Connecting an account to a provider: validate, seal the credentials, verify in the background."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector, ConnectorError
from engine.db import Job, enqueue_after_commit
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Account, Connection, ConnectionStatus, Frequency, Trigger
from engine.registry import get_connector
from engine.schedule import next_due
from engine.settings import Settings, get_settings
from engine.vault import vault


def ensure_account(session: Session, account_id: str) -> None:
    """Accounts come from tokens; the first request of an account creates its row."""
    session.execute(insert(Account).values(id=account_id).on_conflict_do_nothing())


def live_connection(session: Session, account_id: str, integration_id: str,
                    *, for_update: bool = False) -> Connection | None:
    """The account's connection to an integration that is not disconnected, if any."""
    stmt = select(Connection).where(Connection.account_id == account_id,
                                    Connection.integration_id == integration_id,
                                    Connection.status != ConnectionStatus.DISCONNECTED)
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def require_connection(session: Session, account_id: str, integration_id: str) -> Connection:
    get_connector(integration_id)
    conn = live_connection(session, account_id, integration_id)
    if conn is None:
        raise NotFound(f"{integration_id} is not connected; POST "
                       f"/api/v1/integrations/{integration_id}/connect first",
                       code="not_connected")
    return conn


def _check_endpoint_policy(credentials: BaseModel, settings: Settings) -> None:
    if getattr(credentials, "endpoint_url", None) and not settings.allow_custom_endpoints:
        raise InvalidInput("credentials.endpoint_url is only accepted when the server sets "
                           "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=true",
                           code="invalid_credentials",
                           fields=[{"field": "endpoint_url", "message": "not allowed here"}])


def connect(session: Session, *, account_id: str, integration_id: str,
            credentials: Mapping[str, Any], frequency: Frequency,
            settings: Settings | None = None) -> Connection:
    """Store validated, sealed credentials and enqueue verification (then a first sync).

    Connecting an integration that is already connected replaces its credentials.
    """
    settings = settings or get_settings()
    cls = get_connector(integration_id)
    parsed = cls.parse_credentials(credentials)
    _check_endpoint_policy(parsed, settings)
    ensure_account(session, account_id)
    sealed = vault(settings).seal(cls.dump_credentials(parsed))
    conn = live_connection(session, account_id, integration_id, for_update=True)
    if conn is None:
        conn = Connection(account_id=account_id, integration_id=integration_id)
        session.add(conn)
    conn.credentials_encrypted = sealed
    conn.sync_frequency = frequency
    conn.status = ConnectionStatus.PENDING
    conn.status_message = "verifying credentials with the provider"
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"{integration_id} is being connected by another request; retry",
                       code="connect_in_progress") from None
    enqueue_after_commit(session, Job("connections.verify", (conn.id,), queue="sync"))
    return conn


def open_connector(conn: Connection, settings: Settings | None = None) -> Connector:
    """The connector instance for a connection, with its credentials decrypted in memory."""
    if conn.credentials_encrypted is None:
        raise NotFound(f"connection {conn.id} has no credentials", code="not_connected")
    cls = get_connector(conn.integration_id)
    raw = vault(settings).open(conn.credentials_encrypted)
    return cls(cls.parse_credentials(raw), conn.config)


def verify_connection(factory: sessionmaker[Session], connection_id: str,
                      settings: Settings | None = None) -> ConnectionStatus:
    """Prove a pending connection's credentials; on success activate it and request a sync."""
    from engine.sync import request_sync  # sync builds on connections; import at use

    with factory() as session:
        conn = session.get(Connection, connection_id)
        if conn is None or conn.status != ConnectionStatus.PENDING:
            return conn.status if conn else ConnectionStatus.DISCONNECTED
        connector = open_connector(conn, settings)
    try:
        metadata: dict[str, Any] | None = connector.verify()
        message = None
    except ConnectorError as exc:
        metadata, message = None, exc.message
    with factory() as session, session.begin():
        conn = session.get(Connection, connection_id, with_for_update=True)
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
