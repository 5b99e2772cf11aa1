"""Auditor credentials: single-use magic-link tokens (stored as SHA-256 only), the auditor
sessions they open, and the auditor JWT that names its session.

The auditor JWT is scoped to one audit and cannot pass as a customer token, nor the other way
round: it is signed with a key derived from the JWT secret for auditors only, carries its own
audience (`<audience>:auditor`) and `typ: auditor`, and names no `account` claim. Its `sid`
claim names an `auditor_session` row, read on every auditor request (one primary-key lookup):
revoking the row withdraws the token on the next request, and a session whose writes ended (the
audit is complete) can still read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.errors import Unauthorized
from engine.models.audit import AuditorInvitation, AuditorSession, RevokeReason
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
        raise Unauthorized("this invitation was withdrawn or replaced by a newer one; use the "
                           "link in the latest mail", code="invitation_revoked")
    raise Unauthorized("this invitation link has expired; ask for a new invitation",
                       code="invitation_expired")


def _signing_key(settings: Settings) -> bytes:
    """A key for auditor tokens only, derived from the JWT secret."""
    return hmac.new(jwt_secret(settings).encode(), b"evidence-engine auditor jwt",
                    hashlib.sha256).digest()


def _audience(settings: Settings) -> str:
    return f"{settings.jwt_audience}:auditor"


@dataclass(frozen=True)
class AuditorToken:
    """An auditor JWT as handed to the auditor, and when it stops working."""

    token: str
    expires_at: datetime
    session_id: str


def start_session(session: Session, settings: Settings, invitation: AuditorInvitation,
                  now: datetime, *, can_write: bool = True) -> AuditorToken:
    """Open a server-side session for an accepted invitation and mint the JWT naming it."""
    row = AuditorSession(account_id=invitation.account_id, audit_id=invitation.audit_id,
                         invitation_id=invitation.id, email=invitation.email,
                         name=invitation.name, created_at=now,
                         expires_at=now + timedelta(seconds=settings.auditor_session_ttl_seconds),
                         writes_ended_at=None if can_write else now)
    session.add(row)
    session.flush()
    return mint_auditor_token(settings, row, now)


def mint_auditor_token(settings: Settings, row: AuditorSession, now: datetime) -> AuditorToken:
    """An auditor JWT for the session's one audit, valid until the session expires."""
    claims = {"typ": AUDITOR_TYP, "sub": row.invitation_id, "sid": row.id,
              "audit": row.audit_id, "email": row.email, "iss": settings.jwt_issuer,
              "aud": _audience(settings), "iat": now, "nbf": now, "exp": row.expires_at,
              "jti": secrets.token_hex(8)}
    return AuditorToken(jwt.encode(claims, _signing_key(settings), algorithm=ALGORITHM),
                        row.expires_at, row.id)


@dataclass(frozen=True)
class EndedSession:
    id: str
    invitation_id: str


def revoke_sessions(session: Session, invitation_ids: Collection[str], now: datetime, *,
                    by: str, reason: RevokeReason) -> list[EndedSession]:
    """End every unrevoked session opened through these invitations (one statement)."""
    if not invitation_ids:
        return []
    rows = session.execute(
        update(AuditorSession)
        .where(AuditorSession.invitation_id.in_(list(invitation_ids)),
               AuditorSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by[:400], revoked_reason=reason)
        .returning(AuditorSession.id, AuditorSession.invitation_id)).tuples()
    return sorted((EndedSession(sid, inv) for sid, inv in rows), key=lambda e: e.id)


def end_session_writes(session: Session, audit_id: str, now: datetime) -> list[str]:
    """Make every live session of the audit read-only; the ids of those that changed."""
    return sorted(session.scalars(
        update(AuditorSession)
        .where(AuditorSession.audit_id == audit_id, AuditorSession.revoked_at.is_(None),
               AuditorSession.writes_ended_at.is_(None))
        .values(writes_ended_at=now).returning(AuditorSession.id)))


@dataclass(frozen=True)
class AuditorPrincipal:
    """An authenticated auditor: its session, the one audit it reaches, and who it is."""

    session_id: str
    invitation_id: str
    audit_id: str
    account_id: str
    email: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>"


REVOKED_MESSAGES = {
    RevokeReason.REVOKED: "the customer has withdrawn this auditor's access to the audit",
    RevokeReason.REPLACED: "this auditor session was ended by a newer invitation to the same "
                           "address; accept the latest invitation",
}


def verify_auditor_token(settings: Settings, session: Session, token: str,
                         now: datetime | None = None) -> AuditorPrincipal:
    """Decode an auditor JWT and check that its session is live; anything else is 401."""
    now = now or datetime.now(UTC)
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
    sid = claims.get("sid")
    if (claims.get("typ") != AUDITOR_TYP or not isinstance(claims.get("audit"), str)
            or not isinstance(sid, str)):
        raise Unauthorized("this is not an auditor token, or one issued before auditor "
                           "sessions; ask for a new invitation", code="invalid_token")
    row = session.get(AuditorSession, sid)
    if row is None or row.audit_id != claims["audit"] or row.invitation_id != claims["sub"]:
        raise Unauthorized("this auditor token names no session", code="invalid_token")
    require_live(row, now)
    return AuditorPrincipal(row.id, row.invitation_id, row.audit_id, row.account_id, row.email,
                            row.name)


def require_live(row: AuditorSession, now: datetime) -> None:
    """A revoked session is refused (401 `session_revoked`, with the reason), an expired one
    too (401 `token_expired`)."""
    if row.revoked_at is not None:
        reason = row.revoked_reason or RevokeReason.REVOKED
        raise Unauthorized(REVOKED_MESSAGES[reason], code="session_revoked",
                           reason=reason.value)
    if row.expires_at <= now:
        raise Unauthorized("the auditor session has expired; ask for a new invitation",
                           code="token_expired")
