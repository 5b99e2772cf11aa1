"""Bearer authentication: the account comes from the token, never from the request."""

from __future__ import annotations

from flask import current_app, g, request

from engine.errors import Unauthorized
from engine.settings import Settings
from engine.tokens import Principal, verify


def settings() -> Settings:
    value: Settings = current_app.config["SETTINGS"]
    return value


def authenticate() -> None:
    """Before every protected request: resolve the caller's account or answer 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send `Authorization: Bearer <token>`", code="missing_token")
    g.principal = verify(settings(), token.strip())


def principal() -> Principal:
    value: Principal = g.principal
    return value
