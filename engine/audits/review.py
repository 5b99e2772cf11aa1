"""What the auditor reviews: every control with its evidence and result, the auditor's verdict
on a control, and evidence requests with the customer's answers (a URL, a pushed object whose
hash the engine verified, or collected evidence frozen as it stood when the answer was given)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, select, true
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
    EvidenceRequestItem,
    Finding,
    Priority,
    RequestStatus,
    ReviewStatus,
)
from engine.models.core import CheckState, Connection, Evidence, EvidenceStatus, EvidenceVersion


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


MAX_ANSWER_ITEMS = 50
"""The most collected items one answer may name."""


def respond_to_request(session: Session, audit: Audit, actor: Actor, request_id: str, *,
                       evidence_file_url: str | None = None,
                       pushed_evidence_id: str | None = None, sha256: str | None = None,
                       evidence_ids: Sequence[int] | None = None,
                       note: str | None = None, now: datetime | None = None) -> EvidenceRequest:
    """Answer an evidence request with a URL (and, optionally, the SHA-256 the customer
    declares for it), with a pushed evidence object, whose hash the engine verified, or with
    collected evidence of the account (frozen as it stands now: each item's version and
    SHA-256). A new answer replaces the previous one; the activity log keeps both."""
    now = now or now_utc()
    require_writable(audit)
    req = session.scalars(select(EvidenceRequest).where(
        EvidenceRequest.audit_id == audit.id, EvidenceRequest.id == request_id)
        .with_for_update()).first()
    if req is None:
        raise NotFound(f"no evidence request {request_id} in audit {audit.id}",
                       code="evidence_request_not_found")
    if sum(a is not None for a in (evidence_file_url, pushed_evidence_id, evidence_ids)) != 1:
        raise InvalidInput("answer with exactly one of evidence_file_url, pushed_evidence_id "
                           "or evidence_ids", code="invalid_response")
    items: list[EvidenceRequestItem] = []
    if evidence_ids is not None:
        items = _frozen_items(session, audit.account_id, evidence_ids)
        req.response_url, req.response_pushed_id = None, None
        req.response_sha256, req.response_sha256_verified = None, None
    elif pushed_evidence_id is not None:
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
    req.evidence_items = items
    req.response_note, req.status = note, RequestStatus.RESPONDED
    req.responded_by, req.responded_at = actor.label[:200], now
    record(session, audit, actor, ActivityType.EVIDENCE_PROVIDED, now, control_id=req.control_id,
           request_id=req.id, evidence_file_url=req.response_url,
           pushed_evidence_id=req.response_pushed_id, sha256=req.response_sha256,
           sha256_verified=req.response_sha256_verified,
           **({"evidence": [_logged(i) for i in items]} if items else {}))
    session.flush()
    return req


def _frozen_items(session: Session, account_id: str,
                  evidence_ids: Sequence[int]) -> list[EvidenceRequestItem]:
    """The account's evidence `evidence_ids` as it stands now: each one's current version
    (its status, title and SHA-256 as recorded), read in one statement, so a sync committing
    meanwhile is seen whole or not at all.
    Another account's id is as unknown as a missing one; removed evidence is refused."""
    ids = list(evidence_ids)
    if not 1 <= len(ids) <= MAX_ANSWER_ITEMS:
        raise InvalidInput(f"pick 1 to {MAX_ANSWER_ITEMS} pieces of evidence",
                           code="invalid_response")
    if len(set(ids)) != len(ids):
        raise InvalidInput("each piece of evidence may be named once", code="invalid_response")
    latest = (select(EvidenceVersion.id, EvidenceVersion.status, EvidenceVersion.title,
                     EvidenceVersion.content_hash, EvidenceVersion.recorded_at)
              .where(EvidenceVersion.evidence_id == Evidence.id)
              .order_by(EvidenceVersion.id.desc()).limit(1).lateral("latest"))
    rows = {row.id: row for row in session.execute(
        select(Evidence.id, Evidence.connection_id, Evidence.check_id, Evidence.resource_id,
               Evidence.resource_type, Evidence.closed_at, Connection.integration_id,
               CheckState.last_verified_at, latest.c.id.label("version_id"),
               latest.c.status, latest.c.title, latest.c.content_hash, latest.c.recorded_at)
        .join(Connection, Connection.id == Evidence.connection_id)
        .join(latest, true())
        .outerjoin(CheckState, and_(CheckState.connection_id == Evidence.connection_id,
                                    CheckState.check_id == Evidence.check_id))
        .where(Evidence.account_id == account_id, Evidence.id.in_(ids)))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound("no evidence " + ", ".join(f"ev-{i}" for i in missing)
                       + " in this account", code="evidence_not_found",
                       evidence_ids=[f"ev-{i}" for i in missing])
    closed = [i for i in ids if rows[i].closed_at is not None]
    if closed:
        raise Conflict("evidence " + ", ".join(f"ev-{i}" for i in closed) + " was removed "
                       "(its resource or check is gone): pick current evidence",
                       code="evidence_closed", evidence_ids=[f"ev-{i}" for i in closed])
    return [EvidenceRequestItem(
        account_id=account_id, position=position, evidence_id=r.id, version_id=r.version_id,
        connection_id=r.connection_id, integration_id=r.integration_id, check_id=r.check_id,
        resource_id=r.resource_id, resource_type=r.resource_type,
        status=EvidenceStatus(r.status), title=r.title, content_hash=r.content_hash,
        collected_at=r.recorded_at, verified_at=r.last_verified_at)
        for position, r in enumerate(rows[i] for i in ids)]


def _logged(item: EvidenceRequestItem) -> dict[str, object]:
    """An answered item as the activity log (and the ledger) keep it."""
    return {"evidence_id": f"ev-{item.evidence_id}", "version_id": f"evv-{item.version_id}",
            "check_id": item.check_id, "resource_id": item.resource_id,
            "status": item.status.value, "sha256": item.content_hash}


# --- choosing collected evidence -------------------------------------------------------------

@dataclass(frozen=True)
class EvidenceChoice:
    """One piece of the account's current collected evidence, as a picker lists it."""

    evidence_id: int
    check_id: str
    resource_id: str
    resource_type: str
    integration_id: str
    status: EvidenceStatus
    title: str
    sha256: str
    changed_at: datetime


@dataclass(frozen=True)
class EvidenceChoices:
    items: list[EvidenceChoice]
    more: bool
    """whether another page follows"""


def evidence_checks(session: Session, account_id: str) -> list[str]:
    """The checks that have current evidence in the account (what a picker filters by)."""
    return list(session.scalars(select(Evidence.check_id).distinct().where(
        Evidence.account_id == account_id, Evidence.closed_at.is_(None))
        .order_by(Evidence.check_id)))


def evidence_choices(session: Session, account_id: str, *, check_id: str | None = None,
                     text: str | None = None, status: EvidenceStatus | None = None,
                     limit: int, offset: int = 0) -> EvidenceChoices:
    """A page of the account's current evidence, by check, then resource, filtered by check,
    status and a piece of the resource's id or title (matched as plain text)."""
    query = (select(Evidence.id, Evidence.check_id, Evidence.resource_id, Evidence.resource_type,
                    Connection.integration_id, Evidence.status, Evidence.title,
                    Evidence.content_hash, Evidence.last_changed_at)
             .join(Connection, Connection.id == Evidence.connection_id)
             .where(Evidence.account_id == account_id, Evidence.closed_at.is_(None)))
    if check_id:
        query = query.where(Evidence.check_id == check_id)
    if status is not None:
        query = query.where(Evidence.status == status)
    if text:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"  # as typed
        query = query.where(or_(Evidence.resource_id.ilike(pattern, escape="\\"),
                                Evidence.title.ilike(pattern, escape="\\")))
    rows = session.execute(query.order_by(Evidence.check_id, Evidence.resource_id, Evidence.id)
                           .limit(limit + 1).offset(offset)).all()
    return EvidenceChoices([EvidenceChoice(*r) for r in rows[:limit]], len(rows) > limit)
