"""What the auditor portal needs of the engine beyond the audit workflow: signing out, which
ends the auditor's own session server-side (its cookie then opens nothing, as after expiry)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from engine.db import rowcount
from engine.models.audit import AuditorSession


def end_auditor_session(session: Session, session_id: str, now: datetime) -> bool:
    """Sign out: the session expires now (a revoked one stays revoked); True if it was live."""
    return rowcount(session.execute(
        update(AuditorSession)
        .where(AuditorSession.id == session_id, AuditorSession.revoked_at.is_(None),
               AuditorSession.expires_at > now)
        .values(expires_at=now))) == 1
