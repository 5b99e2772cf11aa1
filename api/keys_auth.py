"""Who is calling an organization's endpoints: an API key `sk-…` or the account's JWT.

Both ride on `Authorization: Bearer`. A key is looked up on every request (no cache), so a
revoked key is refused at once. The `org_id` in the path must be the caller's own account.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g, request

from api.auth import settings
from engine.apikeys import KEY_PREFIX, Caller, authenticate_key
from engine.db import unit_of_work
from engine.errors import Forbidden, Unauthorized
from engine.tokens import verify


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send `Authorization: Bearer <API key or token>`",
                           code="missing_token")
    return token.strip()


def _check_org(caller: Caller) -> None:
    org_id = (request.view_args or {}).get("org_id")
    if org_id is not None and org_id != caller.account_id:
        raise Forbidden("not a member of this organization", code="not_a_member",
                        org_id=str(org_id)[:64])


def authenticate_caller() -> Caller:
    """Accept an API key or a JWT; the caller is kept in `g` for the view."""
    token = _bearer()
    if token.startswith(KEY_PREFIX):
        with unit_of_work(settings()) as session:
            caller = authenticate_key(session, token, datetime.now(UTC))
    else:
        principal = verify(settings(), token)
        caller = Caller(account_id=principal.account_id, subject=principal.subject)
    _check_org(caller)
    g.caller = caller
    return caller


def authenticate_account_token() -> Caller:
    """Accept only the account's JWT: an API key may not manage API keys."""
    token = _bearer()
    if token.startswith(KEY_PREFIX):
        raise Forbidden("API keys cannot manage API keys; use an account token",
                        code="account_token_required")
    principal = verify(settings(), token)
    caller = Caller(account_id=principal.account_id, subject=principal.subject)
    _check_org(caller)
    g.caller = caller
    return caller


def caller() -> Caller:
    value: Caller = g.caller
    return value
