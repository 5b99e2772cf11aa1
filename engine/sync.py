"""Sync orchestration: one run per connection at a time, held as a lease in Postgres.

A run is claimed by the worker that executes it (`worker` + `heartbeat_at`, engine/claim.py). A
second delivery of the same task finds the lease fresh and leaves; a delivery after a crash finds
it stale and takes over. Every write of a run is fenced by the lease, so a worker that lost it
writes nothing. A delivery that finds the account's provider slots taken is put back
(`SlotBusy`), not dropped.

With `sync_parts` > 1 a claimed run fans out: its checks are split into parts
(engine/part_plan.py: checks that share a collector stay together, so every resource is still
read once), each a task on the sync queue leased like a run (engine/parts.py), and the part that
finishes last closes the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import (
    WHOLE,
    AuthFailed,
    Check,
    CheckOutcome,
    Collector,
    Connector,
    ConnectorError,
    Shard,
    Status,
    run_checks,
)
from connectors.runner import Collected
from engine import ledger
from engine.claim import Claim, SlotBusy, claim_run
from engine.controls import recompute_controls
from engine.credentials import open_connector
from engine.db import Job, enqueue_after_commit, rowcount
from engine.errors import EngineError
from engine.evidence import Item, close_replaced, store_check_results
from engine.lease import Lease, LeaseLost
from engine.metrics import (
    CHECKS_ERRORED,
    EVIDENCE_ROWS,
    RUN_DURATION,
    RUNS_DEFERRED,
    RUNS_FINISHED,
    RUNS_STARTED,
)
from engine.models import (
    Connection,
    ConnectionStatus,
    RunStatus,
    SyncPart,
    SyncRun,
    Trigger,
    new_id,
)
from engine.part_plan import PartPlan, plan_parts
from engine.registry import get_connector
from engine.schedule import record_run_outcome
from engine.settings import Settings, get_settings
from engine.snapshots import Piece, input_digest, record_collected

log = logging.getLogger(__name__)

OPEN = (RunStatus.QUEUED, RunStatus.RUNNING)
# The partial unique index's predicate, spelled literally: Postgres must match it to the index
# also when psycopg runs the statement as a prepared (generic) plan, where bound values won't do.
OPEN_INDEX_WHERE = text("status IN ('queued', 'running')")


def sync_job(run_id: str) -> Job:
    return Job("sync.run", (run_id,), queue="sync")


def part_job(part_id: str) -> Job:
    return Job("sync.part", (part_id,), queue="sync")


def request_sync(session: Session, conn: Connection, trigger: Trigger) -> tuple[SyncRun, bool]:
    """Queue a run for the connection, or return the one already queued or running.

    The partial unique index on open runs makes this safe under concurrent requests.
    """
    for _ in range(3):
        run_id = session.execute(
            insert(SyncRun)
            .values(id=new_id("run"), account_id=conn.account_id, connection_id=conn.id,
                    trigger=trigger, status=RunStatus.QUEUED, errors=[], enqueued_at=func.now())
            .on_conflict_do_nothing(index_elements=[SyncRun.connection_id],
                                    index_where=OPEN_INDEX_WHERE)
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
class RunTally:
    evidence: int = 0
    changed: int = 0
    checks_errored: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    crashed: int = 0
    staged: dict[str, Any] = field(default_factory=dict)
    """Outcomes of sharded checks, kept for the closing part to merge (see engine/parts.py)."""


@dataclass(frozen=True)
class RunContext:
    """What a claimed run needs to write: its ids, its provider (a metrics label), settings."""

    factory: sessionmaker[Session]
    run_id: str
    account_id: str
    connection_id: str
    provider: str
    settings: Settings
    started_at: datetime | None = None
    """When the run was claimed: what its collectors read is current from then (every part
    of a fanned-out run keeps its shard's snapshot as of the same instant)."""


def _items(outcome: CheckOutcome) -> list[Item]:
    chk = outcome.check
    return [Item.of(r.resource_id, chk.resource_type, Status(r.status).value, r.title, r.data)
            for r in outcome.results]


def run_sync(factory: sessionmaker[Session], run_id: str, worker: str,
             settings: Settings | None = None) -> RunStatus | None:
    """Execute a queued run end to end; returns its final status, or None if not ours to run.

    A run that fans out returns RUNNING: its parts are queued and the last one closes it.
    Raises SlotBusy when the account's provider slots are full (the caller retries later).
    A database error propagates: the lease goes stale and the reaper queues the run again.
    """
    settings = settings or get_settings()
    cancelled = False
    with factory() as session, session.begin():
        claim = claim_run(session, run_id, worker, settings)
        if claim is Claim.NOT_OURS:
            return None
        run = session.get_one(SyncRun, run_id)
        conn = session.get_one(Connection, run.connection_id)
        ctx = RunContext(factory, run_id, conn.account_id, conn.id, conn.integration_id, settings,
                         run.started_at)
        if claim is Claim.CLAIMED and (conn.status == ConnectionStatus.DISCONNECTED
                                       or conn.credentials_encrypted is None):
            _finish(run, RunStatus.CANCELLED, RunTally())
            cancelled = True
    if claim is Claim.NO_SLOT:
        RUNS_DEFERRED.labels(ctx.provider).inc()
        raise SlotBusy(run_id, settings.slot_retry_seconds)
    RUNS_STARTED.labels(ctx.provider).inc()
    started = time.monotonic()
    if cancelled:
        status: RunStatus | None = RunStatus.CANCELLED
    elif len(plan := _plan(ctx)) > 1:
        return _fan_out(ctx, worker, plan)
    else:
        with Lease(factory, run_id, worker, settings.heartbeat_seconds) as lease:
            status = execute_checks(ctx, lease, None, _complete, _fail)
    if status is not None:
        observe_run(ctx.provider, status, time.monotonic() - started)
    return status


def _plan(ctx: RunContext) -> list[PartPlan]:
    if ctx.settings.sync_parts <= 1:
        return []
    try:
        checks = get_connector(ctx.provider).checks
    except EngineError:
        return []  # not installed: the run fails in one piece, saying so
    return plan_parts(checks, ctx.settings.sync_parts)


def _fan_out(ctx: RunContext, worker: str, plan: list[PartPlan]) -> RunStatus | None:
    """Hand the claimed run to its parts: one row and one task each, sent after commit."""
    with ctx.factory() as session, session.begin():
        handed = rowcount(session.execute(
            update(SyncRun)
            .where(SyncRun.id == ctx.run_id, SyncRun.worker == worker,
                   SyncRun.status == RunStatus.RUNNING)
            .values(parts=len(plan), heartbeat_at=func.now())))
        if not handed:
            return None
        parts = [SyncPart(run_id=ctx.run_id, part_no=n, check_ids=part.check_ids,
                          sharded=part.sharded, enqueued_at=func.now())
                 for n, part in enumerate(plan)]
        session.add_all(parts)
        session.flush()
        for part in parts:
            enqueue_after_commit(session, part_job(part.id))
    log.info("run %s fanned out into %d parts", ctx.run_id, len(plan))
    return RunStatus.RUNNING


Complete = Callable[[RunContext, Lease, RunTally, int], RunStatus | None]
Fail = Callable[[RunContext, Lease, str, bool], RunStatus | None]


def execute_checks(ctx: RunContext, lease: Lease, check_ids: set[str] | None,
                   complete: Complete, fail: Fail, shard: Shard = WHOLE,
                   sharded: frozenset[str] = frozenset()) -> RunStatus | None:
    """Run the checks (all, or those named) under the lease, storing each check's results as
    it is judged (a sharded check's are kept in the tally for the closing part to merge); then
    `complete`, or `fail` when the provider refuses or cannot be reached."""
    tally = RunTally()
    kept: dict[Collector[Any], list[Piece]] = {}
    try:
        connector = _open(ctx)
        checks = [c for c in connector.checks if check_ids is None or c.id in check_ids]
        session = connector.session()
        keep = _keeper(ctx, lease, shard, [c.needs for c in checks if c.id not in sharded], kept)
        for outcome in run_checks(session, checks, scopes=lambda: connector.scopes(session),
                                  config=connector.validated_config,
                                  max_parallel=connector.max_parallel, shard=shard,
                                  collected=keep):
            read = [p for coll in outcome.check.needs for p in kept.get(coll, ())]
            if outcome.check.id in sharded:
                tally.staged[outcome.check.id] = {
                    "items": [astuple(item) for item in _items(outcome)],
                    "errors": outcome.errors, "crashed": outcome.crashed,
                    "version": outcome.check.version,
                    "pieces": [[p.collector, p.scope, p.sha256] for p in read]}
            else:
                _store_outcome(ctx, lease, outcome, tally, input_digest(read)[0])
    except LeaseLost:
        log.info("%s was taken over by another worker; stopping", lease.row_id)
        return None
    except AuthFailed as exc:
        return fail(ctx, lease, exc.message, True)
    except (ConnectorError, EngineError) as exc:  # provider unreachable, or not installed
        return fail(ctx, lease, exc.message, False)
    except DBAPIError:
        raise  # the database went away: leave the lease to go stale; the reaper retries
    except Exception as exc:  # a connector bug outside its collectors and checks
        log.exception("%s crashed", lease.row_id)
        return fail(ctx, lease, f"{exc.__class__.__name__}: {exc}", False)
    return complete(ctx, lease, tally, len(checks))


def _keeper(ctx: RunContext, lease: Lease, shard: Shard,
            manifest_needs: list[tuple[Collector[Any], ...]],
            kept: dict[Collector[Any], list[Piece]],
            ) -> Callable[[Mapping[Collector[Any], Collected]], None]:
    """What the runner calls once the collectors have read: keep their snapshots (written
    only where they changed, fenced by the lease), and remember each piece's hash in `kept`."""
    def keep(collected: Mapping[Collector[Any], Collected]) -> None:
        with ctx.factory() as session, session.begin():
            def fence() -> None:
                if not lease.renew(session):
                    raise LeaseLost(ctx.run_id)

            pieces, _ = record_collected(
                session, ctx.settings, account_id=ctx.account_id,
                connection_id=ctx.connection_id, run_id=ctx.run_id,
                now=ctx.started_at or datetime.now(UTC),
                collected=collected, shard=shard, manifest_needs=manifest_needs,
                before_write=fence)
        kept.update(pieces)

    return keep


def _open(ctx: RunContext) -> Connector:
    """The connection's connector, credentials decrypted in memory.

    The row is read and its transaction ended first: open_connector works on a session of its
    own, and waiting on that while holding a transaction open can deadlock behind DDL (a
    TRUNCATE or a migration queued for a lock this transaction holds).
    """
    with ctx.factory() as session:
        conn = session.get_one(Connection, ctx.connection_id)
    return open_connector(conn, ctx.settings)


def _store_outcome(ctx: RunContext, lease: Lease, outcome: CheckOutcome, tally: RunTally,
                   snapshot_sha256: str | None) -> None:
    tally.errors.extend({"check": outcome.check.id, "message": m} for m in outcome.errors)
    if outcome.errors:
        tally.checks_errored += 1
        CHECKS_ERRORED.labels(ctx.provider).inc()
    if outcome.crashed:
        tally.crashed += 1
        return  # nothing known: the check's previous evidence stands as it was
    with ctx.factory() as session, session.begin():
        if not lease.renew(session):
            raise LeaseLost(ctx.run_id)
        stats = store_check_results(session, account_id=ctx.account_id,
                                    connection_id=ctx.connection_id,
                                    check_id=outcome.check.id, items=_items(outcome),
                                    run_id=ctx.run_id, now=datetime.now(UTC),
                                    check_version=outcome.check.version,
                                    snapshot_sha256=snapshot_sha256)
    tally.evidence += len(outcome.results)
    tally.changed += stats.written + stats.closed
    EVIDENCE_ROWS.labels(ctx.provider).inc(stats.written + stats.closed)


def _complete(ctx: RunContext, lease: Lease, tally: RunTally, checks: int) -> RunStatus | None:
    with ctx.factory() as session, session.begin():
        if not lease.renew(session):
            return None
        return close_run(session, session.get_one(SyncRun, ctx.run_id), tally, checks,
                         ctx.settings)


def close_run(session: Session, run: SyncRun, tally: RunTally, checks: int,
              settings: Settings, now: datetime | None = None) -> RunStatus:
    """End a run that executed: roll controls up, record its outcome on the connection
    (`now`: the clock, given by a test that simulates time)."""
    now = now or datetime.now(UTC)
    close_replaced(session, account_id=run.account_id, connection_id=run.connection_id,
                   checks=_declared_checks(session, run), run_id=run.id, now=now)
    recompute_controls(session, run.account_id, now)
    status = final_status(tally, checks)
    _finish(run, status, tally, now)
    conn = session.get_one(Connection, run.connection_id)
    conn.last_sync_at = run.finished_at
    if conn.status == ConnectionStatus.ERROR and status != RunStatus.FAILED:
        conn.status, conn.status_message = ConnectionStatus.ACTIVE, None
    nothing_usable = checks > 0 and tally.checks_errored >= checks
    record_run_outcome(conn, failed=status == RunStatus.FAILED or nothing_usable,
                       now=now, backoff_cap=_backoff_cap(settings))
    return status


def _declared_checks(session: Session, run: SyncRun) -> tuple[Check, ...]:
    """The checks the run's connector declares now (what `close_replaced` compares with)."""
    return get_connector(session.get_one(Connection, run.connection_id).integration_id).checks


def final_status(tally: RunTally, checks: int) -> RunStatus:
    """Failed when every check crashed, partial when any error was recorded, else succeeded."""
    if checks and tally.crashed == checks:
        return RunStatus.FAILED
    return RunStatus.PARTIAL if tally.errors else RunStatus.SUCCEEDED


def _finish(run: SyncRun, status: RunStatus, tally: RunTally,
            now: datetime | None = None) -> None:
    run.status = status
    run.evidence_count, run.changed_count = tally.evidence, tally.changed
    run.checks_errored, run.errors = tally.checks_errored, tally.errors
    run.finished_at = now or datetime.now(UTC)
    run.heartbeat_at = run.finished_at
    if run.started_at is not None:
        run.duration_ms = max(0, int((run.finished_at - run.started_at).total_seconds() * 1000))
    ledger.record_run(run)


def _fail(ctx: RunContext, lease: Lease, message: str, refused: bool) -> RunStatus | None:
    with ctx.factory() as session, session.begin():
        if not lease.renew(session):
            return None
        fail_run(session, session.get_one(SyncRun, ctx.run_id), message, refused, ctx.settings)
    return RunStatus.FAILED


def fail_run(session: Session, run: SyncRun, message: str, refused: bool,
             settings: Settings, now: datetime | None = None) -> None:
    """Fail the run. Refused credentials flag the connection; anything else backs it off."""
    now = now or datetime.now(UTC)
    _finish(run, RunStatus.FAILED, RunTally(errors=[{"check": None, "message": message}]), now)
    conn = session.get_one(Connection, run.connection_id)
    if refused:
        conn.status, conn.status_message = ConnectionStatus.ERROR, message
    else:
        record_run_outcome(conn, failed=True, now=now, backoff_cap=_backoff_cap(settings))


def _backoff_cap(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.backoff_max_seconds)


def observe_run(provider: str, status: RunStatus, seconds: float) -> None:
    RUNS_FINISHED.labels(provider, status.value).inc()
    RUN_DURATION.labels(provider).observe(seconds)
