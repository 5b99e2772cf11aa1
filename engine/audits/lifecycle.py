"""An audit's lifecycle (seed 001): create, read, edit, and the one-way status flow
draft → in_progress → evidence_review → findings → complete.

Entering `evidence_review` freezes the evidence the auditor sees (engine/audits/evidence_view.py);
completing makes the audit read-only and ends the writes of every auditor session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import ledger
from engine.auditor_tokens import end_session_writes
from engine.audits.activity_log import KEEP, Actor, Keep, jsonable, now_utc, record
from engine.audits.controls import framework
from engine.connections import ensure_account
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models.audit import ActivityType, Audit, AuditStatus, AuditType


def create_audit(session: Session, account_id: str, actor: Actor, *, framework_id: str,
                 audit_type: AuditType, title: str, description: str | None = None,
                 target_completion: datetime | None = None,
                 period_start: date | None = None, period_end: date | None = None,
                 now: datetime | None = None) -> Audit:
    now = now or now_utc()
    fw = framework(framework_id)
    check_period(audit_type, period_start, period_end)
    ensure_account(session, account_id)
    audit = Audit(account_id=account_id, framework_id=fw.id, type=audit_type, title=title,
                  description=description, status=AuditStatus.DRAFT,
                  target_completion=target_completion, created_by=actor.label[:200],
                  created_at=now, updated_at=now, period_start=period_start,
                  period_end=period_end)
    session.add(audit)
    session.flush()
    period = ({"period_start": period_start.isoformat(), "period_end": period_end.isoformat()}
              if period_start and period_end else {})
    record(session, audit, actor, ActivityType.AUDIT_CREATED, now, framework_id=fw.id,
           type=audit_type.value, title=title, status=AuditStatus.DRAFT.value, **period)
    return audit


def check_period(audit_type: AuditType, start: date | None, end: date | None, *,
                 required: bool = True) -> None:
    """A type_ii audit judges a period: it needs both ends, the start before the end; a type_i
    audit has none (422 `invalid_period`). `required=False` lets an update that does not touch
    the period through on an audit created before periods were required."""
    if start is None and end is None:
        if audit_type is not AuditType.TYPE_II or not required:
            return
        raise InvalidInput("a type_ii audit judges a period: send period_start and period_end",
                           code="invalid_period",
                           fields=[{"field": n, "message": "Field required for a type_ii audit"}
                                   for n in ("period_start", "period_end")])
    fields = []
    if audit_type is not AuditType.TYPE_II:
        message = "only a type_ii audit has a period (a type_i audit is a point in time)"
        fields = [{"field": n, "message": "type_ii only"} for n in ("period_start", "period_end")
                  if (start if n == "period_start" else end) is not None]
    elif start is None or end is None:
        message = "send both period_start and period_end"
        fields = [{"field": "period_start" if start is None else "period_end",
                   "message": "Field required with the other end of the period"}]
    elif start >= end:
        message = (f"period_start ({start.isoformat()}) must come before period_end "
                   f"({end.isoformat()}); the period runs up to the start of period_end")
        fields = [{"field": "period_end", "message": "must be after period_start"}]
    else:
        return
    raise InvalidInput(message, code="invalid_period", fields=fields)


def list_audits(session: Session, account_id: str) -> list[Audit]:
    return list(session.scalars(select(Audit).where(Audit.account_id == account_id)
                                .order_by(Audit.created_at.desc(), Audit.id)))


def get_audit(session: Session, account_id: str, audit_id: str, *,
              for_update: bool = False) -> Audit:
    """The account's audit (another account's audit is as missing as one that never was)."""
    stmt = select(Audit).where(Audit.account_id == account_id, Audit.id == audit_id)
    audit = session.scalars(stmt.with_for_update() if for_update else stmt).first()
    if audit is None:
        raise NotFound(f"no audit {audit_id}", code="audit_not_found")
    return audit


def require_writable(audit: Audit) -> None:
    if audit.status.is_read_only:
        raise Conflict(f"audit {audit.id} is complete and read-only", code="audit_read_only",
                       status=audit.status.value, allowed_next_statuses=[])


def _check_transition(audit: Audit, to: AuditStatus) -> None:
    allowed = audit.status.next_statuses
    if to not in allowed:
        nexts = ", ".join(s.value for s in allowed) or "none (the audit is complete)"
        raise Conflict(f"an audit in {audit.status.value} cannot move to {to.value}; "
                       f"allowed next status: {nexts}", code="invalid_status_transition",
                       status=audit.status.value, requested=to.value,
                       allowed_next_statuses=[s.value for s in allowed])


def _transition(session: Session, audit: Audit, actor: Actor, to: AuditStatus,
                now: datetime) -> None:
    _check_transition(audit, to)
    previous = audit.status
    audit.status, audit.updated_at = to, now
    details: dict[str, Any] = {}
    if to is AuditStatus.EVIDENCE_REVIEW:
        audit.evidence_review_at = now
    if to is AuditStatus.COMPLETE:
        audit.completed_at = now
        details["auditor_sessions_read_only"] = end_session_writes(session, audit.id, now)
    record(session, audit, actor, ActivityType.STATUS_CHANGED, now, status=to.value,
           previous=previous.value, **details)
    ledger.checkpoint(session, audit.account_id, reason="audit_status", audit_id=audit.id, now=now)


@dataclass(frozen=True)
class AuditChanges:
    """A PUT on an audit: KEEP leaves a field alone, None clears an optional one."""

    title: str | Keep = KEEP
    description: str | None | Keep = KEEP
    target_completion: datetime | None | Keep = KEEP
    status: AuditStatus | Keep = KEEP
    period_start: date | None | Keep = KEEP
    period_end: date | None | Keep = KEEP


def update_audit(session: Session, audit: Audit, actor: Actor, changes: AuditChanges,
                 now: datetime | None = None) -> Audit:
    """Edit the audit and move its status one step along the flow (same status: no move)."""
    now = now or now_utc()
    require_writable(audit)
    target = changes.status if isinstance(changes.status, AuditStatus) else None
    if target is audit.status:
        target = None
    if target is not None:
        _check_transition(audit, target)
    start = audit.period_start if isinstance(changes.period_start, Keep) else changes.period_start
    end = audit.period_end if isinstance(changes.period_end, Keep) else changes.period_end
    check_period(audit.type, start, end, required=not (isinstance(changes.period_start, Keep)
                                                       and isinstance(changes.period_end, Keep)))
    edited: dict[str, Any] = {}
    for name in ("title", "description", "target_completion", "period_start", "period_end"):
        value = getattr(changes, name)
        if isinstance(value, Keep) or value == getattr(audit, name):
            continue
        edited[name] = {"from": jsonable(getattr(audit, name)), "to": jsonable(value)}
        setattr(audit, name, value)
    if edited:
        audit.updated_at = now
        record(session, audit, actor, ActivityType.AUDIT_UPDATED, now, fields=edited)
    if target is not None:
        _transition(session, audit, actor, target, now)
    return audit


def complete_audit(session: Session, audit: Audit, actor: Actor,
                   now: datetime | None = None) -> Audit:
    require_writable(audit)
    _transition(session, audit, actor, AuditStatus.COMPLETE, now or now_utc())
    return audit

