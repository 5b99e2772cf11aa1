"""The audit's activity log: who made a change (`Actor`), one entry per change (`record`,
written in the same transaction as the change), and reading the log back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import ledger
from engine.auditor_tokens import AuditorPrincipal
from engine.models.audit import ActivityType, ActorKind, Audit, AuditActivity
from engine.tokens import Principal


class Keep(Enum):
    """Marks a field an update leaves as it is (distinct from None, which clears it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who made a change, as the activity log records it."""

    kind: ActorKind
    label: str

    @classmethod
    def customer(cls, principal: Principal) -> Actor:
        return cls(ActorKind.CUSTOMER, principal.subject)

    @classmethod
    def auditor(cls, principal: AuditorPrincipal) -> Actor:
        return cls(ActorKind.AUDITOR, principal.label)


def record(session: Session, audit: Audit, actor: Actor, kind: ActivityType, now: datetime, *,
           control_id: str | None = None, **details: Any) -> AuditActivity:
    """Append one entry to the audit's activity log."""
    entry = AuditActivity(audit_id=audit.id, account_id=audit.account_id, actor_kind=actor.kind,
                          actor=actor.label[:400], type=kind, control_id=control_id,
                          details=details, at=now)
    ledger.record_activity(session, entry)
    session.add(entry)
    return entry


def activity(session: Session, audit: Audit, *, limit: int, offset: int = 0,
             newest_first: bool = False) -> list[AuditActivity]:
    order = AuditActivity.id.desc() if newest_first else AuditActivity.id
    return list(session.scalars(select(AuditActivity).where(AuditActivity.audit_id == audit.id)
                                .order_by(order).limit(limit).offset(offset)))


def jsonable(value: Any) -> Any:
    """A field's value as an activity entry's details hold it (a "from"/"to" of an edit)."""
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value
