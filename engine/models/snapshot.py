"""Stored snapshots: what each collector read, content-addressed, and when each was current.

`collector_snapshot` holds each distinct snapshot once per account (canonical JSON, zstandard,
keyed by its SHA-256; the bytes in Postgres or, with object storage configured, under a key
there). `snapshot_seen` says which snapshot each (connection, collector, scope) had from when to
when: a row is opened when the hash changes and closed by the next change, so an unchanged
re-sync writes nothing here. `judgement` records a verdict superseded by `evidence rejudge
--apply`: today's check code on a past snapshot, with the check versions of both.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import TS, Base, EvidenceStatus, _enum


class SnapshotKind(StrEnum):
    SNAPSHOT = "snapshot"
    """What one collector read for one scope."""
    MANIFEST = "manifest"
    """The set of snapshots one check judged, when it read more than one (its pieces)."""


class CollectorSnapshot(Base):
    """One distinct snapshot of an account: stored once, whatever reads it."""

    __tablename__ = "collector_snapshot"

    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[SnapshotKind] = mapped_column(_enum(SnapshotKind, "snapshot_kind"))
    size: Mapped[int] = mapped_column(BigInteger)
    """Bytes of the canonical JSON."""
    stored_size: Mapped[int] = mapped_column(BigInteger)
    """Bytes after zstandard (what the database or the object store holds)."""
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    object_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS)


class SnapshotSeen(Base):
    """Which snapshot one (connection, collector, scope) had from `valid_from` to `valid_to`
    (None: still current)."""

    __tablename__ = "snapshot_seen"
    __table_args__ = (
        Index("uq_snapshot_seen_current", "connection_id", "collector", "scope", unique=True,
              postgresql_where=text("valid_to IS NULL")),
        Index("ix_snapshot_seen_lookup", "connection_id", "collector", "valid_from"),
        Index("ix_snapshot_seen_sha", "account_id", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("connection.id"))
    collector: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(TS)
    valid_to: Mapped[datetime | None] = mapped_column(TS)
    run_id: Mapped[str | None] = mapped_column(String(64))


class Judgement(Base):
    """A verdict judged again: today's check code on the snapshots of one validity interval
    (`valid_from` to `valid_to`) superseding the verdict recorded then. The old verdict stays
    in evidence_version; this row names both and the check versions that reached them."""

    __tablename__ = "judgement"
    __table_args__ = (
        Index("ix_judgement_lookup", "connection_id", "check_id", "valid_from"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("connection.id"))
    check_id: Mapped[str] = mapped_column(String(200))
    resource_id: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(TS)
    valid_to: Mapped[datetime | None] = mapped_column(TS)
    old_status: Mapped[EvidenceStatus | None] = mapped_column(
        _enum(EvidenceStatus, "evidence_status"))
    new_status: Mapped[EvidenceStatus | None] = mapped_column(
        _enum(EvidenceStatus, "evidence_status"))
    old_check_version: Mapped[int | None] = mapped_column(Integer)
    new_check_version: Mapped[int] = mapped_column(Integer)
    snapshot_sha256: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(Text)
    judged_at: Mapped[datetime] = mapped_column(TS)
