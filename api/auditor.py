"""The auditor portal (seed 001): an external auditor, holding the JWT its magic link was
exchanged for, reviews the one audit that token names. Customer tokens are refused here, and
auditor tokens are refused on every customer endpoint. Every request checks the token's
server-side session: a revoked one is refused at once (401 `session_revoked`), and once the
audit is complete the session reads but no longer writes (409 `audit_read_only`).
"""

from __future__ import annotations

from datetime import timedelta

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.orm import Session

from api.audits import period_answer
from api.auth import settings
from api.schemas.auditor import (
    AcceptedAudit,
    AcceptOut,
    AcceptReply,
    AcceptRequest,
    ControlEvidenceOut,
    ControlEvidenceReply,
    ControlListOut,
    ControlListReply,
    ControlPath,
    ControlReviewReply,
    EvidenceRequestCreate,
    FindingCreate,
    FindingPath,
    FindingUpdate,
    ReviewRequest,
    collected_out,
    control_out,
    pushed_out,
    ref_out,
    result_out,
    review_out,
)
from api.schemas.audits import (
    AuditDetailReply,
    EvidenceRequestListReply,
    EvidenceRequestReply,
    FindingListReply,
    FindingReply,
    detail_out,
    finding_out,
    request_out,
)
from api.schemas.common import ErrorBody, Reply, dump
from api.schemas.period import PeriodQuery, PeriodReply, SampleReply, SampleRequest, sample_out
from engine import audits, sampling
from engine.auditor_tokens import AuditorPrincipal, verify_auditor_token
from engine.audits import KEEP, Actor, FindingChanges, now_utc
from engine.db import session_factory, unit_of_work
from engine.errors import Unauthorized
from engine.models.audit import Audit

PUBLIC_ENDPOINTS = frozenset({"auditor.accept_invitation"})
AUDITOR_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


# --- authentication ------------------------------------------------------------------------

def authenticate_auditor() -> None:
    """Before every auditor request but accept-invitation: an auditor JWT, or 401."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send `Authorization: Bearer <auditor token>` (the token "
                           "accept-invitation answered)", code="missing_token")
    with session_factory(settings())() as session:
        g.auditor = verify_auditor_token(settings(), session, token.strip(), now_utc())


def auditor() -> AuditorPrincipal:
    value: AuditorPrincipal = g.auditor
    return value


def _actor() -> Actor:
    return Actor.auditor(auditor())


def _audit(session: Session) -> Audit:
    p = auditor()
    return audits.get_audit(session, p.account_id, p.audit_id)


def _audit_to_change(session: Session) -> Audit:
    """The audit, locked, for a session that may still write (409 once it is complete)."""
    p = auditor()
    audit = audits.get_audit(session, p.account_id, p.audit_id, for_update=True)
    audits.require_session_writable(session, p)
    return audit



# --- routes --------------------------------------------------------------------------------

bp = APIBlueprint("auditor", __name__, url_prefix="/api/v1/auditor",
                  abp_tags=[Tag(name="auditor", description="the external auditor's portal "
                                "(auditor JWT from accept-invitation)")],
                  abp_responses={401: ErrorBody, 404: ErrorBody})
bp.before_request(authenticate_auditor)


@bp.post("/accept-invitation", responses={200: AcceptReply, 422: ErrorBody})
def accept_invitation(body: AcceptRequest) -> Reply:
    """Exchange the magic-link token (single use, expiring) for an auditor JWT."""
    with unit_of_work(settings()) as session:
        accepted = audits.accept_invitation(session, settings(), body.token)
        audit = accepted.audit
        return dump(AcceptReply(data=AcceptOut(
            token=accepted.token.token, expires_at=accepted.token.expires_at,
            session_id=accepted.token.session_id,
            audit=AcceptedAudit(id=audit.id, title=audit.title, framework_id=audit.framework_id,
                                status=audit.status))))


@bp.get("/audit", responses={200: AuditDetailReply}, security=AUDITOR_SECURITY)
def get_audit() -> Reply:
    """The audit this token reaches, with progress and recent activity."""
    with unit_of_work(settings()) as session:
        return dump(AuditDetailReply(data=detail_out(audits.audit_detail(session,
                                                                         _audit(session)))))


@bp.get("/controls", responses={200: ControlListReply}, security=AUDITOR_SECURITY)
def list_controls() -> Reply:
    """The framework's controls with the review, evidence counts and automated result."""
    with unit_of_work(settings()) as session:
        audit = _audit(session)
        overview = audits.controls_overview(session, audit)
        return dump(ControlListReply(data=ControlListOut(
            evidence_frozen_at=audit.evidence_review_at,
            controls=[control_out(o) for o in overview])))


@bp.get("/controls/<control_id>/evidence", responses={200: ControlEvidenceReply},
        security=AUDITOR_SECURITY)
def control_evidence(path: ControlPath) -> Reply:
    """One control's evidence: collected (as frozen), pushed, and answers to requests;
    anything newer than the freeze is listed apart."""
    with unit_of_work(settings()) as session:
        audit = _audit(session)
        ev = audits.control_evidence(session, audit, path.control_id)
        return dump(ControlEvidenceReply(data=ControlEvidenceOut(
            control=ref_out(ev.control), review=review_out(ev.control.id, ev.review),
            latest_result=result_out(ev.result), evidence_frozen_at=ev.view.frozen_at,
            collected=[collected_out(i) for i in ev.view.items],
            pushed=[pushed_out(p) for p in ev.pushed if not p.newer],
            newer=[collected_out(i) for i in ev.view.collected_after],
            newer_pushed=[pushed_out(p) for p in ev.pushed if p.newer],
            requests=[request_out(r) for r in ev.requests])))


@bp.put("/controls/<control_id>/status",
        responses={200: ControlReviewReply, 409: ErrorBody, 422: ErrorBody},
        security=AUDITOR_SECURITY)
def set_control_status(path: ControlPath, body: ReviewRequest) -> Reply:
    """Mark a control pending, passed, failed or needs_evidence, with notes."""
    sent = body.model_fields_set
    with unit_of_work(settings()) as session:
        audit = _audit_to_change(session)
        row = audits.review_control(
            session, audit, _actor(), path.control_id, status=body.status,
            notes=body.auditor_notes if "auditor_notes" in sent else KEEP,
            evidence_sufficient=body.evidence_sufficient if "evidence_sufficient" in sent
            else KEEP)
        return dump(ControlReviewReply(data=review_out(row.control_id, row)))


@bp.post("/evidence-requests", responses={201: EvidenceRequestReply, 409: ErrorBody,
                                          422: ErrorBody}, security=AUDITOR_SECURITY)
def request_evidence(body: EvidenceRequestCreate) -> Reply:
    """Ask the customer for more evidence on a control."""
    with unit_of_work(settings()) as session:
        audit = _audit_to_change(session)
        req = audits.request_evidence(session, audit, _actor(), control_ref=body.control_id,
                                      description=body.description, priority=body.priority)
        return dump(EvidenceRequestReply(data=request_out(req))), 201


@bp.get("/evidence-requests", responses={200: EvidenceRequestListReply},
        security=AUDITOR_SECURITY)
def list_evidence_requests() -> Reply:
    """The requests made in this audit, with the customer's answers."""
    with unit_of_work(settings()) as session:
        audit = _audit(session)
        return dump(EvidenceRequestListReply(
            data=[request_out(r) for r in audits.evidence_requests(session, audit)]))


@bp.post("/findings", responses={201: FindingReply, 409: ErrorBody, 422: ErrorBody},
         security=AUDITOR_SECURITY)
def create_finding(body: FindingCreate) -> Reply:
    """Record a finding on a control."""
    with unit_of_work(settings()) as session:
        audit = _audit_to_change(session)
        finding = audits.create_finding(session, audit, _actor(), control_ref=body.control_id,
                                        severity=body.severity, title=body.title,
                                        description=body.description,
                                        remediation=body.remediation)
        return dump(FindingReply(data=finding_out(finding))), 201


@bp.get("/findings", responses={200: FindingListReply}, security=AUDITOR_SECURITY)
def list_findings() -> Reply:
    """This audit's findings."""
    with unit_of_work(settings()) as session:
        audit = _audit(session)
        return dump(FindingListReply(data=[finding_out(f)
                                           for f in audits.findings(session, audit)]))


@bp.put("/findings/<finding_id>", responses={200: FindingReply, 409: ErrorBody,
                                             422: ErrorBody}, security=AUDITOR_SECURITY)
def update_finding(path: FindingPath, body: FindingUpdate) -> Reply:
    """Change a finding's status (open, in_progress, resolved, accepted) or details."""
    sent = body.model_fields_set
    changes = FindingChanges(
        status=body.status if body.status is not None else KEEP,
        severity=body.severity if body.severity is not None else KEEP,
        title=body.title if body.title is not None else KEEP,
        description=body.description if body.description is not None else KEEP,
        remediation=body.remediation if "remediation" in sent else KEEP,
        control_ref=body.control_id if body.control_id is not None else KEEP)
    with unit_of_work(settings()) as session:
        audit = _audit_to_change(session)
        finding = audits.update_finding(session, audit, _actor(), path.finding_id, changes)
        return dump(FindingReply(data=finding_out(finding)))


@bp.post("/complete", responses={200: AuditDetailReply, 409: ErrorBody},
         security=AUDITOR_SECURITY)
def complete_audit() -> Reply:
    """Mark the audit complete (from `findings`); it is read-only afterwards."""
    with unit_of_work(settings()) as session:
        audit = _audit_to_change(session)
        audits.complete_audit(session, audit, _actor())
        session.flush()
        return dump(AuditDetailReply(data=detail_out(audits.audit_detail(session, audit))))


@bp.get("/period", responses={200: PeriodReply, 409: ErrorBody}, security=AUDITOR_SECURITY)
def get_period(query: PeriodQuery) -> Reply:
    """The audit's period, per control: coverage, operating time, exceptions, gaps with their
    causes, and the population each sample is drawn from."""
    with unit_of_work(settings()) as session:
        return dump(PeriodReply(data=period_answer(session, _audit(session), query.control_id)))


@bp.post("/samples", responses={201: SampleReply, 409: ErrorBody, 422: ErrorBody},
         security=AUDITOR_SECURITY)
def draw_sample(body: SampleRequest) -> Reply:
    """Draw resources and instants from a control's population by a seeded random draw; the
    seed and the draw go to the activity log, and each item carries the evidence as it stood
    at its instant. The same seed draws the same sample."""
    with unit_of_work(settings()) as session:
        audit = _audit_to_change(session)
        sample = sampling.draw_sample(session, audit, _actor(), control_ref=body.control_id,
                             size=body.size, seed=body.seed,
                             grace=timedelta(seconds=settings().freshness_grace_seconds))
        return dump(SampleReply(data=sample_out(sample))), 201
