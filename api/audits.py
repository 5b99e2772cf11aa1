"""Audits, customer side (seed 001): create and follow audits, invite auditors, answer evidence
requests, read findings, activity and the report. Bodies are `{"data": ...}` as in the seed;
the models are in api/schemas/audits.py."""

from __future__ import annotations

from datetime import timedelta

from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.orm import Session

from api.auth import authenticate, principal, settings
from api.schemas.audits import (
    ActivityListReply,
    ActivityQuery,
    AuditCreate,
    AuditDetailReply,
    AuditListReply,
    AuditorListReply,
    AuditorPath,
    AuditPath,
    AuditReply,
    AuditUpdate,
    EvidenceRequestListReply,
    EvidenceRequestReply,
    FindingListReply,
    InvitationReply,
    InviteRequest,
    ReportOut,
    ReportReply,
    RequestPath,
    RespondRequest,
    activity_out,
    audit_out,
    auditor_out,
    detail_out,
    finding_out,
    request_out,
)
from api.schemas.common import ErrorBody, Reply, dump
from api.schemas.period import PeriodOut, PeriodQuery, PeriodReply, period_out
from engine import audits
from engine.audits import KEEP, Actor, AuditChanges
from engine.db import unit_of_work
from engine.models.audit import Audit
from engine.period import audit_period

bp = APIBlueprint("audits", __name__, url_prefix="/api/v1/audits",
                  abp_tags=[Tag(name="audits", description="customer side of an audit")],
                  abp_security=[{"bearer": []}],
                  abp_responses={401: ErrorBody, 404: ErrorBody})
bp.before_request(authenticate)


def _actor() -> Actor:
    return Actor.customer(principal())


@bp.post("", responses={201: AuditReply, 422: ErrorBody})
def create_audit(body: AuditCreate) -> Reply:
    """Create an audit (status `draft`)."""
    with unit_of_work(settings()) as session:
        audit = audits.create_audit(
            session, principal().account_id, _actor(), framework_id=body.framework_id,
            audit_type=body.type, title=body.title, description=body.description,
            target_completion=body.target_completion, period_start=body.period_start,
            period_end=body.period_end)
        progress = audits.progress_of(session, [audit])[audit.id]
        return dump(AuditReply(data=audit_out(audit, progress))), 201


@bp.get("", responses={200: AuditListReply})
def list_audits() -> Reply:
    """Every audit of the account, newest first, with progress."""
    with unit_of_work(settings()) as session:
        found = audits.list_audits(session, principal().account_id)
        progress = audits.progress_of(session, found)
        return dump(AuditListReply(data=[audit_out(a, progress[a.id]) for a in found]))


@bp.get("/<audit_id>", responses={200: AuditDetailReply})
def get_audit(path: AuditPath) -> Reply:
    """The audit with progress metrics, recent activity and its auditors."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        return dump(AuditDetailReply(data=detail_out(audits.audit_detail(session, audit))))


@bp.put("/<audit_id>", responses={200: AuditDetailReply, 409: ErrorBody, 422: ErrorBody})
def update_audit(path: AuditPath, body: AuditUpdate) -> Reply:
    """Update title, description, target date, or move the status one step along the flow."""
    sent = body.model_fields_set
    changes = AuditChanges(
        title=body.title if body.title is not None else KEEP,
        description=body.description if "description" in sent else KEEP,
        target_completion=body.target_completion if "target_completion" in sent else KEEP,
        status=body.status if body.status is not None else KEEP,
        period_start=body.period_start if "period_start" in sent else KEEP,
        period_end=body.period_end if "period_end" in sent else KEEP)
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id,
                                 for_update=True)
        audits.update_audit(session, audit, _actor(), changes)
        session.flush()
        return dump(AuditDetailReply(data=detail_out(audits.audit_detail(session, audit))))


@bp.post("/<audit_id>/invite-auditor",
         responses={201: InvitationReply, 409: ErrorBody, 422: ErrorBody, 503: ErrorBody})
def invite_auditor(path: AuditPath, body: InviteRequest) -> Reply:
    """Invite an external auditor: a single-use magic link goes out by mail."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id,
                                 for_update=True)
        invitation = audits.invite_auditor(session, settings(), audit, _actor(),
                                           email=body.email, name=body.name, firm=body.firm)
        return dump(InvitationReply(data=auditor_out(audits.access_of(invitation, [])))), 201


@bp.get("/<audit_id>/auditors", responses={200: AuditorListReply})
def list_auditors(path: AuditPath) -> Reply:
    """Every auditor invited to the audit (one entry per invitation, oldest first) with its
    status and sessions."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        return dump(AuditorListReply(data=[auditor_out(a)
                                           for a in audits.auditors(session, audit)]))


@bp.delete("/<audit_id>/auditors/<auditor_id>", responses={200: InvitationReply})
def revoke_auditor(path: AuditorPath) -> Reply:
    """Withdraw an auditor: the link stops working and every session it opened ends, so the
    auditor's next request is refused (401 `session_revoked`). Recorded in the activity log;
    revoking again changes nothing."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id,
                                 for_update=True)
        access = audits.revoke_auditor(session, audit, _actor(), path.auditor_id)
        return dump(InvitationReply(data=auditor_out(access)))


@bp.get("/<audit_id>/findings", responses={200: FindingListReply})
def list_findings(path: AuditPath) -> Reply:
    """The auditor's findings."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        return dump(FindingListReply(data=[finding_out(f)
                                           for f in audits.findings(session, audit)]))


@bp.get("/<audit_id>/evidence-requests", responses={200: EvidenceRequestListReply})
def list_evidence_requests(path: AuditPath) -> Reply:
    """What the auditor asked for, and the answers given."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        return dump(EvidenceRequestListReply(
            data=[request_out(r) for r in audits.evidence_requests(session, audit)]))


@bp.post("/<audit_id>/evidence-requests/<request_id>/respond",
         responses={200: EvidenceRequestReply, 409: ErrorBody, 422: ErrorBody})
def respond_to_request(path: RequestPath, body: RespondRequest) -> Reply:
    """Answer an evidence request with a URL, a pushed evidence object, or collected evidence
    (`evidence_ids`, frozen with each item's version and SHA-256 as they stand now)."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id,
                                 for_update=True)
        req = audits.respond_to_request(
            session, audit, _actor(), path.request_id,
            evidence_file_url=body.evidence_file_url, pushed_evidence_id=body.pushed_evidence_id,
            evidence_ids=body.evidence_numbers(), sha256=body.sha256, note=body.note)
        return dump(EvidenceRequestReply(data=request_out(req)))


@bp.post("/<audit_id>/report", responses={200: ReportReply})
def generate_report(path: AuditPath) -> Reply:
    """The audit report in Markdown (summary, controls, findings, evidence with SHA-256)."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        report = audits.generate_report(session, audit, _actor())
        return dump(ReportReply(data=ReportOut(report=report.markdown, sha256=report.sha256,
                                               generated_at=report.generated_at)))


@bp.get("/<audit_id>/activity", responses={200: ActivityListReply})
def list_activity(path: AuditPath, query: ActivityQuery) -> Reply:
    """The audit's full activity log, oldest first: who changed what, and when."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        entries = audits.activity(session, audit, limit=query.limit, offset=query.offset)
        return dump(ActivityListReply(data=[activity_out(e) for e in entries]))


@bp.get("/<audit_id>/period", responses={200: PeriodReply, 409: ErrorBody})
def get_period(path: AuditPath, query: PeriodQuery) -> Reply:
    """A type_ii audit's period, per control: coverage, operating time, exceptions, gaps with
    their causes, and the population (409 `period_not_set` until the period is set)."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id)
        return dump(PeriodReply(data=period_answer(session, audit, query.control_id)))


def period_answer(session: Session, audit: Audit, control_ref: str | None) -> PeriodOut:
    """The period as both sides of the audit answer it."""
    controls = [audits.resolve_control(audit, control_ref).id] if control_ref else None
    answer = audit_period(session, audit, timedelta(seconds=settings().freshness_grace_seconds),
                          control_ids=controls)
    assert audit.period_start is not None and audit.period_end is not None
    return period_out(audit.id, audit.period_start, audit.period_end, answer,
                      with_population=control_ref is not None)
