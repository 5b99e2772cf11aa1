"""Sync orchestration: one run per connection at a time, held as a lease in Postgres.

A run is claimed by the worker that executes it (`worker` + `heartbeat_at`). A second delivery
of the same task finds the lease fresh and leaves; a delivery after a crash finds it stale and
takes over. Every write of a run is fenced by the lease, so a worker that lost it writes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import AuthFailed, CheckOutcome, Status
from engine.connections import open_connector
from engine.controls import recompute_controls
from engine.db import Job, enqueue_after_commit, rowcount
from engine.evidence import Item, store_check_results
from engine.models import Connection, ConnectionStatus, RunStatus, SyncRun, Trigger, new_id
from engine.settings import Settings, get_settings

log = logging.getLogger(__name__)

OPEN = (RunStatus.QUEUED, RunStatus.RUNNING)


def sync_job(run_id: str) -> Job:
    return Job("sync.run", (run_id,), queue="sync")


def request_sync(session: Session, conn: Connection, trigger: Trigger) -> tuple[SyncRun, bool]:
    """Queue a run for the connection, or return the one already queued or running.

    The partial unique index on open runs makes this safe under concurrent requests.
    """
    for _ in range(3):
        run_id = session.execute(
            insert(SyncRun)
            .values(id=new_id("run"), account_id=conn.account_id, connection_id=conn.id,
                    trigger=trigger, status=RunStatus.QUEUED, errors=[])
            .on_conflict_do_nothing(index_elements=[SyncRun.connection_id],
                                    index_where=SyncRun.status.in_(OPEN))
            .returning(SyncRun.id)
        ).scalar_one_or_none()
        if run_id is not None:
            enqueue_after_commit(session, sync_job(run_id))
            return session.get_one(SyncRun, run_id), True
        existing = session.scalars(select(SyncRun).where(
            SyncRun.connection_id == conn.id, SyncRun.status.in_(OPEN))).first()
        if existing is not None:
            return existing, False
    raise RuntimeError(f"could not queue a run for connection {conn.id}")


@dataclass
class _Lease:
    """The worker's hold on a run, renewed by a heartbeat thread until released."""

    factory: sessionmaker[Session]
    run_id: str
    worker: str
    interval: float
    lost: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def renew(self, session: Session) -> bool:
        """Touch the heartbeat if this worker still owns the run (also fences a write)."""
        owned = rowcount(session.execute(
            update(SyncRun)
            .where(SyncRun.id == self.run_id, SyncRun.worker == self.worker,
                   SyncRun.status == RunStatus.RUNNING)
            .values(heartbeat_at=text("now()"))
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
                log.warning("heartbeat for run %s failed", self.run_id, exc_info=True)

    def __enter__(self) -> _Lease:
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat-{self.run_id}")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self._thread.join(timeout=5)


class LeaseLost(Exception):
    """Another worker took the run over; this one must stop writing."""


def claim_run(session: Session, run_id: str, worker: str, stale_after: float) -> bool:
    """Take the run if it is queued, or running with a heartbeat older than `stale_after`."""
    claimed = session.execute(text("""
        UPDATE sync_run SET status = 'running', worker = :worker, heartbeat_at = now(),
               started_at = coalesce(started_at, now()), attempts = attempts + 1
        WHERE id = :run_id AND (status = 'queued' OR (status = 'running' AND
              (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => :stale))))
        RETURNING id
    """), {"run_id": run_id, "worker": worker, "stale": stale_after}).first()
    return claimed is not None


@dataclass
class RunTally:
    evidence: int = 0
    changed: int = 0
    checks_errored: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    crashed: int = 0


def _items(outcome: CheckOutcome) -> list[Item]:
    chk = outcome.check
    return [Item.of(r.resource_id, chk.resource_type, Status(r.status).value, r.title, r.data)
            for r in outcome.results]


def run_sync(factory: sessionmaker[Session], run_id: str, worker: str,
             settings: Settings | None = None) -> RunStatus | None:
    """Execute a queued run end to end; returns its final status, or None if not ours to run."""
    settings = settings or get_settings()
    with factory() as session, session.begin():
        if not claim_run(session, run_id, worker, settings.lease_stale_seconds):
            return None
        run = session.get_one(SyncRun, run_id)
        conn = session.get_one(Connection, run.connection_id)
        if conn.status == ConnectionStatus.DISCONNECTED or conn.credentials_encrypted is None:
            _finish(session, run, RunStatus.CANCELLED, RunTally(), started=time.monotonic())
            return RunStatus.CANCELLED
        account_id, connection_id = conn.account_id, conn.id
        connector = open_connector(conn, settings)

    started = time.monotonic()
    tally = RunTally()
    with _Lease(factory, run_id, worker, settings.heartbeat_seconds) as lease:
        try:
            for outcome in connector.run_checks():
                _store_outcome(factory, lease, outcome, tally, account_id, connection_id, run_id)
        except AuthFailed as exc:
            return _fail(factory, lease, run_id, connection_id, exc.message, started)
        except LeaseLost:
            log.info("run %s was taken over by another worker; stopping", run_id)
            return None
        with factory() as session, session.begin():
            if not lease.renew(session):
                return None
            run = session.get_one(SyncRun, run_id)
            recompute_controls(session, account_id, datetime.now(UTC))
            status = _final_status(tally, len(connector.checks))
            _finish(session, run, status, tally, started)
            conn = session.get_one(Connection, connection_id)
            conn.last_sync_at = run.finished_at
            if conn.status == ConnectionStatus.ERROR and status != RunStatus.FAILED:
                conn.status, conn.status_message = ConnectionStatus.ACTIVE, None
            return status


def _store_outcome(factory: sessionmaker[Session], lease: _Lease, outcome: CheckOutcome,
                   tally: RunTally, account_id: str, connection_id: str, run_id: str) -> None:
    tally.errors.extend({"check": outcome.check.id, "message": m} for m in outcome.errors)
    if outcome.errors:
        tally.checks_errored += 1
    if outcome.crashed:
        tally.crashed += 1
        return  # nothing known: the check's previous evidence stands as it was
    with factory() as session, session.begin():
        if not lease.renew(session):
            raise LeaseLost(run_id)
        stats = store_check_results(session, account_id=account_id, connection_id=connection_id,
                                    check_id=outcome.check.id, items=_items(outcome),
                                    run_id=run_id, now=datetime.now(UTC))
    tally.evidence += len(outcome.results)
    tally.changed += stats.written + stats.closed


def _final_status(tally: RunTally, checks: int) -> RunStatus:
    if checks and tally.crashed == checks:
        return RunStatus.FAILED
    return RunStatus.PARTIAL if tally.errors else RunStatus.SUCCEEDED


def _finish(session: Session, run: SyncRun, status: RunStatus, tally: RunTally,
            started: float) -> None:
    run.status = status
    run.evidence_count, run.changed_count = tally.evidence, tally.changed
    run.checks_errored, run.errors = tally.checks_errored, tally.errors
    run.finished_at = datetime.now(UTC)
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.heartbeat_at = run.finished_at


def _fail(factory: sessionmaker[Session], lease: _Lease, run_id: str, connection_id: str,
          message: str, started: float) -> RunStatus | None:
    """The provider refused the credentials: fail the run and flag the connection."""
    with factory() as session, session.begin():
        if not lease.renew(session):
            return None
        run = session.get_one(SyncRun, run_id)
        tally = RunTally(errors=[{"check": None, "message": message}])
        _finish(session, run, RunStatus.FAILED, tally, started)
        conn = session.get_one(Connection, connection_id)
        conn.status, conn.status_message = ConnectionStatus.ERROR, message
    return RunStatus.FAILED
