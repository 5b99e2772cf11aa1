"""Customer JWTs (PyJWT): HS256 with a shared secret by default, RS256 with a JWKS by config.

Every API request carries one; the account every query is scoped to comes from its claims
(EVIDENCE_JWT_ACCOUNT_CLAIM, default `account`). Only the configured algorithm is accepted, so
`alg: none` and algorithm-confusion tokens fail; so do expired, not-yet-valid, wrongly issued
or wrongly addressed ones. This server mints HS256 tokens for development; in RS256 mode an
identity provider mints them and publishes its keys at EVIDENCE_JWT_JWKS_URL.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt

from engine.errors import EngineError, Unauthorized
from engine.settings import Settings

log = logging.getLogger(__name__)
ALGORITHM = "HS256"
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LEEWAY_SECONDS = 5
"""Clock skew tolerated on exp / nbf / iat between this server and the token's issuer."""


class AuthUnavailable(EngineError):
    """The identity provider's keys cannot be fetched: not the caller's fault, retry later."""

    status = 503
    code = "auth_unavailable"


def jwt_secret(settings: Settings) -> str:
    """EVIDENCE_JWT_SECRET, else a secret generated once into the data folder (with a warning)."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = settings.data_dir / "jwt.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        log.warning("EVIDENCE_JWT_SECRET is not set: generated one at %s", path)
    return path.read_text().strip()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account every query of the request is scoped to."""

    account_id: str
    subject: str


def mint(settings: Settings, account_id: str, *, subject: str = "developer",
         ttl: timedelta | None = None) -> str:
    """An HS256 token for `account_id` (development and tests; RS256 tokens come from an IdP)."""
    if not ACCOUNT_ID.match(account_id):
        raise ValueError(f"account id {account_id!r} must match {ACCOUNT_ID.pattern}")
    now = datetime.now(UTC)
    claims = {"sub": subject, settings.jwt_account_claim: account_id,
              "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "iat": now, "nbf": now,
              "exp": now + (ttl or timedelta(seconds=settings.jwt_ttl_seconds))}
    return jwt.encode(claims, jwt_secret(settings), algorithm=ALGORITHM)


@lru_cache(maxsize=8)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def _verification_key(settings: Settings, token: str) -> Any:
    """The key that must have signed `token` under the configured algorithm."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("the bearer token is not a JWT", code="invalid_token") from None
    if header.get("alg") != settings.jwt_algorithm:
        raise Unauthorized(f"tokens must be signed with {settings.jwt_algorithm}, not "
                           f"{header.get('alg')!s:.20}", code="invalid_token")
    if settings.jwt_algorithm == "HS256":
        return jwt_secret(settings)
    if not settings.jwt_jwks_url:
        raise AuthUnavailable("EVIDENCE_JWT_ALGORITHM=RS256 needs EVIDENCE_JWT_JWKS_URL")
    try:
        return _jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError:
        log.warning("cannot fetch the JWKS at %s", settings.jwt_jwks_url)
        raise AuthUnavailable("the identity provider's signing keys cannot be fetched; "
                              "retry shortly") from None
    except jwt.PyJWTError:
        raise Unauthorized("no key of the identity provider matches this token's `kid`",
                           code="invalid_token") from None


def verify(settings: Settings, token: str) -> Principal:
    """Decode a bearer token; anything but a valid, current, well-addressed token is a 401."""
    key = _verification_key(settings, token)
    try:
        claims = jwt.decode(token, key, algorithms=[settings.jwt_algorithm],
                            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                            leeway=LEEWAY_SECONDS,
                            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; mint a new one",
                           code="token_expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("the token is not valid yet (nbf/iat in the future); check clocks",
                           code="token_not_yet_valid") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized(f"the token was not issued by {settings.jwt_issuer}",
                           code="invalid_token") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"the token is not addressed to {settings.jwt_audience}",
                           code="invalid_token") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the bearer token is not valid: {exc}", code="invalid_token") from None
    account = claims.get(settings.jwt_account_claim)
    if not isinstance(account, str) or not ACCOUNT_ID.match(account):
        raise Unauthorized(f"the token names no valid account (claim "
                           f"`{settings.jwt_account_claim}`)", code="invalid_token")
    return Principal(account_id=account, subject=str(claims["sub"]))
