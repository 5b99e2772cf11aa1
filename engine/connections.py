"""Connecting an account to a provider: validate, seal the credentials, verify in the background.

Functions that take a session scoped to an account (engine.tenancy) act for that account;
the worker-side ones (`open_connector`, `verify_connection`) work by connection id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from connectors.base import Connector, ConnectorError
from engine.db import enqueue_after_commit, rowcount, session_factory
from engine.endpoints import (
    check_config_endpoints,
    check_endpoint_policy,
    check_stored_endpoints,
    endpoint_policy,
)
from engine.errors import Conflict, InvalidInput, NotFound
from engine.lease import (
    Lease,
    TaskKind,
    TaskLease,
    claim_task,
    drop_task,
    end_task,
    queue_task,
    task_job,
    worker_id,
)
from engine.models import (
    Account,
    Connection,
    ConnectionStatus,
    Evidence,
    Frequency,
    RunStatus,
    SyncRun,
    Trigger,
)
from engine.models.integrations import ConfigParameter
from engine.registry import get_connector
from engine.schedule import next_due
from engine.settings import Settings, get_settings
from engine.tenancy import account_of
from engine.vault import Vault, vault

log = logging.getLogger(__name__)


def ensure_account(session: Session, account_id: str) -> None:
    """Accounts come from tokens; the first request of an account creates its row."""
    session.execute(insert(Account).values(id=account_id).on_conflict_do_nothing())


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
        conn = Connection(account_id=account_id, integration_id=cls.id)
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


def open_connector(conn: Connection, settings: Settings | None = None) -> Connector:
    """The connector for a connection: credentials decrypted in memory, OAuth tokens refreshed
    when they expire soon, configuration parameters applied.

    Works on its own short transaction, so it behaves the same whatever the caller's session
    does: a refreshed token is committed at once (a rotated refresh token is never lost).
    """
    if conn.credentials_encrypted is None:
        raise NotFound(f"connection {conn.id} has no credentials", code="not_connected")
    settings = settings or get_settings()
    cls = get_connector(conn.integration_id)
    sealer = vault(settings)
    raw = sealer.open(conn.credentials_encrypted)
    with session_factory(settings)() as own, own.begin():
        if cls.oauth is not None:
            raw = _fresh_oauth_credentials(own, conn, raw, settings)
        config = {**conn.config, **connection_parameters(own, conn.id, sealer)}
    credentials = cls.parse_credentials(raw)
    check_stored_endpoints(cls, credentials, config, settings)
    return cls(credentials, config, endpoints=endpoint_policy(settings))


def _fresh_oauth_credentials(own: Session, conn: Connection, raw: dict[str, Any],
                             settings: Settings) -> dict[str, Any]:
    """Refresh the access token if it expires within the leeway, holding the connection row's
    lock so two workers never spend the same refresh token."""
    from engine.oauth import is_expiring, refresh_token  # oauth stores through connections

    if not is_expiring(raw, settings):
        return raw
    sealer = vault(settings)
    row = own.get(Connection, conn.id, with_for_update=True)
    if row is None or row.credentials_encrypted is None:
        return raw
    current = sealer.open(row.credentials_encrypted)
    if is_expiring(current, settings):  # else another worker refreshed it meanwhile
        try:
            current = refresh_token(conn.integration_id, current, settings)
        except ConnectorError as exc:
            log.warning("refreshing the OAuth token of connection %s failed: %s", conn.id,
                        exc.message)
            return current  # the provider will refuse it: the run fails with that reason
        row.credentials_encrypted = sealer.seal(current)
    if row is not conn:
        set_committed_value(conn, "credentials_encrypted", row.credentials_encrypted)
    return current


def verify_connection(factory: sessionmaker[Session], connection_id: str,
                      settings: Settings | None = None, *,
                      worker: str | None = None) -> ConnectionStatus:
    """Prove a pending connection's credentials; on success activate it and request a sync.

    The verification is leased (engine/lease.py): a second delivery of the task finds the
    lease held and leaves, the provider call runs under a heartbeat, and the outcome is written
    only while the lease is still this worker's (a reconnect meanwhile takes it back, so an old
    verify never judges new credentials). A worker killed mid-call is replaced by the reaper.
    """
    from engine.sync import request_sync  # sync builds on connections; import at use

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
