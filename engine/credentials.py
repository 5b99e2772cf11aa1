"""A connection's connector at work: credentials opened in memory, OAuth tokens refreshed
before they expire (under the connection row's lock), configuration parameters applied.

Used by the worker-side code (verification, sync runs); connecting and disconnecting live in
engine.connections, below this module, and OAuth (engine.oauth) between the two.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from connectors.base import Connector, ConnectorError
from engine.conditional_cache import PostgresConditionalCache
from engine.connections import connection_parameters
from engine.db import session_factory
from engine.endpoints import check_stored_endpoints, endpoint_policy
from engine.errors import NotFound
from engine.models import Connection
from engine.oauth import is_expiring, refresh_token
from engine.registry import get_connector
from engine.settings import Settings, get_settings
from engine.vault import vault

log = logging.getLogger(__name__)


def open_connector(conn: Connection, settings: Settings | None = None) -> Connector:
    """The connector for a connection: credentials decrypted in memory, OAuth tokens refreshed
    when they expire soon, configuration parameters applied, and the connection's stored
    answers to conditional requests at hand (engine.conditional_cache).

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
    return cls(credentials, config, endpoints=endpoint_policy(settings),
               conditional_cache=PostgresConditionalCache(session_factory(settings), conn.id))


def _fresh_oauth_credentials(own: Session, conn: Connection, raw: dict[str, Any],
                             settings: Settings) -> dict[str, Any]:
    """Refresh the access token if it expires within the leeway, holding the connection row's
    lock so two workers never spend the same refresh token."""
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
