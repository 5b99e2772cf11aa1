"""An audit at a glance: progress over its framework's controls, the recent activity and the
auditors, as the customer's and the auditor's audit pages show it."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audits.activity_log import activity
from engine.audits.controls import framework
from engine.audits.sessions import AuditorAccess, auditors
from engine.models.audit import Audit, AuditActivity, AuditControl, ReviewStatus

RECENT_ACTIVITY = 10


@dataclass(frozen=True)
class Progress:
    total_controls: int
    passed: int = 0
    failed: int = 0
    needs_evidence: int = 0

    @property
    def reviewed(self) -> int:
        return self.passed + self.failed + self.needs_evidence

    @property
    def pending(self) -> int:
        return self.total_controls - self.reviewed


def progress_of(session: Session, audits: Sequence[Audit]) -> dict[str, Progress]:
    """Per audit: how many of its framework's controls the auditor passed, failed, or sent
    back for evidence; the rest are pending."""
    counts: dict[str, Counter[ReviewStatus]] = defaultdict(Counter)
    if audits:
        rows = session.execute(
            select(AuditControl.audit_id, AuditControl.status, func.count())
            .where(AuditControl.audit_id.in_([a.id for a in audits]))
            .group_by(AuditControl.audit_id, AuditControl.status)).tuples()
        for audit_id, status, n in rows:
            counts[audit_id][status] = n
    return {a.id: Progress(len(framework(a.framework_id).controls),
                           counts[a.id][ReviewStatus.PASSED], counts[a.id][ReviewStatus.FAILED],
                           counts[a.id][ReviewStatus.NEEDS_EVIDENCE]) for a in audits}




@dataclass(frozen=True)
class AuditDetail:
    audit: Audit
    progress: Progress
    recent_activity: list[AuditActivity]
    auditors: list[AuditorAccess]


def audit_detail(session: Session, audit: Audit) -> AuditDetail:
    return AuditDetail(audit, progress_of(session, [audit])[audit.id],
                       activity(session, audit, limit=RECENT_ACTIVITY, newest_first=True),
                       auditors(session, audit))

