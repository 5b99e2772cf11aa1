"""Connecting an account to a provider: validate, seal the credentials, verify in the background.

Functions that take a session scoped to an account (engine.tenancy) act for that account. The
worker-side ones, which work by connection id, sit above this module: `open_connector` in
engine.credentials, `verify_connection` in engine.verification.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import Connector
from engine.accounts import ensure_account
from engine.conditional_cache import forget_conditional_cache
from engine.db import enqueue_after_commit, rowcount
from engine.endpoints import (
    check_config_endpoints,
    check_endpoint_policy,
)
from engine.errors import Conflict, InvalidInput, NotFound
from engine.lease import (
    TaskKind,
    queue_task,
    task_job,
)
from engine.models import (
    Connection,
    ConnectionStatus,
    Evidence,
    Frequency,
    RunStatus,
    SyncRun,
)
from engine.models.integrations import ConfigParameter
from engine.registry import get_connector
from engine.settings import Settings, get_settings
from engine.tenancy import account_of
from engine.vault import Vault, vault

log = logging.getLogger(__name__)


def live_connection(session: Session, integration_id: str,
                    *, for_update: bool = False) -> Connection | None:
    """The scoped account's connection to an integration that is not disconnected, if any."""
    account_of(session)
    stmt = select(Connection).where(Connection.integration_id == integration_id,
                                    Connection.status != ConnectionStatus.DISCONNECTED)
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def not_connected(integration_id: str) -> NotFound:
    return NotFound(f"{integration_id} is not connected; POST "
                    f"/api/v1/integrations/{integration_id}/connect first", code="not_connected")


def require_connection(session: Session, integration_id: str) -> Connection:
    get_connector(integration_id)
    conn = live_connection(session, integration_id)
    if conn is None:
        raise not_connected(integration_id)
    return conn


def latest_connection(session: Session, integration_id: str) -> Connection:
    """The live connection, else the most recently disconnected one (its history stays)."""
    conn = session.scalars(_latest(session, select(Connection), integration_id)).first()
    if conn is None:
        raise not_connected(integration_id)
    return conn


def latest_connection_id(session: Session, integration_id: str) -> str:
    """`latest_connection`'s id alone (a page of evidence needs no more)."""
    conn_id = session.scalar(_latest(session, select(Connection.id), integration_id))
    if conn_id is None:
        raise not_connected(integration_id)
    return conn_id


def _latest(session: Session, stmt: Select[Any], integration_id: str) -> Select[Any]:
    get_connector(integration_id)
    account_of(session)
    return (stmt.where(Connection.integration_id == integration_id)
            .order_by((Connection.status == ConnectionStatus.DISCONNECTED).asc(),
                      Connection.created_at.desc()).limit(1))


def connect(session: Session, *, integration_id: str, credentials: Mapping[str, Any],
            frequency: Frequency, settings: Settings | None = None,
            config: Mapping[str, Any] | None = None) -> Connection:
    """Validate credentials, store them sealed, and enqueue verification (then a first sync).

    Connecting an integration that is already connected replaces its credentials.
    """
    settings = settings or get_settings()
    cls = get_connector(integration_id)
    parsed = cls.parse_credentials(credentials)
    check_endpoint_policy(cls.credentials_model, dict(parsed), settings)
    # A configuration given at connect replaces the stored one (parameters saved through
    # /integration-confs still override it); validated before anything is written.
    given = _connect_config(cls, config) if config is not None else None
    if given is not None:
        check_config_endpoints(cls, given, settings)
    conn = store_credentials(session, cls, parsed, frequency, settings)
    if given is not None:
        conn.config = given
    return conn


def _connect_config(cls: type[Connector], config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration given at connect, validated (422 invalid_config). It is stored as plain
    JSON, so secret parameters are refused here: /api/v1/integration-confs seals them."""
    secret = sorted(p.name for p in cls.config_params if p.secret and p.name in config)
    if secret:
        raise InvalidInput(f"{', '.join(secret)}: secret parameters are set through "
                           "/api/v1/integration-confs, which stores them encrypted",
                           code="invalid_config",
                           fields=[{"field": name, "message": "secret: not accepted at connect"}
                                   for name in secret])
    return cls.parse_config(config)


def store_credentials(session: Session, cls: type[Connector], credentials: BaseModel,
                      frequency: Frequency, settings: Settings) -> Connection:
    """Seal validated credentials onto the account's live connection and enqueue its verify."""
    account_id = account_of(session)
    ensure_account(session, account_id)
    sealed = vault(settings).seal(cls.dump_credentials(credentials))
    conn = live_connection(session, cls.id, for_update=True)
    if conn is None:
        # Dated by the application's clock, as its runs and disconnection are (the period of
        # an audit measures coverage from it), not by the database's now().
        conn = Connection(account_id=account_id, integration_id=cls.id,
                          created_at=datetime.now(UTC))
        session.add(conn)
    conn.credentials_encrypted = sealed
    conn.sync_frequency = frequency
    conn.status = ConnectionStatus.PENDING
    conn.status_message = "verifying credentials with the provider"
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"{cls.id} is being connected by another request; retry",
                       code="connect_in_progress") from None
    queue_task(session, TaskKind.VERIFY, conn.id)  # a verify still running loses its lease
    enqueue_after_commit(session, task_job(TaskKind.VERIFY, conn.id))
    return conn


@dataclass(frozen=True)
class Disconnected:
    connection_id: str
    cancelled_runs: int
    running_runs: int
    evidence_kept: int
    credentials: dict[str, Any] | None
    """The removed credentials, in memory only, so OAuth tokens can be revoked afterwards."""


def disconnect(session: Session, integration_id: str, now: datetime,
               settings: Settings | None = None) -> Disconnected:
    """Remove the stored credentials and parameters, cancel queued runs, keep the evidence."""
    get_connector(integration_id)
    conn = live_connection(session, integration_id, for_update=True)
    if conn is None:
        raise not_connected(integration_id)
    credentials = (vault(settings).open(conn.credentials_encrypted)
                   if conn.credentials_encrypted is not None else None)
    cancelled = rowcount(session.execute(
        update(SyncRun).where(SyncRun.connection_id == conn.id,
                              SyncRun.status == RunStatus.QUEUED)
        .values(status=RunStatus.CANCELLED, finished_at=now)))
    running = session.scalar(select(func.count()).select_from(SyncRun).where(
        SyncRun.connection_id == conn.id, SyncRun.status == RunStatus.RUNNING)) or 0
    session.execute(delete(ConfigParameter).where(ConfigParameter.connection_id == conn.id))
    forget_conditional_cache(session, conn.id)
    kept = session.scalar(select(func.count()).select_from(Evidence).where(
        Evidence.connection_id == conn.id, Evidence.closed_at.is_(None))) or 0
    conn.status, conn.status_message = ConnectionStatus.DISCONNECTED, "disconnected by the account"
    conn.credentials_encrypted, conn.next_sync_at, conn.disconnected_at = None, None, now
    return Disconnected(conn.id, cancelled, running, kept, credentials)


def connection_parameters(session: Session, connection_id: str,
                          sealer: Vault) -> dict[str, str]:
    """A connection's configuration parameters by name, secrets decrypted (in memory only)."""
    params = session.scalars(select(ConfigParameter).where(
        ConfigParameter.connection_id == connection_id)).all()
    return {p.name: (sealer.open(p.value_encrypted)["value"] if p.value_encrypted is not None
                     else p.value or "") for p in params}
