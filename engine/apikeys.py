"""Customer-managed API keys: `sk-` + a high-entropy secret, shown once, stored as a SHA-256.

A key is looked up on every request (no cache), so a revoked key stops working at once.
Scopes say what a key may do; the account's own JWT may do everything its account may.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from engine.accounts import ensure_account
from engine.errors import Forbidden, NotFound, Unauthorized
from engine.models.push import ApiKey, Scope

KEY_PREFIX = "sk-"
SHOWN_PREFIX = 11
"""How much of a key listings show (`sk-` and 8 characters), enough to tell keys apart."""
LAST_USED_RESOLUTION = timedelta(seconds=60)

__all__ = ["KEY_PREFIX", "Caller", "Scope", "authenticate_key", "create_key", "grants",
           "hash_key", "list_keys", "require_scope", "revoke_key"]


def hash_key(key: str) -> str:
    """SHA-256 of the whole key: enough for a 256-bit random secret (no salt or KDF needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def grants(scopes: Iterable[str], needed: Scope) -> bool:
    """Whether `scopes` include `needed`, directly or through `read:*` / `write:*`."""
    have = set(scopes)
    action = needed.value.split(":", 1)[0]
    return needed.value in have or f"{action}:*" in have


@dataclass(frozen=True)
class Caller:
    """Who is calling: an account's JWT (every scope) or one of its API keys (its scopes)."""

    account_id: str
    subject: str
    key_id: str | None = None
    scopes: tuple[str, ...] = tuple(s.value for s in Scope)


def require_scope(caller: Caller, needed: Scope) -> None:
    if not grants(caller.scopes, needed):
        raise Forbidden(f"missing required scope {needed.value}", code="missing_scope",
                        required_scope=needed.value, scopes=list(caller.scopes))


def create_key(session: Session, account_id: str, *, name: str, scopes: Iterable[Scope],
               created_by: str, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for the account; the secret is returned here once and never stored."""
    ensure_account(session, account_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(account_id=account_id, name=name, prefix=secret[:SHOWN_PREFIX],
                 key_hash=hash_key(secret), scopes=sorted({Scope(s).value for s in scopes}),
                 created_by=created_by, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, secret


def list_keys(session: Session, account_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.account_id == account_id)
                                .order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, account_id: str, key_id: str, now: datetime) -> ApiKey:
    """Revoke a key of the account (again is harmless: the first revocation time stands)."""
    row = session.scalars(select(ApiKey).where(ApiKey.id == key_id,
                                               ApiKey.account_id == account_id)
                          .with_for_update()).first()
    if row is None:
        raise NotFound(f"no API key {key_id} in this organization", code="key_not_found")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def authenticate_key(session: Session, presented: str, now: datetime) -> Caller:
    """The caller a presented `sk-…` key stands for; unknown, revoked or expired keys are 401."""
    digest = hash_key(presented)
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthorized("the API key is not valid", code="invalid_api_key")
    if row.revoked_at is not None:
        raise Unauthorized("the API key has been revoked; create a new one",
                           code="api_key_revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("the API key has expired; create a new one", code="api_key_expired")
    session.execute(update(ApiKey).where(
        ApiKey.id == row.id, or_(ApiKey.last_used_at.is_(None),
                                 ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now))
    return Caller(account_id=row.account_id, subject=f"api-key:{row.id}", key_id=row.id,
                  scopes=tuple(row.scopes))
