"""Maintenance jobs: give crashed and lost runs back to the queue, prune old history.

The reaper is what brings a SIGKILLed sync back within minutes: its task is only redelivered
by the broker when the visibility timeout (an hour) runs out, but its heartbeat goes stale in
`lease_stale_seconds`. A run stuck `queued` for `queued_stale_seconds` lost its message (Redis
restarted without persistence, say) and is sent again; a duplicate message is harmless because
only one delivery can claim the run.

Pushed evidence whose upload nobody verified within the verify window is expired: its object
deleted from the store, its row kept as `expired` (so a late verify is told why) until
`prune_history` removes it with the rest of the old history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from engine.db import enqueue_after_commit, rowcount
from engine.metrics import RUNS_REAPED
from engine.models import Connection, ControlResultHistory, RunStatus, SyncPart, SyncRun
from engine.models.push import UNVERIFIED, EvidenceLineage, EvidenceObject, ObjectStatus
from engine.parts import give_up_part
from engine.schedule import record_run_outcome
from engine.settings import Settings
from engine.storage import Store
from engine.sync import OPEN, part_job, sync_job

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    """Run ids (and part ids, for fanned-out runs) the reaper acted on."""

    requeued: list[str] = field(default_factory=list)  # stale lease: queued again
    resent: list[str] = field(default_factory=list)  # queued, message presumed lost: sent again
    failed: list[str] = field(default_factory=list)  # stale lease and out of attempts


def reap_stale_runs(session: Session, settings: Settings, limit: int = 500) -> Reaped:
    """Queue again the runs whose worker died, fail those out of attempts, resend lost ones."""
    now = session.execute(select(func.now())).scalar_one()
    reaped = Reaped()
    stale_before = now - timedelta(seconds=settings.lease_stale_seconds)
    dead = session.scalars(
        select(SyncRun)
        .where(SyncRun.status == RunStatus.RUNNING, SyncRun.parts == 0,
               or_(SyncRun.heartbeat_at.is_(None), SyncRun.heartbeat_at < stale_before))
        .order_by(SyncRun.heartbeat_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all()
    for run in dead:
        if run.attempts >= settings.max_run_attempts:
            _fail_abandoned(session, run, now, settings)
            reaped.failed.append(run.id)
        else:
            run.status, run.worker, run.enqueued_at = RunStatus.QUEUED, None, now
            enqueue_after_commit(session, sync_job(run.id))
            reaped.requeued.append(run.id)
    lost = session.scalars(
        select(SyncRun)
        .where(SyncRun.status == RunStatus.QUEUED,
               func.coalesce(SyncRun.enqueued_at, SyncRun.queued_at)
               < now - timedelta(seconds=settings.queued_stale_seconds))
        .order_by(SyncRun.queued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all()
    for run in lost:
        run.enqueued_at = now
        enqueue_after_commit(session, sync_job(run.id))
        reaped.resent.append(run.id)
    _reap_parts(session, settings, now, limit, reaped)
    for action, ids in (("requeued", reaped.requeued), ("resent", reaped.resent),
                        ("failed", reaped.failed)):
        RUNS_REAPED.labels(action).inc(len(ids))
    return reaped


def _reap_parts(session: Session, settings: Settings, now: datetime, limit: int,
                reaped: Reaped) -> None:
    """The same for the parts of fanned-out runs; a part out of attempts may close its run."""
    stale_before = now - timedelta(seconds=settings.lease_stale_seconds)
    dead = session.scalars(
        select(SyncPart)
        .where(SyncPart.status == RunStatus.RUNNING,
               or_(SyncPart.heartbeat_at.is_(None), SyncPart.heartbeat_at < stale_before))
        .order_by(SyncPart.heartbeat_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all()
    for part in dead:
        if part.attempts >= settings.max_run_attempts:
            give_up_part(session, part, now, settings)
            reaped.failed.append(part.id)
        else:
            part.status, part.worker, part.enqueued_at = RunStatus.QUEUED, None, now
            enqueue_after_commit(session, part_job(part.id))
            reaped.requeued.append(part.id)
    lost = session.scalars(
        select(SyncPart)
        .where(SyncPart.status == RunStatus.QUEUED,
               SyncPart.enqueued_at < now - timedelta(seconds=settings.queued_stale_seconds))
        .order_by(SyncPart.enqueued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all()
    for part in lost:
        part.enqueued_at = now
        enqueue_after_commit(session, part_job(part.id))
        reaped.resent.append(part.id)


def _fail_abandoned(session: Session, run: SyncRun, now: datetime, settings: Settings) -> None:
    run.status, run.worker, run.finished_at, run.heartbeat_at = RunStatus.FAILED, None, now, now
    run.errors = [*run.errors, {"check": None, "message": (
        f"the worker running this sync stopped answering {run.attempts} times; giving up")}]
    if run.started_at is not None:
        run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
    conn = session.get(Connection, run.connection_id)
    if conn is not None:
        record_run_outcome(conn, failed=True, now=now,
                           backoff_cap=timedelta(seconds=settings.backoff_max_seconds))


@dataclass(frozen=True)
class Pruned:
    runs: int
    control_history: int
    expired_uploads: int


def prune_history(factory: sessionmaker[Session], now: datetime, retention: timedelta,
                  batch: int = 5000) -> Pruned:
    """Delete finished runs, control-result history and the records of expired uploads older
    than `retention`, in batches.

    Evidence and its versions are the audit trail and are never pruned here.
    """
    cutoff = now - retention
    runs = _delete_in_batches(factory, SyncRun.id, and_(
        SyncRun.finished_at < cutoff, SyncRun.status.not_in(OPEN)), batch)
    history = _delete_in_batches(factory, ControlResultHistory.id,
                                 ControlResultHistory.evaluated_at < cutoff, batch)
    uploads = _delete_in_batches(factory, EvidenceObject.id, and_(
        EvidenceObject.status == ObjectStatus.EXPIRED, EvidenceObject.created_at < cutoff), batch)
    return Pruned(runs=runs, control_history=history, expired_uploads=uploads)


def _delete_in_batches(factory: sessionmaker[Session], key: InstrumentedAttribute[Any],
                       condition: ColumnElement[bool], batch: int) -> int:
    """Delete the rows matching `condition`, `batch` at a time, each batch committed."""
    total = 0
    while True:
        with factory() as session, session.begin():
            ids = select(key).where(condition).limit(batch).scalar_subquery()
            deleted = rowcount(session.execute(delete(key.class_).where(key.in_(ids))))
        total += deleted
        if deleted < batch:
            return total


@dataclass(frozen=True)
class ExpiredUploads:
    uploads: int
    """Uploads marked `expired` (their objects deleted from the store) by this call."""


def expire_unverified_uploads(factory: sessionmaker[Session], store: Store, now: datetime,
                              older_than: timedelta, batch: int = 500) -> ExpiredUploads:
    """Delete the objects of uploads nobody verified within `older_than`, and mark them expired.

    An upload qualifies when it is pending (or failed a verify and waits for a new PUT), was
    requested before `now - older_than`, its presigned URL has run out (so nothing can be
    PUT after its object is gone), and no control links it. Verified content and duplicates are
    never touched. Each batch deletes its objects (ones already gone count as deleted) and then
    commits its rows; rows a verify holds are skipped (SKIP LOCKED), so a second run, or two at
    once, do nothing twice. A verify that comes later answers 410 `upload_expired`.
    """
    cutoff = now - older_than
    linked = select(EvidenceLineage.id).where(
        EvidenceLineage.evidence_object_id == EvidenceObject.id).exists()
    total = 0
    while True:
        with factory() as session, session.begin():
            rows = session.scalars(
                select(EvidenceObject)
                .where(EvidenceObject.status.in_(UNVERIFIED), EvidenceObject.created_at < cutoff,
                       EvidenceObject.upload_expires_at <= now, ~linked)
                .order_by(EvidenceObject.created_at)
                .limit(batch)
                .with_for_update(skip_locked=True)).all()
            store.delete_many([row.upload_key for row in rows])
            for row in rows:
                row.status = ObjectStatus.EXPIRED
        total += len(rows)
        if len(rows) < batch:
            if total:
                log.info("expired %d upload(s) not verified within %s", total, older_than)
            return ExpiredUploads(uploads=total)
