"""Audits, customer side (seed 001): request and response models, `{"data": ...}` bodies as in
the seed, and the field types both sides of an audit share (api/schemas/auditor.py uses them,
so both sides serialise an audit, a finding and an evidence request the same way)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from api.fields import When
from engine.audits import MAX_ANSWER_ITEMS, AuditDetail, AuditorAccess, Progress
from engine.models.audit import (
    Audit,
    AuditActivity,
    AuditorSession,
    AuditorStatus,
    AuditStatus,
    AuditType,
    EvidenceRequest,
    EvidenceRequestItem,
    Finding,
    FindingSeverity,
    FindingStatus,
    Priority,
    RequestStatus,
    RevokeReason,
)
from engine.models.core import EvidenceStatus

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


def _iso_day(value: Any) -> Any:
    """Only `YYYY-MM-DD` is a day here (pydantic would take a number as seconds since 1970,
    or a date-time cut to its day)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be an ISO 8601 day, e.g. 2026-01-01")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
"""An ISO 8601 day (`2026-01-01`), never a number or a date-time."""
PERIOD_START = ("type_ii (required at creation): the first day of the period under audit "
                "(from 00:00 UTC); send with period_end")
PERIOD_END = ("type_ii: the period runs up to 00:00 UTC of this day, so 2026-07-01 ends it "
              "with 30 June; after period_start")


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
    period_start: Day | None = Field(None, description=PERIOD_START)
    period_end: Day | None = Field(None, description=PERIOD_END)


class AuditUpdate(BaseModel):
    """Only the fields sent change; `description` or `target_completion` null clears them."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Text | None = None
    status: AuditStatus | None = Field(
        None, description="one step along draft → in_progress → evidence_review → findings "
        "→ complete (else 409 with the allowed next status)")
    target_completion: When | None = None
    period_start: Day | None = Field(None, description=PERIOD_START)
    period_end: Day | None = Field(None, description=PERIOD_END)


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN,
                       examples=["auditor@firm.com"])
    name: Name
    firm: Name | None = None


EvidenceId = Annotated[str, Field(min_length=4, max_length=21, pattern=r"^ev-[1-9][0-9]{0,17}$",
                                  description="collected evidence, `ev-…` as the evidence "
                                  "list and the auditor's view name it",
                                  examples=["ev-42"])]


class RespondRequest(BaseModel):
    """A URL (optionally with the SHA-256 you computed for its file), a pushed evidence
    object (`evo-…` or its SHA-256) whose hash the engine verified, or collected evidence of
    this account (`evidence_ids`: each item is recorded with its current version and SHA-256,
    so a later sync does not change the answer)."""

    model_config = ConfigDict(extra="forbid")

    evidence_file_url: str | None = Field(None, max_length=2000, pattern=URL_PATTERN)
    pushed_evidence_id: str | None = Field(None, min_length=1, max_length=100,
                                           pattern=ID_PATTERN)
    evidence_ids: list[EvidenceId] | None = Field(
        None, min_length=1, max_length=MAX_ANSWER_ITEMS,
        description=f"1 to {MAX_ANSWER_ITEMS} pieces of collected evidence, each named once")
    sha256: str | None = Field(None, pattern=SHA256_PATTERN,
                               description="with a URL: the file's SHA-256 as you computed it")
    note: Text | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> RespondRequest:
        sent = (self.evidence_file_url, self.pushed_evidence_id, self.evidence_ids)
        if sum(a is not None for a in sent) != 1:
            raise ValueError("send exactly one of evidence_file_url, pushed_evidence_id or "
                             "evidence_ids")
        if self.sha256 is not None and self.evidence_file_url is None:
            raise ValueError("sha256 goes with evidence_file_url; a pushed object's or "
                             "collected evidence's hash is the one the engine computed")
        if self.evidence_ids is not None and len(set(self.evidence_ids)) != len(
                self.evidence_ids):
            raise ValueError("name each piece of evidence once in evidence_ids")
        return self

    def evidence_numbers(self) -> list[int] | None:
        """`evidence_ids` as the engine numbers evidence."""
        return None if self.evidence_ids is None else [int(e[3:]) for e in self.evidence_ids]


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
    period_start: date | None = Field(description="type_ii: the period's first day")
    period_end: date | None = Field(description="type_ii: the period ends at 00:00 UTC of "
                                    "this day")
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


class AnsweredEvidenceOut(BaseModel):
    """Collected evidence an answer names, as it stood when the answer was given."""

    evidence_id: str
    version_id: str = Field(description="the evidence_version current at answer time")
    integration_id: str
    check_id: str
    resource_id: str
    resource_type: str
    status: EvidenceStatus
    title: str
    sha256: str = Field(description="SHA-256 of that version's content")
    collected_at: datetime = Field(description="when the engine recorded that version")
    verified_at: datetime | None = Field(
        description="the check's last run before the answer that found it unchanged")


class ResponseOut(BaseModel):
    evidence_file_url: str | None
    pushed_evidence_id: str | None
    collected_evidence: list[AnsweredEvidenceOut] = Field(
        description="with `evidence_ids`: the items, frozen at answer time")
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

def progress_out(p: Progress) -> ProgressOut:
    return ProgressOut(total_controls=p.total_controls, reviewed=p.reviewed, passed=p.passed,
                       failed=p.failed, needs_evidence=p.needs_evidence, pending=p.pending)


def audit_out(a: Audit, p: Progress) -> AuditOut:
    return AuditOut(id=a.id, framework_id=a.framework_id, type=a.type, title=a.title,
                    description=a.description, status=a.status,
                    allowed_next_statuses=list(a.status.next_statuses),
                    target_completion=a.target_completion, created_at=a.created_at,
                    updated_at=a.updated_at, evidence_frozen_at=a.evidence_review_at,
                    completed_at=a.completed_at, period_start=a.period_start,
                    period_end=a.period_end, progress=progress_out(p))


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


def auditor_out(a: AuditorAccess) -> AuditorOut:
    i = a.invitation
    return AuditorOut(id=i.id, email=i.email, name=i.name, firm=i.firm, status=a.status,
                      invited_at=i.created_at, expires_at=i.expires_at,
                      accepted_at=i.accepted_at, revoked_at=i.revoked_at,
                      revoked_by=i.revoked_by,
                      sessions=[auditor_session_out(s, a.checked_at) for s in a.sessions])


def detail_out(d: AuditDetail) -> AuditDetailOut:
    return AuditDetailOut(**audit_out(d.audit, d.progress).model_dump(),
                          recent_activity=[activity_out(e) for e in d.recent_activity],
                          auditors=[auditor_out(i) for i in d.auditors])


def finding_out(f: Finding) -> FindingOut:
    return FindingOut(id=f.id, audit_id=f.audit_id, control_id=f.control_id,
                      severity=f.severity, title=f.title, description=f.description,
                      remediation=f.remediation, status=f.status, created_by=f.created_by,
                      created_at=f.created_at, updated_at=f.updated_at)


def answered_out(i: EvidenceRequestItem) -> AnsweredEvidenceOut:
    return AnsweredEvidenceOut(evidence_id=f"ev-{i.evidence_id}", version_id=f"evv-{i.version_id}",
                               integration_id=i.integration_id, check_id=i.check_id,
                               resource_id=i.resource_id, resource_type=i.resource_type,
                               status=i.status, title=i.title, sha256=i.content_hash,
                               collected_at=i.collected_at, verified_at=i.verified_at)


def request_out(r: EvidenceRequest) -> EvidenceRequestOut:
    response = None
    if r.responded_at is not None:
        response = ResponseOut(evidence_file_url=r.response_url,
                               pushed_evidence_id=r.response_pushed_id,
                               collected_evidence=[answered_out(i) for i in r.evidence_items],
                               sha256=r.response_sha256,
                               sha256_verified=r.response_sha256_verified,
                               note=r.response_note, responded_by=r.responded_by,
                               responded_at=r.responded_at)
    return EvidenceRequestOut(id=r.id, audit_id=r.audit_id, control_id=r.control_id,
                              description=r.description, priority=r.priority, status=r.status,
                              requested_by=r.requested_by, created_at=r.created_at,
                              response=response)

