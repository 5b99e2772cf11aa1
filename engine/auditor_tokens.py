"""Auditor credentials: single-use magic-link tokens (stored as SHA-256 only) and the auditor
JWT they are exchanged for.

The auditor JWT is scoped to one audit and cannot pass as a customer token, nor the other way
round: it is signed with a key derived from the JWT secret for auditors only, carries its own
audience (`<audience>:auditor`) and `typ: auditor`, and names no `account` claim.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.errors import Unauthorized
from engine.models.audit import Audit, AuditorInvitation
from engine.settings import Settings
from engine.tokens import jwt_secret

ALGORITHM = "HS256"
AUDITOR_TYP = "auditor"


def new_link_token() -> tuple[str, str]:
    """A fresh magic-link token and the SHA-256 that is all the database keeps of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_link_token(token)


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def redeem_link_token(session: Session, token: str, now: datetime) -> AuditorInvitation:
    """Accept an invitation by its magic-link token, once: a used, revoked or expired link is
    refused with 401 and a code that says which."""
    digest = hash_link_token(token)
    accepted = session.scalars(
        update(AuditorInvitation)
        .where(AuditorInvitation.token_hash == digest, AuditorInvitation.accepted_at.is_(None),
               AuditorInvitation.revoked_at.is_(None), AuditorInvitation.expires_at > now)
        .values(accepted_at=now).returning(AuditorInvitation)).first()
    if accepted is not None:
        return accepted
    found = session.scalars(select(AuditorInvitation)
                            .where(AuditorInvitation.token_hash == digest)).first()
    if found is None:
        raise Unauthorized("this invitation link is not valid", code="invitation_invalid")
    if found.accepted_at is not None:
        raise Unauthorized("this invitation link has already been used; ask for a new "
                           "invitation", code="invitation_used")
    if found.revoked_at is not None:
        raise Unauthorized("this invitation was replaced by a newer one; use the link in the "
                           "latest mail", code="invitation_revoked")
    raise Unauthorized("this invitation link has expired; ask for a new invitation",
                       code="invitation_expired")


def _signing_key(settings: Settings) -> bytes:
    """A key for auditor tokens only, derived from the JWT secret."""
    return hmac.new(jwt_secret(settings).encode(), b"evidence-engine auditor jwt",
                    hashlib.sha256).digest()


def _audience(settings: Settings) -> str:
    return f"{settings.jwt_audience}:auditor"


@dataclass(frozen=True)
class AuditorSession:
    token: str
    expires_at: datetime


def mint_auditor_token(settings: Settings, invitation: AuditorInvitation,
                       now: datetime) -> AuditorSession:
    """An auditor JWT for the invitation's one audit."""
    expires = now + timedelta(seconds=settings.auditor_session_ttl_seconds)
    claims = {"typ": AUDITOR_TYP, "sub": invitation.id, "audit": invitation.audit_id,
              "email": invitation.email, "iss": settings.jwt_issuer,
              "aud": _audience(settings), "iat": now, "nbf": now, "exp": expires,
              "jti": secrets.token_hex(8)}
    return AuditorSession(jwt.encode(claims, _signing_key(settings), algorithm=ALGORITHM),
                          expires)


@dataclass(frozen=True)
class AuditorPrincipal:
    """An authenticated auditor: the one audit its token reaches, and who it is."""

    invitation_id: str
    audit_id: str
    account_id: str
    email: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>"


def verify_auditor_token(settings: Settings, session: Session, token: str) -> AuditorPrincipal:
    """Decode an auditor JWT and check its invitation still stands; anything else is 401."""
    try:
        claims = jwt.decode(token, _signing_key(settings), algorithms=[ALGORITHM],
                            audience=_audience(settings), issuer=settings.jwt_issuer,
                            options={"require": ["exp", "iat", "iss", "aud", "sub", "typ"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the auditor session has expired; ask for a new invitation",
                           code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("this is not a valid auditor token (auditor endpoints take the "
                           "token returned by accept-invitation)", code="invalid_token") from None
    if claims.get("typ") != AUDITOR_TYP or not isinstance(claims.get("audit"), str):
        raise Unauthorized("this is not an auditor token", code="invalid_token")
    invitation = session.get(AuditorInvitation, str(claims["sub"]))
    if (invitation is None or invitation.audit_id != claims["audit"]
            or invitation.accepted_at is None or invitation.revoked_at is not None):
        raise Unauthorized("this auditor's access has been withdrawn", code="invalid_token")
    audit = session.get(Audit, invitation.audit_id)
    if audit is None or audit.account_id != invitation.account_id:
        raise Unauthorized("the audit of this token no longer exists", code="invalid_token")
    return AuditorPrincipal(invitation.id, audit.id, audit.account_id, invitation.email,
                            invitation.name)
