"""Audits: the audit, its invited auditors, per-control reviews, evidence requests, findings,
an append-only activity log, and the outbound mail that carries invitations.

Every row carries account_id; an auditor reaches rows only through the one audit its token names.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.core import TS, Base, EvidenceStatus, _enum, new_id


def _pg_enum(cls: type[StrEnum], name: str, *, native: bool = True) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e],
                validate_strings=True, native_enum=native, length=40)


class AuditType(StrEnum):
    TYPE_I = "type_i"
    TYPE_II = "type_ii"

    @property
    def label(self) -> str:
        return "Type I" if self is AuditType.TYPE_I else "Type II"


class AuditStatus(StrEnum):
    """The audit's one-way flow: draft → in_progress → evidence_review → findings → complete."""

    DRAFT = "draft"
    IN_PROGRESS = "in_progress"
    EVIDENCE_REVIEW = "evidence_review"
    FINDINGS = "findings"
    COMPLETE = "complete"

    @property
    def next_statuses(self) -> tuple[AuditStatus, ...]:
        """The states this one may move to (none once complete)."""
        order = list(AuditStatus)
        i = order.index(self)
        return tuple(order[i + 1:i + 2])

    @property
    def is_read_only(self) -> bool:
        return self is AuditStatus.COMPLETE


class ReviewStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    NEEDS_EVIDENCE = "needs_evidence"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RequestStatus(StrEnum):
    OPEN = "open"
    RESPONDED = "responded"


class FindingSeverity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    OBSERVATION = "observation"


class FindingStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    ACCEPTED = "accepted"


class ActorKind(StrEnum):
    CUSTOMER = "customer"
    AUDITOR = "auditor"


class ActivityType(StrEnum):
    AUDIT_CREATED = "audit_created"
    AUDIT_UPDATED = "audit_updated"
    STATUS_CHANGED = "status_changed"
    AUDITOR_INVITED = "auditor_invited"
    INVITATION_ACCEPTED = "invitation_accepted"
    CONTROL_REVIEWED = "control_reviewed"
    EVIDENCE_REQUESTED = "evidence_requested"
    EVIDENCE_PROVIDED = "evidence_provided"
    FINDING_CREATED = "finding_created"
    FINDING_UPDATED = "finding_updated"
    REPORT_GENERATED = "report_generated"
    AUDITOR_REVOKED = "auditor_revoked"
    SAMPLE_DRAWN = "sample_drawn"


class AuditorStatus(StrEnum):
    """Where an invited auditor stands: the link is waiting, the auditor is in (a live
    session), the link or every session ran out, or the customer withdrew the access (or a
    newer invitation to the same address replaced it)."""

    INVITED = "invited"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    REVOKED = "revoked"


class RevokeReason(StrEnum):
    """Why an auditor's access ended before it expired."""

    REVOKED = "revoked"
    REPLACED = "replaced"


class MailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Audit(Base):
    """One audit of one account against one framework."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_account_created", "account_id", "created_at"),
        CheckConstraint("period_start IS NULL AND period_end IS NULL OR "
                        "period_start IS NOT NULL AND period_end IS NOT NULL "
                        "AND period_start < period_end AND type = 'type_ii'",
                        name="ck_audit_period"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("audit"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    framework_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[AuditType] = mapped_column(_pg_enum(AuditType, "audit_type"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[AuditStatus] = mapped_column(_pg_enum(AuditStatus, "audit_status"),
                                                default=AuditStatus.DRAFT)
    target_completion: Mapped[datetime | None] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    evidence_review_at: Mapped[datetime | None] = mapped_column(
        TS, comment="when the audit entered evidence_review: the moment its evidence is frozen")
    completed_at: Mapped[datetime | None] = mapped_column(TS)
    period_start: Mapped[date | None] = mapped_column(
        Date, comment="type_ii: the first day of the period under audit (00:00 UTC)")
    period_end: Mapped[date | None] = mapped_column(
        Date, comment="type_ii: the period runs up to 00:00 UTC of this day (exclusive)")


class AuditorInvitation(Base):
    """An external auditor invited by magic link; only the link token's SHA-256 is stored."""

    __tablename__ = "auditor_invitation"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("inv"))
    audit_id: Mapped[str] = mapped_column(ForeignKey("audit.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    firm: Mapped[str | None] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(200))
    mail_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    accepted_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_by: Mapped[str | None] = mapped_column(String(400))


class AuditorSession(Base):
    """The server side of one auditor JWT (its `sid` claim): checked on every auditor request,
    so revoking it withdraws access on the next one; completing the audit ends its writes."""

    __tablename__ = "auditor_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("aus"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    audit_id: Mapped[str] = mapped_column(ForeignKey("audit.id"), index=True)
    invitation_id: Mapped[str] = mapped_column(ForeignKey("auditor_invitation.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    writes_ended_at: Mapped[datetime | None] = mapped_column(
        TS, comment="from then on the session reads only (the audit was complete)")
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_by: Mapped[str | None] = mapped_column(String(400))
    revoked_reason: Mapped[RevokeReason | None] = mapped_column(
        _pg_enum(RevokeReason, "auditor_revoke_reason", native=False))


class AuditControl(Base):
    """The auditor's review of one control; a control without a row is pending."""

    __tablename__ = "audit_control"

    audit_id: Mapped[str] = mapped_column(ForeignKey("audit.id"), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    status: Mapped[ReviewStatus] = mapped_column(_pg_enum(ReviewStatus, "audit_review_status"))
    notes: Mapped[str | None] = mapped_column(Text)
    evidence_sufficient: Mapped[bool | None] = mapped_column(Boolean)
    reviewed_by: Mapped[str | None] = mapped_column(String(400))
    reviewed_at: Mapped[datetime | None] = mapped_column(TS)


class EvidenceRequest(Base):
    """Evidence an auditor asked for, and the customer's answer (a URL, a pushed object, or
    collected evidence)."""

    __tablename__ = "evidence_request"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("evr"))
    audit_id: Mapped[str] = mapped_column(ForeignKey("audit.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    control_id: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    priority: Mapped[Priority] = mapped_column(_pg_enum(Priority, "evidence_request_priority"))
    status: Mapped[RequestStatus] = mapped_column(
        _pg_enum(RequestStatus, "evidence_request_status"), default=RequestStatus.OPEN)
    requested_by: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(TS)
    response_url: Mapped[str | None] = mapped_column(Text)
    response_pushed_id: Mapped[str | None] = mapped_column(String(64))
    response_sha256: Mapped[str | None] = mapped_column(String(64))
    response_sha256_verified: Mapped[bool | None] = mapped_column(
        Boolean, comment="true: the engine hashed the object; false: the customer declared it")
    response_note: Mapped[str | None] = mapped_column(Text)
    responded_by: Mapped[str | None] = mapped_column(String(200))
    responded_at: Mapped[datetime | None] = mapped_column(TS)
    evidence_items: Mapped[list[EvidenceRequestItem]] = relationship(
        order_by="EvidenceRequestItem.position", lazy="selectin", cascade="all, delete-orphan")
    """An answer with collected evidence: the items as they stood when it was given."""


class EvidenceRequestItem(Base):
    """One piece of collected evidence an answer names, frozen at answer time: the evidence
    row and its version then, with their check, resource, status and SHA-256 copied, so a later
    sync (or the evidence's removal) never changes what was answered. Not foreign keys to
    evidence on purpose: the reference outlives whatever happens to the row."""

    __tablename__ = "evidence_request_item"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("evidence_request.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    position: Mapped[int] = mapped_column(Integer)
    evidence_id: Mapped[int] = mapped_column(BigInteger)
    version_id: Mapped[int] = mapped_column(
        BigInteger, comment="the evidence_version current when the answer was given")
    connection_id: Mapped[str] = mapped_column(String(64))
    integration_id: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[str] = mapped_column(String(200))
    resource_id: Mapped[str] = mapped_column(Text)
    resource_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[EvidenceStatus] = mapped_column(_enum(EvidenceStatus, "evidence_status"))
    title: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    collected_at: Mapped[datetime] = mapped_column(
        TS, comment="when the engine recorded this version of the evidence")
    verified_at: Mapped[datetime | None] = mapped_column(
        TS, comment="the check's last verification before the answer (an unchanged re-sync "
                    "verifies without a new version)")


class Finding(Base):
    """An exception the auditor found in one control."""

    __tablename__ = "finding"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("fnd"))
    audit_id: Mapped[str] = mapped_column(ForeignKey("audit.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    control_id: Mapped[str] = mapped_column(String(32))
    severity: Mapped[FindingSeverity] = mapped_column(
        _pg_enum(FindingSeverity, "finding_severity"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    remediation: Mapped[str | None] = mapped_column(Text)
    status: Mapped[FindingStatus] = mapped_column(_pg_enum(FindingStatus, "finding_status"),
                                                  default=FindingStatus.OPEN)
    created_by: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class AuditActivity(Base):
    """Who changed what in an audit, and when. Append-only: the database refuses UPDATE/DELETE."""

    __tablename__ = "audit_activity"
    __table_args__ = (Index("ix_audit_activity_audit", "audit_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    audit_id: Mapped[str] = mapped_column(ForeignKey("audit.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    actor_kind: Mapped[ActorKind] = mapped_column(_pg_enum(ActorKind, "audit_actor_kind"))
    actor: Mapped[str] = mapped_column(String(400))
    type: Mapped[ActivityType] = mapped_column(
        _pg_enum(ActivityType, "audit_activity_type", native=False))
    control_id: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(TS)


class OutboundMail(Base):
    """A message waiting for (or sent by) the `mail.send` task; its body is sealed with the vault
    because it may carry a magic link, and is erased once the message has been handed to SMTP."""

    __tablename__ = "outbound_mail"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("mail"))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("account.id"))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[MailStatus] = mapped_column(_pg_enum(MailStatus, "mail_status"),
                                               default=MailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(TS)
