"""Audits, customer side (seed 001): create and follow audits, invite auditors, answer evidence
requests, read findings, activity and the report. Bodies are `{"data": ...}` as in the seed.

The request and response models of the auditor surface (api/auditor.py) live here too, so both
sides of an audit serialise the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import authenticate, principal, settings
from api.errors import ErrorBody
from api.fields import When
from api.schemas import Reply
from engine import audits
from engine.audits import KEEP, Actor, AuditChanges
from engine.db import unit_of_work
from engine.models.audit import (
    Audit,
    AuditActivity,
    AuditorSession,
    AuditorStatus,
    AuditStatus,
    AuditType,
    EvidenceRequest,
    Finding,
    FindingSeverity,
    FindingStatus,
    Priority,
    RequestStatus,
    RevokeReason,
)

# --- field types ---------------------------------------------------------------------------

ID_PATTERN = r"^[A-Za-z0-9._-]+$"
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"          # one line: no control characters
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # text: tabs and line breaks allowed
EMAIL_PATTERN = r"^[^@\s,;<>\"()\[\]\\\x00-\x1f\x7f]+@[^@\s,;<>\"()\[\]\\\x00-\x1f\x7f]+$"
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]+$"
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
ControlRef = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN,
                                  description="`CC6.1`, or `soc2-cc6.1`")]
Title = Annotated[str, Field(min_length=1, max_length=300, pattern=LINE_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=LINE_PATTERN)]
Text = Annotated[str, Field(max_length=20000, pattern=TEXT_PATTERN)]
RequiredText = Annotated[str, Field(min_length=1, max_length=20000, pattern=TEXT_PATTERN)]


# --- requests ------------------------------------------------------------------------------

class AuditPath(BaseModel):
    audit_id: Id


class RequestPath(AuditPath):
    request_id: Id


class AuditorPath(AuditPath):
    auditor_id: Id = Field(description="the auditor's `id` (its invitation, `inv-…`)")


class AuditCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    framework_id: str = Field(min_length=1, max_length=32, pattern=ID_PATTERN,
                              description="framework to audit against", examples=["soc2"])
    type: AuditType
    title: Title
    description: Text | None = None
    target_completion: When | None = Field(None, description="target date (ISO 8601)")


class AuditUpdate(BaseModel):
    """Only the fields sent change; `description` or `target_completion` null clears them."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Text | None = None
    status: AuditStatus | None = Field(
        None, description="one step along draft → in_progress → evidence_review → findings "
        "→ complete (else 409 with the allowed next status)")
    target_completion: When | None = None


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN,
                       examples=["auditor@firm.com"])
    name: Name
    firm: Name | None = None


class RespondRequest(BaseModel):
    """A URL (optionally with the SHA-256 you computed for its file), or a pushed evidence
    object (`evo-…` or its SHA-256) whose hash the engine verified."""

    model_config = ConfigDict(extra="forbid")

    evidence_file_url: str | None = Field(None, max_length=2000, pattern=URL_PATTERN)
    pushed_evidence_id: str | None = Field(None, min_length=1, max_length=100,
                                           pattern=ID_PATTERN)
    sha256: str | None = Field(None, pattern=SHA256_PATTERN,
                               description="with a URL: the file's SHA-256 as you computed it")
    note: Text | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> RespondRequest:
        if (self.evidence_file_url is None) == (self.pushed_evidence_id is None):
            raise ValueError("send exactly one of evidence_file_url or pushed_evidence_id")
        if self.sha256 is not None and self.pushed_evidence_id is not None:
            raise ValueError("sha256 goes with evidence_file_url; a pushed object's hash is "
                             "the one the engine verified")
        return self


class ActivityQuery(BaseModel):
    limit: int = Field(500, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)


# --- responses -----------------------------------------------------------------------------

class ProgressOut(BaseModel):
    total_controls: int
    reviewed: int
    passed: int
    failed: int
    needs_evidence: int
    pending: int


class ActivityOut(BaseModel):
    id: int
    type: str
    actor_kind: str
    actor: str
    control_id: str | None
    status: str | None
    at: datetime
    details: dict[str, Any]


class AuditorSessionOut(BaseModel):
    """One auditor session (the server side of an auditor token; never the token itself)."""

    id: str
    status: Literal["active", "expired", "revoked"]
    can_write: bool = Field(description="false once the audit is complete: the session reads "
                            "the audit and its report, and changes nothing")
    created_at: datetime
    expires_at: datetime
    writes_ended_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoked_reason: RevokeReason | None = Field(
        description="`revoked`: the customer withdrew it; `replaced`: a newer invitation to "
        "the same address ended it")


class AuditorOut(BaseModel):
    id: str = Field(description="the invitation id; `DELETE …/auditors/{id}` revokes it")
    email: str
    name: str
    firm: str | None
    status: AuditorStatus = Field(
        description="`invited`: the link is unused; `accepted`: a session is live; `expired`: "
        "the link or every session ran out; `revoked`: withdrawn, or replaced by a newer "
        "invitation")
    invited_at: datetime
    expires_at: datetime = Field(description="when the invitation link stops working")
    accepted_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    sessions: list[AuditorSessionOut]


class AuditOut(BaseModel):
    id: str
    framework_id: str
    type: AuditType
    title: str
    description: str | None
    status: AuditStatus
    allowed_next_statuses: list[AuditStatus]
    target_completion: datetime | None
    created_at: datetime
    updated_at: datetime
    evidence_frozen_at: datetime | None = Field(
        description="when the audit entered evidence_review: evidence collected later is "
        "shown as newer, not mixed in")
    completed_at: datetime | None
    progress: ProgressOut


class AuditDetailOut(AuditOut):
    recent_activity: list[ActivityOut]
    auditors: list[AuditorOut]


class AuditReply(BaseModel):
    data: AuditOut


class AuditListReply(BaseModel):
    data: list[AuditOut]


class AuditDetailReply(BaseModel):
    data: AuditDetailOut


class InvitationReply(BaseModel):
    data: AuditorOut


class AuditorListReply(BaseModel):
    data: list[AuditorOut]


class FindingOut(BaseModel):
    id: str
    audit_id: str
    control_id: str
    severity: FindingSeverity
    title: str
    description: str
    remediation: str | None
    status: FindingStatus
    created_by: str
    created_at: datetime
    updated_at: datetime


class FindingReply(BaseModel):
    data: FindingOut


class FindingListReply(BaseModel):
    data: list[FindingOut]


class ResponseOut(BaseModel):
    evidence_file_url: str | None
    pushed_evidence_id: str | None
    sha256: str | None
    sha256_verified: bool | None = Field(
        description="true: the engine hashed the pushed object; false: declared by the customer")
    note: str | None
    responded_by: str | None
    responded_at: datetime | None


class EvidenceRequestOut(BaseModel):
    id: str
    audit_id: str
    control_id: str
    description: str
    priority: Priority
    status: RequestStatus
    requested_by: str
    created_at: datetime
    response: ResponseOut | None


class EvidenceRequestReply(BaseModel):
    data: EvidenceRequestOut


class EvidenceRequestListReply(BaseModel):
    data: list[EvidenceRequestOut]


class ActivityListReply(BaseModel):
    data: list[ActivityOut]


class ReportOut(BaseModel):
    report: str
    format: Literal["markdown"] = "markdown"
    sha256: str = Field(description="SHA-256 of the report text, also in the activity log")
    generated_at: datetime


class ReportReply(BaseModel):
    data: ReportOut


# --- engine → response ---------------------------------------------------------------------

def progress_out(p: audits.Progress) -> ProgressOut:
    return ProgressOut(total_controls=p.total_controls, reviewed=p.reviewed, passed=p.passed,
                       failed=p.failed, needs_evidence=p.needs_evidence, pending=p.pending)


def audit_out(a: Audit, p: audits.Progress) -> AuditOut:
    return AuditOut(id=a.id, framework_id=a.framework_id, type=a.type, title=a.title,
                    description=a.description, status=a.status,
                    allowed_next_statuses=list(a.status.next_statuses),
                    target_completion=a.target_completion, created_at=a.created_at,
                    updated_at=a.updated_at, evidence_frozen_at=a.evidence_review_at,
                    completed_at=a.completed_at, progress=progress_out(p))


def activity_out(e: AuditActivity) -> ActivityOut:
    status = e.details.get("status")
    return ActivityOut(id=e.id, type=e.type.value, actor_kind=e.actor_kind.value, actor=e.actor,
                       control_id=e.control_id, status=status if isinstance(status, str) else None,
                       at=e.at, details=e.details)


def auditor_session_out(s: AuditorSession, now: datetime) -> AuditorSessionOut:
    status: Literal["active", "expired", "revoked"] = (
        "revoked" if s.revoked_at else "expired" if s.expires_at <= now else "active")
    return AuditorSessionOut(id=s.id, status=status, can_write=s.writes_ended_at is None,
                             created_at=s.created_at, expires_at=s.expires_at,
                             writes_ended_at=s.writes_ended_at, revoked_at=s.revoked_at,
                             revoked_by=s.revoked_by, revoked_reason=s.revoked_reason)


def auditor_out(a: audits.AuditorAccess) -> AuditorOut:
    i = a.invitation
    return AuditorOut(id=i.id, email=i.email, name=i.name, firm=i.firm, status=a.status,
                      invited_at=i.created_at, expires_at=i.expires_at,
                      accepted_at=i.accepted_at, revoked_at=i.revoked_at,
                      revoked_by=i.revoked_by,
                      sessions=[auditor_session_out(s, a.checked_at) for s in a.sessions])


def detail_out(d: audits.AuditDetail) -> AuditDetailOut:
    return AuditDetailOut(**audit_out(d.audit, d.progress).model_dump(),
                          recent_activity=[activity_out(e) for e in d.recent_activity],
                          auditors=[auditor_out(i) for i in d.auditors])


def finding_out(f: Finding) -> FindingOut:
    return FindingOut(id=f.id, audit_id=f.audit_id, control_id=f.control_id,
                      severity=f.severity, title=f.title, description=f.description,
                      remediation=f.remediation, status=f.status, created_by=f.created_by,
                      created_at=f.created_at, updated_at=f.updated_at)


def request_out(r: EvidenceRequest) -> EvidenceRequestOut:
    response = None
    if r.responded_at is not None:
        response = ResponseOut(evidence_file_url=r.response_url,
                               pushed_evidence_id=r.response_pushed_id,
                               sha256=r.response_sha256,
                               sha256_verified=r.response_sha256_verified,
                               note=r.response_note, responded_by=r.responded_by,
                               responded_at=r.responded_at)
    return EvidenceRequestOut(id=r.id, audit_id=r.audit_id, control_id=r.control_id,
                              description=r.description, priority=r.priority, status=r.status,
                              requested_by=r.requested_by, created_at=r.created_at,
                              response=response)


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# --- routes --------------------------------------------------------------------------------

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
            target_completion=body.target_completion)
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
        status=body.status if body.status is not None else KEEP)
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
    """Answer an evidence request with a URL or a pushed evidence object."""
    with unit_of_work(settings()) as session:
        audit = audits.get_audit(session, principal().account_id, path.audit_id,
                                 for_update=True)
        req = audits.respond_to_request(
            session, audit, _actor(), path.request_id,
            evidence_file_url=body.evidence_file_url, pushed_evidence_id=body.pushed_evidence_id,
            sha256=body.sha256, note=body.note)
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
