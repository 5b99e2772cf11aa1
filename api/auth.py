"""Bearer authentication and the request's account-scoped unit of work.

The account comes from the token, never from the request; `account_session()` opens the one
session a view uses, scoped to that account (engine.tenancy), so no query of the request can
reach another account's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, g, request
from sqlalchemy.orm import Session

from engine.db import session_factory, unit_of_work
from engine.errors import Unauthorized
from engine.integrations import SessionOpener
from engine.settings import Settings
from engine.tenancy import scope_to_account, scoped_sessions
from engine.tokens import Principal, verify


def settings() -> Settings:
    value: Settings = current_app.config["SETTINGS"]
    return value


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send `Authorization: Bearer <token>`", code="missing_token")
    return token.strip()


def authenticate() -> None:
    """Before every protected request: resolve the caller's account or answer 401."""
    token = _bearer_token()
    if token is None:
        raise Unauthorized("send `Authorization: Bearer <token>`", code="missing_token")
    g.principal = verify(settings(), token)


def optional_principal() -> Principal | None:
    """The caller when a bearer token is sent (a bad one is still a 401), else None."""
    token = _bearer_token()
    return verify(settings(), token) if token is not None else None


def principal() -> Principal:
    value: Principal = g.principal
    return value


@contextmanager
def account_session(account_id: str | None = None) -> Iterator[Session]:
    """The request's unit of work, scoped to the caller's account (or to `account_id`)."""
    with unit_of_work(settings()) as session:
        scope_to_account(session, account_id or principal().account_id)
        yield session


def account_sessions(account_id: str | None = None) -> SessionOpener:
    """Opens further scoped sessions (for polling a run or a connection)."""
    return scoped_sessions(session_factory(settings()), account_id or principal().account_id)
