"""Maintenance jobs: give crashed and lost runs back to the queue, prune old history.

The reaper is what brings a SIGKILLed sync back within minutes, and a killed verify, mail or
upload expiry too (their task leases, engine/lease.py): its task is only redelivered by the
broker when the visibility timeout (an hour) runs out, but its heartbeat goes stale in
`lease_stale_seconds`. A run stuck `queued` for `queued_stale_seconds` lost its message (Redis
restarted without persistence, say) and is sent again; a duplicate message is harmless because
only one delivery can claim the run.

Pushed evidence whose upload nobody verified within the verify window is expired: its object
deleted from the store, its row kept as `expired` (so a late verify is told why) until
`prune_history` removes it with the rest of the old history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, delete, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TIMESTAMP

from engine import ledger
from engine.db import Job, enqueue_after_commit, rowcount
from engine.lease import (
    EVERY_UPLOAD,
    Lease,
    Leased,
    TaskKind,
    TaskLease,
    claim_task,
    end_task,
    job_of,
    worker_id,
)
from engine.mail import give_up_mail
from engine.metrics import RUNS_REAPED
from engine.models import (
    Audit,
    Connection,
    ControlResultHistory,
    RunStatus,
    SyncPart,
    SyncRun,
)
from engine.models.push import UNVERIFIED, EvidenceLineage, EvidenceObject, ObjectStatus
from engine.parts import give_up_part, under_running_run
from engine.schedule import record_run_outcome
from engine.settings import Settings, get_settings
from engine.snapshots import prune_snapshots
from engine.storage import Store
from engine.sync import OPEN, part_job, sync_job
from engine.verification import give_up_verify

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    """Run ids (and part ids, for fanned-out runs, and task lease ids `<task>:<subject>` of
    verifies, mail and the upload expiry) the reaper acted on."""

    requeued: list[str] = field(default_factory=list)  # stale lease: queued again
    resent: list[str] = field(default_factory=list)  # queued, message presumed lost: sent again
    failed: list[str] = field(default_factory=list)  # stale lease and out of attempts
    cancelled: list[str] = field(default_factory=list)  # parts left open under a finished run


def reap_stale_runs(session: Session, settings: Settings, limit: int = 500) -> Reaped:
    """Queue again the runs whose worker died, fail those out of attempts, resend lost ones;
    the same for the parts of fanned-out runs (a part out of attempts may close its run)."""
    now = session.execute(select(func.now())).scalar_one()
    reaped = Reaped()
    _reap(session, SyncRun, settings, now, limit, reaped, job=lambda run: sync_job(run.id),
          give_up=lambda run: _fail_abandoned(session, run, now, settings),
          queued_since=func.coalesce(SyncRun.enqueued_at, SyncRun.queued_at),
          only=SyncRun.parts == 0)
    _reap(session, SyncPart, settings, now, limit, reaped, job=lambda part: part_job(part.id),
          give_up=lambda part: give_up_part(session, part, now, settings),
          queued_since=SyncPart.enqueued_at, only=under_running_run())
    _reap(session, TaskLease, settings, now, limit, reaped, job=job_of,
          give_up=lambda lease: _give_up_task(session, lease),
          queued_since=TaskLease.enqueued_at)
    reaped.cancelled = list(session.scalars(
        update(SyncPart)
        .where(SyncPart.status.in_(OPEN), ~under_running_run())
        .values(status=RunStatus.CANCELLED, worker=None, finished_at=now)
        .returning(SyncPart.id)
        .execution_options(synchronize_session=False)))
    for action, ids in (("requeued", reaped.requeued), ("resent", reaped.resent),
                        ("failed", reaped.failed), ("cancelled", reaped.cancelled)):
        RUNS_REAPED.labels(action).inc(len(ids))
    return reaped


def _reap(session: Session, model: Leased, settings: Settings,
          now: datetime, limit: int, reaped: Reaped, *, job: Callable[[Any], Job],
          give_up: Callable[[Any], None], queued_since: SQLColumnExpression[datetime | None],
          only: ColumnElement[bool] | None = None) -> None:
    """Leased rows (runs, parts, task leases) with a stale heartbeat: queued again, or given up
    after their attempts; queued rows whose message is presumed lost: sent again."""
    stale_before = now - timedelta(seconds=settings.lease_stale_seconds)
    scope = [only] if only is not None else []
    dead = cast(Sequence[SyncRun | SyncPart | TaskLease], session.scalars(
        select(model)
        .where(model.status == RunStatus.RUNNING, *scope,
               or_(model.heartbeat_at.is_(None), model.heartbeat_at < stale_before))
        .order_by(model.heartbeat_at)
        .limit(limit)
        .with_for_update(skip_locked=True)).all())
    for row in dead:
        if row.attempts >= settings.max_run_attempts:
            give_up(row)
            reaped.failed.append(row.id)
        else:
            row.status, row.worker, row.enqueued_at = RunStatus.QUEUED, None, now
            enqueue_after_commit(session, job(row))
            reaped.requeued.append(row.id)
    lost = cast(Sequence[SyncRun | SyncPart | TaskLease], session.scalars(
        select(model)
        .where(model.status == RunStatus.QUEUED, *scope,
               queued_since < now - timedelta(seconds=settings.queued_stale_seconds))
        .order_by(queued_since)
        .limit(limit)
        .with_for_update(skip_locked=True)).all())
    for row in lost:
        row.enqueued_at = now
        enqueue_after_commit(session, job(row))
        reaped.resent.append(row.id)


def _give_up_task(session: Session, lease: TaskLease) -> None:
    """A verify, mail or upload expiry whose workers kept dying: its subject says so (a pending
    connection goes to `error`, a queued mail to `failed`); the expiry waits for its next hour."""
    kind = TaskKind(lease.kind)
    if kind is TaskKind.VERIFY:
        give_up_verify(session, lease.subject_id, lease.attempts)
    elif kind is TaskKind.MAIL:
        give_up_mail(session, lease.subject_id, lease.attempts)
    else:
        log.error("upload expiry: the worker running it stopped answering %d times; giving up "
                  "until its next scheduled run", lease.attempts)
    session.delete(lease)


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
    ledger.record_run(run)


@dataclass(frozen=True)
class Pruned:
    runs: int
    control_history: int
    expired_uploads: int
    snapshots: int = 0


def prune_history(factory: sessionmaker[Session], now: datetime, retention: timedelta,
                  batch: int = 5000, *, settings: Settings | None = None) -> Pruned:
    """Delete finished runs, control-result history, the records of expired uploads and
    stored collector snapshots older than `retention`, in batches (snapshots in an audit's
    period or behind current evidence are kept: engine.snapshots.prune_snapshots).

    Evidence and its versions are the audit trail and are never pruned here.
    """
    cutoff = now - retention
    runs = _delete_in_batches(factory, SyncRun.id, and_(
        SyncRun.finished_at < cutoff, SyncRun.status.not_in(OPEN),
        ~_in_an_audit(SyncRun.account_id, SyncRun.finished_at, now)), batch)
    history = _delete_in_batches(factory, ControlResultHistory.id, and_(
        ControlResultHistory.evaluated_at < cutoff,
        ~_in_an_audit(ControlResultHistory.account_id, ControlResultHistory.evaluated_at, now)),
        batch)
    uploads = _delete_in_batches(factory, EvidenceObject.id, and_(
        EvidenceObject.status == ObjectStatus.EXPIRED, EvidenceObject.created_at < cutoff), batch)
    with factory() as session, session.begin():
        snapshots = prune_snapshots(session, settings or get_settings(), cutoff, now, batch)
    return Pruned(runs=runs, control_history=history, expired_uploads=uploads,
                  snapshots=snapshots)


def _in_an_audit(account: InstrumentedAttribute[str], at: InstrumentedAttribute[Any],
                 now: datetime) -> ColumnElement[bool]:
    """Whether `at` falls in the period of one of the account's audits (its period_start ..
    period_end, else created_at .. completed_at, or now while open): the runs and control
    history an audit's period answer is drawn from are kept past the retention."""
    start = func.coalesce(func.cast(Audit.period_start, TIMESTAMP(timezone=True)),
                          Audit.created_at)
    end = func.coalesce(func.cast(Audit.period_end, TIMESTAMP(timezone=True)),
                        Audit.completed_at, now)
    return select(Audit.id).where(Audit.account_id == account, start <= at, at <= end).exists()


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
                              older_than: timedelta, batch: int = 500, *,
                              settings: Settings | None = None,
                              worker: str | None = None) -> ExpiredUploads:
    """Delete the objects of uploads nobody verified within `older_than`, and mark them expired.

    An upload qualifies when it is pending (or failed a verify and waits for a new PUT), was
    requested before `now - older_than`, its presigned URL has run out (so nothing can be
    PUT after its object is gone), and no control links it. Verified content and duplicates are
    never touched. Each batch deletes its objects (ones already gone count as deleted) and then
    commits its rows; rows a verify holds are skipped (SKIP LOCKED). The job is leased: a
    second copy (two beats, a broker replay) finds the lease held and does nothing, and a
    worker killed mid-batch leaves that batch's rows `pending` (some objects already gone)
    until the reaper sends the job again, which finishes them. A verify that comes later
    answers 410 `upload_expired`.
    """
    settings = settings or get_settings()
    worker = worker or worker_id()
    with factory() as session, session.begin():
        held = claim_task(session, TaskKind.EXPIRE_UPLOADS, EVERY_UPLOAD, worker, settings)
    if held is None:
        log.info("upload expiry is already running on another worker")
        return ExpiredUploads(uploads=0)
    cutoff = now - older_than
    with Lease(factory, held, worker, settings.heartbeat_seconds, TaskLease) as lease:
        try:
            total = _expire_in_batches(factory, lease, store, now, cutoff, batch)
        except Exception:
            _release(factory, lease)  # failed, not killed: the next run starts afresh
            raise
    if total:
        log.info("expired %d upload(s) not verified within %s", total, older_than)
    return ExpiredUploads(uploads=total)


def _expire_in_batches(factory: sessionmaker[Session], lease: Lease, store: Store,
                       now: datetime, cutoff: datetime, batch: int) -> int:
    """The batches of `expire_unverified_uploads`, each fenced by its lease; the last ends it."""
    linked = select(EvidenceLineage.id).where(
        EvidenceLineage.evidence_object_id == EvidenceObject.id).exists()
    total = 0
    while True:
        with factory() as session, session.begin():
            if not lease.renew(session):
                log.info("upload expiry was taken over after %d upload(s)", total)
                return total
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
            if len(rows) < batch:
                end_task(session, lease)
        total += len(rows)
        if len(rows) < batch:
            return total


def _release(factory: sessionmaker[Session], lease: Lease) -> None:
    try:
        with factory() as session, session.begin():
            end_task(session, lease)
    except Exception:  # noqa: BLE001 - the database is the trouble: the lease goes stale
        log.warning("could not release %s", lease.row_id, exc_info=True)
