"""Leases on background tasks that move state but own no run row: verifying a connection,
sending a mail, expiring unverified uploads.

A row is the task's lease, held like a sync run's (`worker` + `heartbeat_at`): `queued` while
a message is on its way, `running` while a worker holds it, deleted once the task is done. The
reaper sends a task again when its heartbeat goes stale or its message looks lost.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.core import TS, Base, RunStatus, _enum


class TaskKind(StrEnum):
    """What a lease is for: the name of the Celery task that does the work."""

    VERIFY = "connections.verify"
    MAIL = "mail.send"
    EXPIRE_UPLOADS = "maintenance.expire_unverified_uploads"


EVERY_UPLOAD = "all"
"""The subject of the one upload-expiry lease (the job covers every account)."""


def lease_id(kind: TaskKind, subject_id: str) -> str:
    return f"{kind.value}:{subject_id}"


class TaskLease(Base):
    """One task's lease: which worker holds it, its heartbeat, and how often holders died."""

    __tablename__ = "task_lease"
    __table_args__ = (Index("ix_task_lease_status", "status"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    """`<kind>:<subject id>` (lease_id)."""
    kind: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "sync_status"),
                                              default=RunStatus.QUEUED)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(TS)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Holders in a row that stopped answering (reset when a holder ends the work normally)."""
    enqueued_at: Mapped[datetime | None] = mapped_column(TS, server_default=func.now())
    """When the task's message was sent (or, for a retry with a countdown, is due)."""
