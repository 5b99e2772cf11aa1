"""The auditor portal (seed 001): request and response models of /api/v1/auditor/*; the audit,
findings and evidence requests answer the same shapes as the customer side
(api/schemas/audits.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.fields import Flag
from api.schemas.audits import (
    ID_PATTERN,
    ControlRef,
    EvidenceRequestOut,
    Id,
    RequiredText,
    Text,
    Title,
)
from engine.audits import ControlOverview, ControlResultAt, EvidenceItem, PushedItem
from engine.frameworks import Control
from engine.models import ControlStatus, EvidenceStatus
from engine.models.audit import (
    AuditControl,
    AuditStatus,
    FindingSeverity,
    FindingStatus,
    Priority,
    ReviewStatus,
)

# --- requests ------------------------------------------------------------------------------

class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN,
                       description="the token from the invitation mail")


class ControlPath(BaseModel):
    control_id: ControlRef


class FindingPath(BaseModel):
    finding_id: Id


class ReviewRequest(BaseModel):
    """A control's verdict; notes and evidence_sufficient left out keep their value, null
    clears them."""

    model_config = ConfigDict(extra="forbid")

    status: ReviewStatus
    auditor_notes: Text | None = None
    evidence_sufficient: Flag | None = None


class EvidenceRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control_id: ControlRef
    description: RequiredText
    priority: Priority = Priority.MEDIUM


class FindingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control_id: ControlRef
    severity: FindingSeverity
    title: Title
    description: RequiredText
    remediation: Text | None = None


class FindingUpdate(BaseModel):
    """Only the fields sent change; `remediation` null clears it."""

    model_config = ConfigDict(extra="forbid")

    status: FindingStatus | None = None
    severity: FindingSeverity | None = None
    title: Title | None = None
    description: RequiredText | None = None
    remediation: Text | None = None
    control_id: ControlRef | None = None


# --- responses -----------------------------------------------------------------------------

class AcceptedAudit(BaseModel):
    id: str
    title: str
    framework_id: str
    status: AuditStatus


class AcceptOut(BaseModel):
    token: str = Field(description="the auditor JWT: `Authorization: Bearer <token>` on "
                       "/api/v1/auditor/*")
    expires_at: datetime
    session_id: str = Field(description="the server-side session the token names (the "
                            "customer lists and revokes it under /api/v1/audits/{id}/auditors)")
    audit: AcceptedAudit


class AcceptReply(BaseModel):
    data: AcceptOut


class ControlRefOut(BaseModel):
    id: str
    key: str
    framework_id: str
    title: str
    group: str


class ControlReviewOut(BaseModel):
    control_id: str
    status: ReviewStatus
    auditor_notes: str | None
    evidence_sufficient: bool | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class ControlReviewReply(BaseModel):
    data: ControlReviewOut


class ResultOut(BaseModel):
    """The control's automated result, from the evidence in the audit's (frozen) view."""

    status: ControlStatus
    passing: int
    failing: int
    errors: int
    total: int


class ControlOut(ControlRefOut):
    review: ControlReviewOut
    latest_result: ResultOut
    evidence_count: int = Field(description="collected items in the audit's view")
    pushed_evidence_count: int
    newer_evidence_count: int = Field(description="items collected, changed or pushed after "
                                      "the evidence was frozen (not part of the review)")
    open_requests: int
    findings: int


class ControlListOut(BaseModel):
    evidence_frozen_at: datetime | None
    controls: list[ControlOut]


class ControlListReply(BaseModel):
    data: ControlListOut


class NewerOut(BaseModel):
    status: EvidenceStatus | None
    sha256: str
    recorded_at: datetime
    removed: bool


class CollectedOut(BaseModel):
    id: str
    version_id: str | None = Field(description="the evidence_version shown (the one valid "
                                   "when the evidence was frozen)")
    check_id: str
    resource_id: str
    resource_type: str
    integration_id: str
    status: EvidenceStatus
    title: str
    sha256: str
    recorded_at: datetime
    data: dict[str, Any] | None
    changed_since_freeze: bool
    newer: NewerOut | None = Field(description="what the item became after the freeze")


class PushedOut(BaseModel):
    id: str
    filename: str
    content_type: str
    sha256: str
    size: int | None
    verified_at: datetime | None
    linked_at: datetime


class ControlEvidenceOut(BaseModel):
    control: ControlRefOut
    review: ControlReviewOut
    latest_result: ResultOut
    evidence_frozen_at: datetime | None
    collected: list[CollectedOut]
    pushed: list[PushedOut]
    newer: list[CollectedOut] = Field(description="collected after the freeze: shown, not "
                                      "reviewed")
    newer_pushed: list[PushedOut]
    requests: list[EvidenceRequestOut]


class ControlEvidenceReply(BaseModel):
    data: ControlEvidenceOut


# --- engine → response ---------------------------------------------------------------------

def ref_out(c: Control) -> ControlRefOut:
    return ControlRefOut(id=c.id, key=c.key, framework_id=c.framework_id, title=c.title,
                         group=c.group)


def review_out(control_id: str, r: AuditControl | None) -> ControlReviewOut:
    if r is None:
        return ControlReviewOut(control_id=control_id, status=ReviewStatus.PENDING,
                                auditor_notes=None, evidence_sufficient=None, reviewed_by=None,
                                reviewed_at=None)
    return ControlReviewOut(control_id=control_id, status=r.status, auditor_notes=r.notes,
                            evidence_sufficient=r.evidence_sufficient,
                            reviewed_by=r.reviewed_by, reviewed_at=r.reviewed_at)


def result_out(r: ControlResultAt) -> ResultOut:
    return ResultOut(status=r.status, passing=r.passing, failing=r.failing, errors=r.errored,
                     total=r.total)


def collected_out(i: EvidenceItem) -> CollectedOut:
    newer = None
    if i.newer is not None:
        newer = NewerOut(status=i.newer.status, sha256=i.newer.sha256,
                         recorded_at=i.newer.recorded_at, removed=i.newer.closed)
    return CollectedOut(id=f"ev-{i.evidence_id}",
                        version_id=f"evv-{i.version_id}" if i.version_id else None,
                        check_id=i.check_id, resource_id=i.resource_id,
                        resource_type=i.resource_type, integration_id=i.integration_id,
                        status=i.status, title=i.title, sha256=i.sha256,
                        recorded_at=i.recorded_at, data=i.data,
                        changed_since_freeze=i.newer is not None, newer=newer)


def pushed_out(p: PushedItem) -> PushedOut:
    return PushedOut(id=p.id, filename=p.filename, content_type=p.content_type, sha256=p.sha256,
                     size=p.size, verified_at=p.verified_at, linked_at=p.linked_at)


def control_out(o: ControlOverview) -> ControlOut:
    return ControlOut(**ref_out(o.control).model_dump(),
                      review=review_out(o.control.id, o.review),
                      latest_result=result_out(o.result), evidence_count=o.evidence_count,
                      pushed_evidence_count=o.pushed_count,
                      newer_evidence_count=o.newer_count, open_requests=o.open_requests,
                      findings=o.findings)
