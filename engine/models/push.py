"""Pushed evidence: scoped API keys, objects customers upload to storage, and their lineage.

An `evidence_object` is one upload: a presigned PUT to `upload_key`, then verified (SHA-256 and
size recomputed by the engine) and copied to a content-addressed `stored_key` that no presigned
URL can write. An account stores each content once: a second verified upload of the same bytes
is a `duplicate` of the first. `evidence_lineage` ties an object to a control (and optionally an
assessment), unique so that linking twice answers the first link.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import TS, Base, _enum, new_id


class Scope(StrEnum):
    """What an API key may do; `read:*` / `write:*` cover every read / write scope."""

    READ_EVIDENCE = "read:evidence"
    WRITE_EVIDENCE = "write:evidence"
    READ_ALL = "read:*"
    WRITE_ALL = "write:*"


class ObjectStatus(StrEnum):
    PENDING = "pending"          # upload URL issued, not verified yet
    VERIFIED = "verified"        # hashed by the engine, stored under its content address
    DUPLICATE = "duplicate"      # same bytes as an object the account already holds
    MISMATCHED = "mismatched"    # stored bytes did not match the expected hash (deleted)
    REJECTED = "rejected"        # larger than the maximum size (deleted)
    EXPIRED = "expired"          # not verified within the verify window (object deleted)


UNVERIFIED = (ObjectStatus.PENDING, ObjectStatus.MISMATCHED, ObjectStatus.REJECTED)
"""Uploads still waiting for a (new) PUT and verify; they expire after the verify window."""


class ApiKey(Base):
    """A customer-managed key `sk-…`; only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("key"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)


class EvidenceObject(Base):
    """One file a customer pushed: where it was uploaded, what it hashed to, who sent it."""

    __tablename__ = "evidence_object"
    __table_args__ = (
        Index("uq_evidence_object_content", "account_id", "sha256", unique=True,
              postgresql_where=text("status = 'verified'")),
        Index("ix_evidence_object_account_created", "account_id", "created_at"),
        Index("ix_evidence_object_unverified", "created_at",
              postgresql_where=text("status IN ('pending', 'mismatched', 'rejected')")),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("evo"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    upload_key: Mapped[str] = mapped_column(Text, unique=True)
    stored_key: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    framework_id: Mapped[str | None] = mapped_column(String(32))
    control_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[ObjectStatus] = mapped_column(_enum(ObjectStatus, "evidence_object_status"),
                                                 default=ObjectStatus.PENDING)
    expected_sha256: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    duplicate_of: Mapped[str | None] = mapped_column(ForeignKey("evidence_object.id"))
    uploaded_by_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_key.id"))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
    upload_expires_at: Mapped[datetime] = mapped_column(TS)
    verified_at: Mapped[datetime | None] = mapped_column(TS)


class EvidenceLineage(Base):
    """An evidence object linked to a control (and optionally an assessment)."""

    __tablename__ = "evidence_lineage"
    __table_args__ = (
        UniqueConstraint("evidence_object_id", "framework_id", "control_id", "assessment_id",
                         name="uq_evidence_lineage_link", postgresql_nulls_not_distinct=True),
        Index("ix_evidence_lineage_control", "account_id", "framework_id", "control_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("lin"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    evidence_object_id: Mapped[str] = mapped_column(ForeignKey("evidence_object.id"))
    framework_id: Mapped[str] = mapped_column(String(32))
    control_id: Mapped[str] = mapped_column(String(32))
    assessment_id: Mapped[str | None] = mapped_column(String(64))
    linked_by_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_key.id"))
    linked_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
