"""Who has access to an audit: each auditor's invitation and the sessions opened through it,
revoking an auditor (its link and every session end on the next request), and the check an
auditor's change passes first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.auditor_tokens import AuditorPrincipal, require_live, revoke_sessions
from engine.audits.activity_log import Actor, now_utc, record
from engine.audits.invitation import invitations
from engine.errors import Conflict, NotFound
from engine.models.audit import (
    ActivityType,
    Audit,
    AuditorInvitation,
    AuditorSession,
    AuditorStatus,
    AuditStatus,
    RevokeReason,
)


def is_live(row: AuditorSession, now: datetime) -> bool:
    return row.revoked_at is None and row.expires_at > now


@dataclass(frozen=True)
class AuditorAccess:
    """One invitation, the sessions opened through it, and where the auditor stands."""

    invitation: AuditorInvitation
    sessions: list[AuditorSession]
    status: AuditorStatus
    checked_at: datetime


def access_of(invitation: AuditorInvitation, sessions: Sequence[AuditorSession],
              now: datetime | None = None) -> AuditorAccess:
    """Revoked wins; an unused link is invited until it expires; an accepted one is accepted
    while one of its sessions is live, else expired."""
    now = now or now_utc()
    if invitation.revoked_at is not None:
        status = AuditorStatus.REVOKED
    elif invitation.accepted_at is None:
        status = AuditorStatus.INVITED if invitation.expires_at > now else AuditorStatus.EXPIRED
    else:
        status = (AuditorStatus.ACCEPTED if any(is_live(s, now) for s in sessions)
                  else AuditorStatus.EXPIRED)
    return AuditorAccess(invitation, list(sessions), status, now)


def auditors(session: Session, audit: Audit, now: datetime | None = None) -> list[AuditorAccess]:
    """Every auditor invited to the audit, oldest invitation first, with its sessions."""
    now = now or now_utc()
    by_invitation: dict[str, list[AuditorSession]] = defaultdict(list)
    for row in session.scalars(select(AuditorSession)
                               .where(AuditorSession.audit_id == audit.id)
                               .order_by(AuditorSession.created_at, AuditorSession.id)):
        by_invitation[row.invitation_id].append(row)
    return [access_of(i, by_invitation[i.id], now) for i in invitations(session, audit)]


def revoke_auditor(session: Session, audit: Audit, actor: Actor, invitation_id: str,
                   now: datetime | None = None) -> AuditorAccess:
    """Withdraw an auditor: its link stops working and every session it opened ends, so the
    auditor's next request is refused. Allowed on a complete audit too (so access to its
    report can be withdrawn); revoking twice changes nothing."""
    now = now or now_utc()
    invitation = session.scalars(select(AuditorInvitation).where(
        AuditorInvitation.audit_id == audit.id, AuditorInvitation.id == invitation_id)
        .with_for_update()).first()
    if invitation is None:
        raise NotFound(f"no auditor {invitation_id} in audit {audit.id}",
                       code="auditor_not_found")
    newly = invitation.revoked_at is None
    if newly:
        invitation.revoked_at, invitation.revoked_by = now, actor.label[:400]
    ended = revoke_sessions(session, [invitation.id], now, by=actor.label,
                            reason=RevokeReason.REVOKED)
    if newly or ended:
        record(session, audit, actor, ActivityType.AUDITOR_REVOKED, now,
               invitation_id=invitation.id, email=invitation.email, name=invitation.name,
               reason=RevokeReason.REVOKED.value, session_ids=[e.id for e in ended])
    session.flush()
    rows = session.scalars(select(AuditorSession)
                           .where(AuditorSession.invitation_id == invitation.id)
                           .order_by(AuditorSession.created_at, AuditorSession.id)
                           .execution_options(populate_existing=True))
    return access_of(invitation, list(rows), now)


def require_session_writable(session: Session, principal: AuditorPrincipal,
                             now: datetime | None = None) -> None:
    """Before an auditor's change, with the audit row locked (as revoking and completing lock
    it): the session is read again, so a change never lands after a revocation committed, and
    a session whose writes ended (its audit is complete) changes nothing."""
    row = session.get_one(AuditorSession, principal.session_id)
    require_live(row, now or now_utc())
    if row.writes_ended_at is not None:
        raise Conflict("this audit is complete: the auditor session is read-only (the audit "
                       "and its report stay readable)", code="audit_read_only",
                       status=AuditStatus.COMPLETE.value, allowed_next_statuses=[])

