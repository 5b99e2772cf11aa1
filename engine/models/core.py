"""Core models: accounts, connections, sync runs, evidence and control results.

Every customer row carries account_id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id(prefix: str) -> str:
    """A readable random id such as `conn-3f2a...`."""
    return f"{prefix}-{uuid.uuid4().hex}"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class ConnectionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ERROR = "error"
    DISCONNECTED = "disconnected"


class Frequency(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class Trigger(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    CONFIG_CHANGE = "config_change"
    CONNECT = "connect"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class EvidenceStatus(StrEnum):
    PASSING = "passing"
    FAILING = "failing"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


class ChangeKind(StrEnum):
    CREATED = "created"
    CHANGED = "changed"
    CLOSED = "closed"
    REJUDGED = "rejudged"
    """Today's check code judged the stored snapshot again (`evidence rejudge --apply`)."""


class ControlStatus(StrEnum):
    PASSING = "passing"
    FAILING = "failing"
    ERROR = "error"
    NOT_EVALUATED = "not_evaluated"


TS = DateTime(timezone=True)


class Account(Base):
    __tablename__ = "account"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())


class Connection(Base):
    """One account's link to one provider; at most one live per (account, integration)."""

    __tablename__ = "connection"
    __table_args__ = (
        Index("uq_connection_live", "account_id", "integration_id", unique=True,
              postgresql_where=text("status <> 'disconnected'")),
        Index("ix_connection_due", "next_sync_at",
              postgresql_where=text("status = 'active'")),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True,
                                    default=lambda: new_id("conn"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    integration_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[ConnectionStatus] = mapped_column(
        _enum(ConnectionStatus, "connection_status"), default=ConnectionStatus.PENDING)
    status_message: Mapped[str | None] = mapped_column(Text)
    sync_frequency: Mapped[Frequency] = mapped_column(_enum(Frequency, "sync_frequency"),
                                                      default=Frequency.DAILY)
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    next_sync_at: Mapped[datetime | None] = mapped_column(TS)
    last_sync_at: Mapped[datetime | None] = mapped_column(TS)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
    disconnected_at: Mapped[datetime | None] = mapped_column(TS)
    config_changed_at: Mapped[datetime | None] = mapped_column(TS)
    """When a configuration parameter last changed (a fresh sync is due after it)."""


class SyncRun(Base):
    """One sync of one connection; the row is also the lease a worker holds while it runs."""

    __tablename__ = "sync_run"
    __table_args__ = (
        Index("uq_sync_run_open", "connection_id", unique=True,
              postgresql_where=text("status IN ('queued', 'running')")),
        Index("ix_sync_run_connection_queued", "connection_id", "queued_at"),
        Index("ix_sync_run_finished_at", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("run"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connection.id"))
    trigger: Mapped[Trigger] = mapped_column(_enum(Trigger, "sync_trigger"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "sync_status"),
                                              default=RunStatus.QUEUED)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    changed_count: Mapped[int] = mapped_column(Integer, default=0)
    checks_errored: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(TS)
    queued_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())
    enqueued_at: Mapped[datetime | None] = mapped_column(TS)
    started_at: Mapped[datetime | None] = mapped_column(TS)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """How many parts the run fanned out into (0: one worker runs it whole)."""


class SyncPart(Base):
    """A share of a fanned-out run's checks, executed by a task of its own on the worker pool.

    A part is leased like a run (`worker` + `heartbeat_at`); its tally is added into the run by
    whichever part finishes last.
    """

    __tablename__ = "sync_part"
    __table_args__ = (
        UniqueConstraint("run_id", "part_no", name="uq_sync_part"),
        Index("ix_sync_part_open", "status",
              postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("part"))
    run_id: Mapped[str] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    part_no: Mapped[int] = mapped_column(Integer)
    check_ids: Mapped[list[Any]] = mapped_column()
    sharded: Mapped[list[Any]] = mapped_column(default=list)
    """Of check_ids, those run on this part's shard of the resources (merged at the close)."""
    staged: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The sharded checks' outcomes, {check_id: {items, errors, crashed}}, until the close."""
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "sync_status"),
                                              default=RunStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(TS)
    enqueued_at: Mapped[datetime | None] = mapped_column(TS)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    changed_count: Mapped[int] = mapped_column(Integer, default=0)
    checks_errored: Mapped[int] = mapped_column(Integer, default=0)
    checks_crashed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)


class Evidence(Base):
    """The current verdict of one check on one resource of one connection."""

    __tablename__ = "evidence"
    __table_args__ = (
        UniqueConstraint("connection_id", "check_id", "resource_id", name="uq_evidence_resource"),
        Index("ix_evidence_account_status", "account_id", "status"),
        # Pages of a connection's current evidence, read index-only (see engine/integrations.py)
        Index("ix_evidence_current", "connection_id", "check_id", "resource_id",
              postgresql_include=["id", "account_id"], postgresql_where=text("closed_at IS NULL")),
        Index("ix_evidence_current_status", "connection_id", "status", "check_id",
              "resource_id", postgresql_include=["id", "account_id"],
              postgresql_where=text("closed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("connection.id"))
    check_id: Mapped[str] = mapped_column(String(200))
    resource_id: Mapped[str] = mapped_column(Text)
    resource_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[EvidenceStatus] = mapped_column(_enum(EvidenceStatus, "evidence_status"))
    title: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(TS)
    last_changed_at: Mapped[datetime] = mapped_column(TS)
    closed_at: Mapped[datetime | None] = mapped_column(TS)
    run_id: Mapped[str | None] = mapped_column(String(64))
    check_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """The version of the check that reached this content."""
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))
    """The snapshot it was judged from (a manifest's hash when the check read several)."""


class EvidenceVersion(Base):
    """An append-only record of each state an evidence row has had (created, changed, closed)."""

    __tablename__ = "evidence_version"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"),
                                             index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    run_id: Mapped[str | None] = mapped_column(String(64))
    change: Mapped[ChangeKind] = mapped_column(_enum(ChangeKind, "evidence_change"))
    status: Mapped[EvidenceStatus] = mapped_column(_enum(EvidenceStatus, "evidence_status"))
    title: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(TS)
    check_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))


class CheckState(Base):
    """The hash of one check's whole result set: an unchanged re-sync writes only this row."""

    __tablename__ = "check_state"

    connection_id: Mapped[str] = mapped_column(ForeignKey("connection.id"), primary_key=True)
    check_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    set_hash: Mapped[str] = mapped_column(String(64))
    resource_count: Mapped[int] = mapped_column(Integer)
    last_verified_at: Mapped[datetime] = mapped_column(TS)
    run_id: Mapped[str | None] = mapped_column(String(64))
    check_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """The check version and snapshot of the last verification (the evidence rows keep those
    of their last change, so an unchanged re-sync stays one write per check)."""
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64))


class ControlResult(Base):
    """The roll-up of one control for one account across its connections."""

    __tablename__ = "control_result"

    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), primary_key=True)
    framework_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[ControlStatus] = mapped_column(_enum(ControlStatus, "control_status"))
    passing: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    evaluated_at: Mapped[datetime] = mapped_column(TS)


class ControlResultHistory(Base):
    """A control's result each time it changed, for trends."""

    __tablename__ = "control_result_history"
    __table_args__ = (Index("ix_control_history_lookup", "account_id", "framework_id",
                            "control_id", "evaluated_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    framework_id: Mapped[str] = mapped_column(String(32))
    control_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[ControlStatus] = mapped_column(_enum(ControlStatus, "control_status"))
    passing: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    evaluated_at: Mapped[datetime] = mapped_column(TS)
