"""Customer JWTs (PyJWT, HS256): minted for development, verified on every API request."""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from engine.errors import Unauthorized
from engine.settings import Settings

log = logging.getLogger(__name__)
ALGORITHM = "HS256"
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    if not ACCOUNT_ID.match(account_id):
        raise ValueError(f"account id {account_id!r} must match {ACCOUNT_ID.pattern}")
    now = datetime.now(UTC)
    claims = {"sub": subject, "account": account_id, "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "iat": now, "nbf": now,
              "exp": now + (ttl or timedelta(seconds=settings.jwt_ttl_seconds))}
    return jwt.encode(claims, jwt_secret(settings), algorithm=ALGORITHM)


def verify(settings: Settings, token: str) -> Principal:
    """Decode a bearer token; anything but a valid, current, well-addressed HS256 token is 401."""
    try:
        claims = jwt.decode(token, jwt_secret(settings), algorithms=[ALGORITHM],
                            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; mint a new one",
                           code="token_expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"the bearer token is not valid: {exc}", code="invalid_token") from None
    account = claims.get("account")
    if not isinstance(account, str) or not ACCOUNT_ID.match(account):
        raise Unauthorized("the token names no valid account", code="invalid_token")
    return Principal(account_id=account, subject=str(claims["sub"]))
