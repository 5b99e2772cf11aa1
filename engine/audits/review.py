"""What the auditor reviews: every control with its evidence and result, the auditor's verdict
on a control, and evidence requests with the customer's answers (a URL, or a pushed object
whose hash the engine verified)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import pushed
from engine.audits.activity_log import KEEP, Actor, Keep, now_utc, record
from engine.audits.controls import framework, framework_checks, resolve_control
from engine.audits.evidence_view import (
    ControlResultAt,
    EvidenceItem,
    EvidenceView,
    PushedItem,
    evidence_view,
    pushed_by_control,
    pushed_items,
)
from engine.audits.lifecycle import require_writable
from engine.errors import Conflict, InvalidInput, NotFound
from engine.frameworks import Control
from engine.models.audit import (
    ActivityType,
    Audit,
    AuditControl,
    EvidenceRequest,
    Finding,
    Priority,
    RequestStatus,
    ReviewStatus,
)


@dataclass(frozen=True)
class ControlOverview:
    control: Control
    review: AuditControl | None
    result: ControlResultAt
    evidence_count: int
    newer_count: int
    pushed_count: int
    open_requests: int
    findings: int


def reviews(session: Session, audit: Audit) -> dict[str, AuditControl]:
    return {r.control_id: r for r in session.scalars(
        select(AuditControl).where(AuditControl.audit_id == audit.id))}


def controls_overview(session: Session, audit: Audit) -> list[ControlOverview]:
    """Every control of the audit's framework with its review, evidence counts and result."""
    fw = framework(audit.framework_id)
    view = evidence_view(session, audit, framework_checks(fw))
    by_control: dict[str, list[EvidenceItem]] = defaultdict(list)
    newer: Counter[str] = Counter()
    for item in view.items:
        for c in item.controls:
            by_control[c.id].append(item)
            newer[c.id] += item.newer is not None
    for item in view.collected_after:
        for c in item.controls:
            newer[c.id] += 1
    pushed_map = pushed_by_control(session, audit)
    done = reviews(session, audit)
    open_requests = Counter(session.scalars(select(EvidenceRequest.control_id).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.status == RequestStatus.OPEN)))
    finding_counts = Counter(session.scalars(select(Finding.control_id)
                                             .where(Finding.audit_id == audit.id)))
    return [ControlOverview(
        c, done.get(c.id), ControlResultAt.of(by_control[c.id]), len(by_control[c.id]),
        newer[c.id] + sum(p.newer for p in pushed_map.get(c.id, [])),
        sum(not p.newer for p in pushed_map.get(c.id, [])), open_requests[c.id],
        finding_counts[c.id]) for c in sorted(fw.controls.values(), key=lambda c: c.sort_key)]


@dataclass(frozen=True)
class ControlEvidence:
    control: Control
    review: AuditControl | None
    result: ControlResultAt
    view: EvidenceView
    pushed: list[PushedItem]
    requests: list[EvidenceRequest] = field(default_factory=list)


def control_evidence(session: Session, audit: Audit, control_ref: str) -> ControlEvidence:
    """One control's evidence: collected (frozen), pushed, and the answers to requests."""
    control = resolve_control(audit, control_ref)
    checks = {check_id: controls for check_id, controls in
              framework_checks(framework(audit.framework_id)).items() if control in controls}
    view = evidence_view(session, audit, checks, with_data=True)
    requests = list(session.scalars(select(EvidenceRequest).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.control_id == control.id)
        .order_by(EvidenceRequest.created_at, EvidenceRequest.id)))
    return ControlEvidence(control, reviews(session, audit).get(control.id),
                           ControlResultAt.of(view.items), view,
                           pushed_items(session, audit, control), requests)


def review_control(session: Session, audit: Audit, actor: Actor, control_ref: str, *,
                   status: ReviewStatus, notes: str | None | Keep = KEEP,
                   evidence_sufficient: bool | None | Keep = KEEP,
                   now: datetime | None = None) -> AuditControl:
    """Record the auditor's verdict on one control."""
    now = now or now_utc()
    require_writable(audit)
    control = resolve_control(audit, control_ref)
    row = session.get(AuditControl, (audit.id, control.id), with_for_update=True)
    previous = row.status.value if row is not None else ReviewStatus.PENDING.value
    if row is None:
        row = AuditControl(audit_id=audit.id, control_id=control.id,
                           account_id=audit.account_id)
        session.add(row)
    row.status = status
    if not isinstance(notes, Keep):
        row.notes = notes
    if not isinstance(evidence_sufficient, Keep):
        row.evidence_sufficient = evidence_sufficient
    row.reviewed_by, row.reviewed_at = actor.label[:400], now
    audit.updated_at = now
    record(session, audit, actor, ActivityType.CONTROL_REVIEWED, now, control_id=control.id,
           status=status.value, previous=previous, notes=row.notes,
           evidence_sufficient=row.evidence_sufficient)
    session.flush()
    return row


# --- evidence requests ---------------------------------------------------------------------

def request_evidence(session: Session, audit: Audit, actor: Actor, *, control_ref: str,
                     description: str, priority: Priority = Priority.MEDIUM,
                     now: datetime | None = None) -> EvidenceRequest:
    now = now or now_utc()
    require_writable(audit)
    control = resolve_control(audit, control_ref, missing=InvalidInput)
    req = EvidenceRequest(audit_id=audit.id, account_id=audit.account_id, control_id=control.id,
                          description=description, priority=priority,
                          status=RequestStatus.OPEN, requested_by=actor.label[:400],
                          created_at=now)
    session.add(req)
    session.flush()
    record(session, audit, actor, ActivityType.EVIDENCE_REQUESTED, now, control_id=control.id,
           request_id=req.id, priority=priority.value, description=description)
    return req


def evidence_requests(session: Session, audit: Audit) -> list[EvidenceRequest]:
    return list(session.scalars(select(EvidenceRequest)
                                .where(EvidenceRequest.audit_id == audit.id)
                                .order_by(EvidenceRequest.created_at, EvidenceRequest.id)))


def respond_to_request(session: Session, audit: Audit, actor: Actor, request_id: str, *,
                       evidence_file_url: str | None = None,
                       pushed_evidence_id: str | None = None, sha256: str | None = None,
                       note: str | None = None, now: datetime | None = None) -> EvidenceRequest:
    """Answer an evidence request with a URL (and, optionally, the SHA-256 the customer
    declares for it) or with a pushed evidence object, whose hash the engine verified."""
    now = now or now_utc()
    require_writable(audit)
    req = session.scalars(select(EvidenceRequest).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.id == request_id)
        .with_for_update()).first()
    if req is None:
        raise NotFound(f"no evidence request {request_id} in audit {audit.id}",
                       code="evidence_request_not_found")
    if (evidence_file_url is None) == (pushed_evidence_id is None):
        raise InvalidInput("answer with exactly one of evidence_file_url or "
                           "pushed_evidence_id", code="invalid_response")
    if pushed_evidence_id is not None:
        obj = pushed.canonical(session, pushed.get_pushed(session, audit.account_id,
                                                          pushed_evidence_id).evidence)
        if obj.sha256 is None or obj.status.value != "verified":
            raise Conflict(f"pushed evidence {pushed_evidence_id} is {obj.status.value}, not "
                           "verified: verify the upload first", code="not_verified")
        req.response_url, req.response_pushed_id = None, obj.id
        req.response_sha256, req.response_sha256_verified = obj.sha256, True
    else:
        req.response_url, req.response_pushed_id = evidence_file_url, None
        req.response_sha256 = sha256.lower() if sha256 else None
        req.response_sha256_verified = False if sha256 else None
    req.response_note, req.status = note, RequestStatus.RESPONDED
    req.responded_by, req.responded_at = actor.label[:200], now
    record(session, audit, actor, ActivityType.EVIDENCE_PROVIDED, now, control_id=req.control_id,
           request_id=req.id, evidence_file_url=req.response_url,
           pushed_evidence_id=req.response_pushed_id, sha256=req.response_sha256,
           sha256_verified=req.response_sha256_verified)
    return req

