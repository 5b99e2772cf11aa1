"""Leases in Postgres: the one mechanism that keeps a task's work single and recoverable.

A leased row (a sync run, a part of one, or a `task_lease` of a verify, a mail or the upload
expiry) names the worker that holds it and a heartbeat that worker's thread renews. A second
delivery of the same task (a Redis visibility-timeout replay) finds the lease fresh and leaves;
one that finds it stale takes over. Every write of the work is fenced by `Lease.renew`, so a
worker that lost its lease writes nothing. A holder killed outright stops beating: the reaper
(engine/maintenance.py) sends the task again once the heartbeat is `lease_stale_seconds` old,
or gives up after `max_run_attempts`, instead of waiting for the broker's hour.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from engine.db import Job, rowcount
from engine.models import RunStatus, SyncPart, SyncRun
from engine.models.lease import EVERY_UPLOAD, TaskKind, TaskLease, lease_id
from engine.settings import Settings

log = logging.getLogger(__name__)

Leased = type[SyncRun] | type[SyncPart] | type[TaskLease]


def worker_id() -> str:
    """This thread of this process on this host: the name a lease is held under."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


def stale_before(settings: Settings) -> ColumnElement[datetime]:
    return func.now() - timedelta(seconds=settings.lease_stale_seconds)


def claimable(model: Leased, settings: Settings,
              *also_when_running: ColumnElement[bool]) -> ColumnElement[bool]:
    """Queued, or running with a stale heartbeat (its holder died) and attempts left."""
    return or_(model.status == RunStatus.QUEUED,
               and_(model.status == RunStatus.RUNNING, *also_when_running,
                    model.attempts < settings.max_run_attempts,
                    or_(model.heartbeat_at.is_(None),
                        model.heartbeat_at < stale_before(settings))))


@dataclass
class Lease:
    """The worker's hold on a leased row, renewed by a heartbeat thread while the work runs."""

    factory: sessionmaker[Session]
    row_id: str
    worker: str
    interval: float
    model: Leased = SyncRun
    lost: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def renew(self, session: Session) -> bool:
        """Touch the heartbeat if this worker still owns the row (also fences a write)."""
        row = self.model
        owned = rowcount(session.execute(
            update(row)
            .where(row.id == self.row_id, row.worker == self.worker,
                   row.status == RunStatus.RUNNING)
            .values(heartbeat_at=text("now()"))
            .execution_options(synchronize_session=False)
        ))
        if not owned:
            self.lost.set()
        return bool(owned)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                with self.factory() as session, session.begin():
                    if not self.renew(session):
                        return
            except Exception:  # noqa: BLE001 - a missed beat is retried; staleness decides
                log.warning("heartbeat for %s failed", self.row_id, exc_info=True)

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{self.row_id}")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self._thread.join(timeout=5)


class LeaseLost(Exception):
    """Another worker took the work over; this one must stop writing."""


# --- task leases (task_lease rows) -----------------------------------------------------------

def task_job(kind: TaskKind, subject_id: str) -> Job:
    """The message that does a leased task's work (what the reaper sends again)."""
    if kind is TaskKind.EXPIRE_UPLOADS:
        return Job(kind.value, ())
    return Job(kind.value, (subject_id,), queue="sync" if kind is TaskKind.VERIFY else "default")


def job_of(lease: TaskLease) -> Job:
    return task_job(TaskKind(lease.kind), lease.subject_id)


def queue_task(session: Session, kind: TaskKind, subject_id: str, *,
               due_in: float = 0.0) -> None:
    """Record that the task's message is on its way (due in `due_in` seconds), taking the lease
    back from any holder: that one's writes are refused from now on."""
    due = func.now() + timedelta(seconds=due_in)
    values = {"status": RunStatus.QUEUED, "worker": None, "heartbeat_at": None,
              "attempts": 0, "enqueued_at": due}
    session.execute(
        insert(TaskLease)
        .values(id=lease_id(kind, subject_id), kind=kind.value, subject_id=subject_id, **values)
        .on_conflict_do_update(index_elements=[TaskLease.id], set_=values))


def claim_task(session: Session, kind: TaskKind, subject_id: str, worker: str,
               settings: Settings) -> str | None:
    """Take the task's lease if it is queued, has none (a task sent before leases existed, or
    a periodic job's first run), or its holder died (stale heartbeat, attempts left); answers
    the lease id to hold (`Lease(..., model=TaskLease)`), or None if a live worker holds it.

    The caller checks, in the same transaction, that the work is still wanted (a pending
    connection, a queued mail).
    """
    return session.execute(
        insert(TaskLease)
        .values(id=lease_id(kind, subject_id), kind=kind.value, subject_id=subject_id,
                status=RunStatus.RUNNING, worker=worker, heartbeat_at=func.now(), attempts=1,
                enqueued_at=func.now())
        .on_conflict_do_update(
            index_elements=[TaskLease.id],
            set_={"status": RunStatus.RUNNING, "worker": worker, "heartbeat_at": func.now(),
                  "attempts": TaskLease.attempts + 1},
            where=claimable(TaskLease, settings))
        .returning(TaskLease.id)).scalar_one_or_none()


def end_task(session: Session, lease: Lease) -> bool:
    """The holder is done: drop its lease (fenced; False if it had lost it)."""
    return bool(rowcount(session.execute(
        delete(TaskLease).where(TaskLease.id == lease.row_id, TaskLease.worker == lease.worker,
                                TaskLease.status == RunStatus.RUNNING))))


def requeue_task(session: Session, lease: Lease, due_in: float) -> bool:
    """The holder ended an attempt that failed normally and a retry is sent due in `due_in`
    seconds: the lease waits for it (fenced; False if the holder had lost it)."""
    return bool(rowcount(session.execute(
        update(TaskLease)
        .where(TaskLease.id == lease.row_id, TaskLease.worker == lease.worker,
               TaskLease.status == RunStatus.RUNNING)
        .values(status=RunStatus.QUEUED, worker=None, heartbeat_at=None, attempts=0,
                enqueued_at=func.now() + timedelta(seconds=due_in))
        .execution_options(synchronize_session=False))))


def drop_task(session: Session, kind: TaskKind, subject_id: str) -> None:
    """Forget a task whose work is no longer wanted (its subject left the state it needed)."""
    session.execute(delete(TaskLease).where(TaskLease.id == lease_id(kind, subject_id)))


def release_dead_holders(session: Session, pids: list[int]) -> int:
    """Leases that worker processes of this host held when they died (killed at the shutdown
    bound, or by hand) made stale at once, so a redelivery or the reaper takes the work over
    now rather than after `lease_stale_seconds`. Only for processes known dead: a live holder
    would lose its lease (its writes stay fenced). A fanned-out run is held by its parts."""
    host = socket.gethostname()
    released = 0
    for model in (SyncRun, SyncPart, TaskLease):
        held = or_(*(model.worker.startswith(f"{host}:{pid}:", autoescape=True) for pid in pids))
        scope = [SyncRun.parts == 0] if model is SyncRun else []
        released += rowcount(session.execute(
            update(model).where(model.status == RunStatus.RUNNING, held, *scope)
            .values(heartbeat_at=None).execution_options(synchronize_session=False)))
    return released


__all__ = ["EVERY_UPLOAD", "Lease", "LeaseLost", "Leased", "TaskKind", "TaskLease", "claim_task",
           "claimable", "drop_task", "end_task", "job_of", "lease_id", "queue_task",
           "release_dead_holders", "requeue_task", "stale_before", "task_job", "worker_id"]
