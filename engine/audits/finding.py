"""Audit findings: the auditor raises them on a control and moves them through open,
in_progress, resolved and accepted; the customer reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audits.activity_log import KEEP, Actor, Keep, jsonable, now_utc, record
from engine.audits.controls import resolve_control
from engine.audits.lifecycle import require_writable
from engine.errors import InvalidInput, NotFound
from engine.models.audit import ActivityType, Audit, Finding, FindingSeverity, FindingStatus


def create_finding(session: Session, audit: Audit, actor: Actor, *, control_ref: str,
                   severity: FindingSeverity, title: str, description: str,
                   remediation: str | None = None, now: datetime | None = None) -> Finding:
    now = now or now_utc()
    require_writable(audit)
    control = resolve_control(audit, control_ref, missing=InvalidInput)
    finding = Finding(audit_id=audit.id, account_id=audit.account_id, control_id=control.id,
                      severity=severity, title=title, description=description,
                      remediation=remediation, status=FindingStatus.OPEN,
                      created_by=actor.label[:400], created_at=now, updated_at=now)
    session.add(finding)
    session.flush()
    record(session, audit, actor, ActivityType.FINDING_CREATED, now, control_id=control.id,
           finding_id=finding.id, severity=severity.value, title=title,
           status=FindingStatus.OPEN.value)
    return finding


def findings(session: Session, audit: Audit) -> list[Finding]:
    return list(session.scalars(select(Finding).where(Finding.audit_id == audit.id)
                                .order_by(Finding.created_at, Finding.id)))


@dataclass(frozen=True)
class FindingChanges:
    severity: FindingSeverity | Keep = KEEP
    status: FindingStatus | Keep = KEEP
    title: str | Keep = KEEP
    description: str | Keep = KEEP
    remediation: str | None | Keep = KEEP
    control_ref: str | Keep = KEEP


def update_finding(session: Session, audit: Audit, actor: Actor, finding_id: str,
                   changes: FindingChanges, now: datetime | None = None) -> Finding:
    now = now or now_utc()
    require_writable(audit)
    finding = session.scalars(select(Finding).where(
        Finding.audit_id == audit.id, Finding.id == finding_id).with_for_update()).first()
    if finding is None:
        raise NotFound(f"no finding {finding_id} in this audit", code="finding_not_found")
    values: dict[str, Any] = {
        "severity": changes.severity, "status": changes.status, "title": changes.title,
        "description": changes.description, "remediation": changes.remediation,
        "control_id": changes.control_ref if isinstance(changes.control_ref, Keep)
        else resolve_control(audit, changes.control_ref, missing=InvalidInput).id}
    edited: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Keep) or value == getattr(finding, name):
            continue
        edited[name] = {"from": jsonable(getattr(finding, name)), "to": jsonable(value)}
        setattr(finding, name, value)
    if edited:
        finding.updated_at = now
        record(session, audit, actor, ActivityType.FINDING_UPDATED, now,
               control_id=finding.control_id, finding_id=finding.id, fields=edited,
               status=finding.status.value)
    return finding
