"""The tamper-evident ledger: a per-account hash chain, its head, signed checkpoints, the key.

`ledger_entry` refuses UPDATE, DELETE and TRUNCATE (triggers in migration 0012_ledger). The
ledger tables carry no foreign key to `account`: the record outlives what it records.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import TS, Base, new_id


class LedgerKind(StrEnum):
    """What an entry records."""

    EVIDENCE_VERSIONS = "evidence_versions"
    """One (run, check) batch of evidence versions, by id range and digest."""
    JUDGEMENT = "judgement"
    """The control results a recompute changed."""
    PUSHED_LINK = "pushed_link"
    RUN_COMPLETED = "run_completed"
    AUDIT_STATUS = "audit_status"
    AUDIT_REVIEW = "audit_review"
    FINDING = "finding"
    AUDIT_ACTIVITY = "audit_activity"
    """Any other change an audit's activity log records (invitations, requests, edits)."""


class LedgerEntry(Base):
    """One link of an account's chain: entry_sha256 covers prev_sha256 and content_sha256."""

    __tablename__ = "ledger_entry"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(TS)
    content: Mapped[str] = mapped_column(Text)
    """The canonical JSON recorded, as hashed (text, so it hashes back byte for byte)."""
    content_sha256: Mapped[str] = mapped_column(String(64))
    prev_sha256: Mapped[str] = mapped_column(String(64))
    entry_sha256: Mapped[str] = mapped_column(String(64))


class LedgerHead(Base):
    """The chain's last entry per account; its row lock serializes an account's appends."""

    __tablename__ = "ledger_head"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(TS)


class LedgerCheckpoint(Base):
    """A signed statement of an account's chain: its length and head hash at `signed_at`."""

    __tablename__ = "ledger_checkpoint"
    __table_args__ = (Index("ix_ledger_checkpoint_account", "account_id", "signed_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("lcp"))
    account_id: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    head_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(TS)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    """Ed25519 over the canonical JSON of (account_id, length, head_sha256, signed_at, key_id),
    base64."""
    reason: Mapped[str] = mapped_column(String(40))
    audit_id: Mapped[str | None] = mapped_column(String(64))


class LedgerSigningKey(Base):
    """The deployment's generated Ed25519 key, sealed with the vault (when none is configured)."""

    __tablename__ = "ledger_signing_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TS)
