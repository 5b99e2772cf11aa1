"""The parts of a fanned-out run: each a task on the sync queue, leased like a run.

A part claims its row (queued, or running with a stale heartbeat and attempts left), runs its
checks under a heartbeat, and stores each check's results fenced by its lease, as a whole run
does. Checks over shardable collectors run in every part, each part reading its own shard of
the resources; their results are kept on the part's row. The part that finishes last (under
the run row's lock, so exactly one sees none left open) merges the sharded checks' results
and stores them, adds the tallies up, and closes the run. A part that finds the
provider refusing or unreachable fails the whole run and its open parts: the others then lose
their lease and stop. Crashed parts are given back to the queue by the reaper.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import WHOLE, Shard
from engine.evidence import Item, store_check_results
from engine.lease import Lease, claimable
from engine.metrics import CHECKS_ERRORED, EVIDENCE_ROWS
from engine.models import Connection, RunStatus, SyncPart, SyncRun
from engine.settings import Settings, get_settings
from engine.snapshots import Piece, input_digest, store_manifests
from engine.sync import (
    OPEN,
    RunContext,
    RunTally,
    close_run,
    execute_checks,
    fail_run,
    final_status,
    observe_run,
)

log = logging.getLogger(__name__)


def claim_part(session: Session, part_id: str, worker: str,
               settings: Settings) -> SyncPart | None:
    """Take the part if it is queued, or running with a stale heartbeat and attempts left,
    and its run is still running."""
    part_id_claimed = session.execute(
        update(SyncPart)
        .where(SyncPart.id == part_id, claimable(SyncPart, settings), under_running_run())
        .values(status=RunStatus.RUNNING, worker=worker, heartbeat_at=func.now(),
                attempts=SyncPart.attempts + 1)
        .returning(SyncPart.id)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    return session.get_one(SyncPart, part_id_claimed) if part_id_claimed else None


def run_part(factory: sessionmaker[Session], part_id: str, worker: str,
             settings: Settings | None = None) -> RunStatus | None:
    """Execute one part; returns its status, or None if it was not ours to run."""
    settings = settings or get_settings()
    with factory() as session, session.begin():
        part = claim_part(session, part_id, worker, settings)
        if part is None:
            return None
        run = session.get_one(SyncRun, part.run_id)
        conn = session.get_one(Connection, run.connection_id)
        ctx = RunContext(factory, run.id, conn.account_id, conn.id, conn.integration_id, settings,
                         run.started_at)
        check_ids, sharded = set(part.check_ids), frozenset(part.sharded)
        shard = Shard(part.part_no, run.parts) if sharded else WHOLE
    with Lease(factory, part_id, worker, settings.heartbeat_seconds, SyncPart) as lease:
        return execute_checks(ctx, lease, check_ids, _complete_part, _fail_parts, shard, sharded)


def _complete_part(ctx: RunContext, lease: Lease, tally: RunTally, checks: int) -> RunStatus | None:
    with ctx.factory() as session, session.begin():
        if not lease.renew(session):
            return None
        part = session.get_one(SyncPart, lease.row_id)
        status = final_status(tally, checks - len(tally.staged))
        if any(o["errors"] for o in tally.staged.values()):
            status = RunStatus.PARTIAL
        part.status, part.finished_at = status, datetime.now(UTC)
        part.evidence_count, part.changed_count = tally.evidence, tally.changed
        part.checks_errored, part.checks_crashed = tally.checks_errored, tally.crashed
        part.errors, part.staged = tally.errors, tally.staged
        session.flush()
        close_if_last(session, ctx.run_id, ctx.provider, ctx.settings)
        return status


def close_if_last(session: Session, run_id: str, provider: str,
                  settings: Settings) -> RunStatus | None:
    """Close the run if none of its parts is still open; its status, or None if some are.

    The run row's lock orders the parts that finish together: the last to take it sees every
    other part's committed row, so exactly one closes the run. It is FOR NO KEY UPDATE: a
    part's own row updates take KEY SHARE on the run (the foreign key), which FOR UPDATE
    would wait on, and two parts finishing at once would deadlock.
    """
    run = session.scalars(select(SyncRun).where(
        SyncRun.id == run_id, SyncRun.status == RunStatus.RUNNING, SyncRun.parts > 0,
    ).with_for_update(key_share=True)).first()
    if run is None:
        return None
    parts = session.scalars(select(SyncPart).where(SyncPart.run_id == run_id)
                            .order_by(SyncPart.part_no)).all()
    if any(p.status in OPEN for p in parts):
        return None
    tally = RunTally(evidence=sum(p.evidence_count for p in parts),
                     changed=sum(p.changed_count for p in parts),
                     checks_errored=sum(p.checks_errored for p in parts),
                     crashed=sum(p.checks_crashed for p in parts),
                     errors=[e for p in parts for e in p.errors])
    sharded = list(parts[0].sharded) if parts else []
    for check_id in sharded:
        _store_merged(session, run, provider, check_id, [p.staged.get(check_id) for p in parts],
                      tally, settings)
    checks = sum(len(p.check_ids) - len(p.sharded) for p in parts) + len(sharded)
    status = close_run(session, run, tally, checks, settings)
    observe_run(provider, status, (run.duration_ms or 0) / 1000)
    log.info("run %s closed by its last part: %s", run_id, status.value)
    return status


def _store_merged(session: Session, run: SyncRun, provider: str, check_id: str,
                  outcomes: list[dict[str, Any] | None], tally: RunTally,
                  settings: Settings) -> None:
    """Store a sharded check's results, merged from every part's shard (as one run would).

    If any shard's check crashed or never ran (its part was given up), nothing is known about
    that shard: the check's stored evidence stands as it was.
    """
    errors = list(dict.fromkeys(m for o in outcomes if o for m in o["errors"]))
    tally.errors.extend({"check": check_id, "message": m} for m in errors)
    if errors:
        tally.checks_errored += 1
        CHECKS_ERRORED.labels(provider).inc()
    if any(o is None or o["crashed"] for o in outcomes):
        tally.crashed += 1
        return
    merged = {row[0]: Item(*row) for o in outcomes if o for row in o["items"]}
    now = datetime.now(UTC)
    read = [Piece(*piece) for o in outcomes if o for piece in o.get("pieces", ())]
    digest, manifest = input_digest(read)
    if digest is not None and manifest is not None:
        store_manifests(session, settings, account_id=run.account_id, now=now,
                        manifests={digest: manifest})
    version = max((int(o.get("version", 1)) for o in outcomes if o), default=1)
    stats = store_check_results(session, account_id=run.account_id,
                                connection_id=run.connection_id, check_id=check_id,
                                items=list(merged.values()), run_id=run.id, now=now,
                                check_version=version, snapshot_sha256=digest)
    tally.evidence += len(merged)
    tally.changed += stats.written + stats.closed
    EVIDENCE_ROWS.labels(provider).inc(stats.written + stats.closed)


def _fail_parts(ctx: RunContext, lease: Lease, message: str, refused: bool) -> RunStatus | None:
    """The provider refused or could not be reached: fail the run and every open part."""
    with ctx.factory() as session, session.begin():
        if not lease.renew(session):
            return None
        run = session.scalars(select(SyncRun).where(
            SyncRun.id == ctx.run_id, SyncRun.status == RunStatus.RUNNING
        ).with_for_update(key_share=True)
        ).first()
        if run is None:
            return None
        # The others stop at their next write (their lease is gone). One that another part
        # holds locked right now, finishing, is skipped rather than waited for (it waits for
        # the run's lock, which this holds): it ends by itself, and the reaper cancels any
        # part left open under a finished run.
        others = (select(SyncPart.id)
                  .where(SyncPart.run_id == ctx.run_id, SyncPart.status.in_(OPEN))
                  .with_for_update(skip_locked=True))
        session.execute(update(SyncPart).where(SyncPart.id.in_(others.scalar_subquery()))
                        .values(status=RunStatus.FAILED, finished_at=func.now())
                        .execution_options(synchronize_session=False))
        fail_run(session, run, message, refused, ctx.settings)
        observe_run(ctx.provider, RunStatus.FAILED, (run.duration_ms or 0) / 1000)
    return RunStatus.FAILED


def under_running_run() -> ColumnElement[bool]:
    """The part belongs to a run still running (parts of a finished run have nothing to do)."""
    return exists().where(SyncRun.id == SyncPart.run_id, SyncRun.status == RunStatus.RUNNING)


def give_up_part(session: Session, part: SyncPart, now: datetime, settings: Settings) -> None:
    """A part whose workers kept dying: its checks count as crashed, then the run may close."""
    part.status, part.worker, part.finished_at, part.heartbeat_at = (
        RunStatus.FAILED, None, now, now)
    part.checks_crashed = len(part.check_ids) - len(part.sharded)  # sharded: at the close
    part.errors = [*part.errors, {"check": None, "message": (
        f"the worker running part {part.part_no} of this sync stopped answering "
        f"{part.attempts} times; giving up")}]
    session.flush()
    provider = session.scalar(select(Connection.integration_id).join(
        SyncRun, SyncRun.connection_id == Connection.id).where(SyncRun.id == part.run_id))
    close_if_last(session, part.run_id, provider or "unknown", settings)
