"""Claiming a run for the worker that executes it: the run's lease, taken when the run is
queued (or its holder's heartbeat went stale), and the account's provider slots.

An account runs at most `provider_concurrency` syncs of one provider at once; a delivery that
finds those slots taken is put back (`SlotBusy`), not dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from engine.lease import claimable, stale_before
from engine.models import Connection, RunStatus, SyncRun
from engine.settings import Settings


class SlotBusy(Exception):
    """The account already runs its allowed syncs of this provider; deliver the run later."""

    def __init__(self, run_id: str, retry_after: float) -> None:
        super().__init__(f"run {run_id} waits for a provider slot")
        self.run_id = run_id
        self.retry_after = retry_after


class Claim(StrEnum):
    CLAIMED = "claimed"
    NOT_OURS = "not_ours"  # finished, owned by a live worker, or out of attempts
    NO_SLOT = "no_slot"  # the account's slots for this provider are all taken


def _claimable(settings: Settings) -> ColumnElement[bool]:
    """Queued, or running whole with a stale heartbeat and attempts left (a fanned-out run's
    parts are leased and reaped one by one instead)."""
    return claimable(SyncRun, settings, SyncRun.parts == 0)


def claim_run(session: Session, run_id: str, worker: str, settings: Settings) -> Claim:
    """Take the run if it is queued, or running with a stale heartbeat, and a slot is free.

    Slots are counted from the runs themselves (running, fresh heartbeat) under a transaction
    advisory lock on (account, integration), so a crashed worker's slot frees itself when its
    heartbeat goes stale and nothing has to be released.
    """
    target = session.execute(
        select(SyncRun.account_id, Connection.integration_id)
        .join(Connection, Connection.id == SyncRun.connection_id)
        .where(SyncRun.id == run_id, _claimable(settings))).first()
    if target is None:
        return Claim.NOT_OURS
    account_id, integration_id = target
    session.execute(select(func.pg_advisory_xact_lock(
        func.hashtextextended(f"provider-slot:{account_id}:{integration_id}", 0))))
    busy = session.scalar(
        select(func.count()).select_from(SyncRun)
        .join(Connection, Connection.id == SyncRun.connection_id)
        .where(SyncRun.account_id == account_id, Connection.integration_id == integration_id,
               SyncRun.id != run_id, SyncRun.status == RunStatus.RUNNING,
               or_(SyncRun.heartbeat_at >= stale_before(settings), SyncRun.parts > 0))) or 0
    if busy >= settings.provider_concurrency:
        # Still waiting with a live message: the reaper must not think it was lost.
        session.execute(update(SyncRun).where(SyncRun.id == run_id)
                        .values(enqueued_at=func.now())
                        .execution_options(synchronize_session=False))
        return Claim.NO_SLOT
    claimed = session.execute(
        update(SyncRun).where(SyncRun.id == run_id, _claimable(settings))
        .values(status=RunStatus.RUNNING, worker=worker, heartbeat_at=func.now(),
                # The application's clock, as the run's finished_at and its evidence and
                # snapshot times are (the database's now() is not the clock a run is dated by).
                started_at=func.coalesce(SyncRun.started_at, datetime.now(UTC)),
                attempts=SyncRun.attempts + 1)
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)).first()
    return Claim.CLAIMED if claimed is not None else Claim.NOT_OURS
