"""Auditor invitations: the magic link and its mail, and accepting it for an auditor session.
A re-invitation of the same address replaces the earlier ones, so no older token stays valid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.auditor_tokens import (
    AuditorToken,
    new_link_token,
    redeem_link_token,
    revoke_sessions,
    start_session,
)
from engine.audits.activity_log import Actor, now_utc, record
from engine.audits.controls import framework
from engine.audits.lifecycle import require_writable
from engine.mail import queue_mail, require_mail
from engine.models.audit import ActivityType, ActorKind, Audit, AuditorInvitation, RevokeReason
from engine.settings import Settings

INVITATION_MAIL = """\
Hello {name},

{inviter} invites you to audit "{title}" ({framework}, {type}) on evidence-engine.

Open the invitation:
{link}

Or accept it through the API, which answers your auditor token:
curl -X POST {base}/api/v1/auditor/accept-invitation \\
     -H 'Content-Type: application/json' -d '{{"token": "{token}"}}'

The link works once and expires on {expires}.
If you did not expect this invitation, ignore this mail.
"""


def invitations(session: Session, audit: Audit) -> list[AuditorInvitation]:
    return list(session.scalars(select(AuditorInvitation)
                                .where(AuditorInvitation.audit_id == audit.id)
                                .order_by(AuditorInvitation.created_at, AuditorInvitation.id)))


def invite_auditor(session: Session, settings: Settings, audit: Audit, actor: Actor, *,
                   email: str, name: str, firm: str | None = None,
                   now: datetime | None = None) -> AuditorInvitation:
    """Invite an auditor by magic link; the mail leaves from a worker after commit. Earlier
    invitations of the same address to this audit are replaced: an unused link stops working
    and an accepted one's sessions end (each recorded as `auditor_revoked`, reason
    `replaced`), so a re-invitation never leaves an older token valid."""
    now = now or now_utc()
    require_writable(audit)
    require_mail(settings)
    replaced = list(session.execute(update(AuditorInvitation).where(
        AuditorInvitation.audit_id == audit.id,
        func.lower(AuditorInvitation.email) == email.lower(),
        AuditorInvitation.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor.label[:400])
        .returning(AuditorInvitation.id, AuditorInvitation.email, AuditorInvitation.name))
        .tuples())
    ended = revoke_sessions(session, [r[0] for r in replaced], now, by=actor.label,
                            reason=RevokeReason.REPLACED)
    token, token_hash = new_link_token()
    invitation = AuditorInvitation(
        audit_id=audit.id, account_id=audit.account_id, email=email, name=name, firm=firm,
        token_hash=token_hash, invited_by=actor.label[:200], created_at=now,
        expires_at=now + timedelta(seconds=settings.magic_link_ttl_seconds))
    session.add(invitation)
    session.flush()
    fw = framework(audit.framework_id)
    base = settings.public_base_url.rstrip("/")
    body = INVITATION_MAIL.format(
        name=name, inviter=actor.label, title=audit.title, framework=fw.name,
        type=audit.type.label,
        link=f"{base}/auditor/accept#token={token}", base=base, token=token,
        expires=invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"))
    mail = queue_mail(session, settings, to=email, subject=f"Audit invitation: {audit.title}",
                      body=body, account_id=audit.account_id)
    invitation.mail_id = mail.id
    record(session, audit, actor, ActivityType.AUDITOR_INVITED, now, invitation_id=invitation.id,
           email=email, name=name, firm=firm, expires_at=invitation.expires_at.isoformat())
    for old_id, old_email, old_name in sorted(replaced):
        record(session, audit, actor, ActivityType.AUDITOR_REVOKED, now, invitation_id=old_id,
               email=old_email, name=old_name, reason=RevokeReason.REPLACED.value,
               replaced_by=invitation.id,
               session_ids=[e.id for e in ended if e.invitation_id == old_id])
    return invitation


@dataclass(frozen=True)
class Acceptance:
    token: AuditorToken
    audit: Audit
    invitation: AuditorInvitation


def accept_invitation(session: Session, settings: Settings, token: str,
                      now: datetime | None = None) -> Acceptance:
    """Exchange a magic-link token (once) for an auditor session and the JWT naming it; on a
    complete audit the session only reads."""
    now = now or now_utc()
    invitation = redeem_link_token(session, token, now)
    audit = session.get_one(Audit, invitation.audit_id)
    issued = start_session(session, settings, invitation, now,
                           can_write=not audit.status.is_read_only)
    auditor = Actor(ActorKind.AUDITOR, f"{invitation.name} <{invitation.email}>")
    record(session, audit, auditor, ActivityType.INVITATION_ACCEPTED, now,
           invitation_id=invitation.id, session_id=issued.session_id)
    return Acceptance(issued, audit, invitation)
