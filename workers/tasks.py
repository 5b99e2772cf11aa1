"""Thin tasks: each takes ids, calls one engine function, and holds no logic of its own."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from celery import Task

from engine import ledger, maintenance
from engine.db import session_factory, unit_of_work
from engine.dispatch import dispatch_all_due
from engine.lease import worker_id
from engine.mail import send_mail
from engine.parts import run_part
from engine.rejudge import rejudge
from engine.settings import get_settings
from engine.storage import is_configured, open_store
from engine.sync import SlotBusy, run_sync
from engine.verification import verify_connection
from workers.celery_app import celery_app

log = logging.getLogger(__name__)


@celery_app.task(name="sync.run", bind=True, max_retries=None)
def sync_run(self: Task, run_id: str) -> str | None:
    try:
        status = run_sync(session_factory(), run_id, worker=worker_id())
    except SlotBusy as busy:  # the account's provider slots are full: come back later
        raise self.retry(countdown=busy.retry_after) from None
    return status.value if status else None


@celery_app.task(name="sync.part")
def sync_part(part_id: str) -> str | None:
    status = run_part(session_factory(), part_id, worker=worker_id())
    return status.value if status else None


@celery_app.task(name="connections.verify")
def connections_verify(connection_id: str) -> str:
    return verify_connection(session_factory(), connection_id, worker=worker_id()).value


@celery_app.task(name="schedule.dispatch_due")
def dispatch_due() -> int:
    return dispatch_all_due(session_factory(), datetime.now(UTC), get_settings().dispatch_batch)


@celery_app.task(name="maintenance.reap_stale_runs")
def reap_stale_runs() -> dict[str, int]:
    with unit_of_work() as session:
        reaped = maintenance.reap_stale_runs(session, get_settings())
    return {"requeued": len(reaped.requeued), "resent": len(reaped.resent),
            "failed": len(reaped.failed)}


@celery_app.task(name="maintenance.prune_history")
def prune_history() -> dict[str, int]:
    retention = timedelta(days=get_settings().history_retention_days)
    pruned = maintenance.prune_history(session_factory(), datetime.now(UTC), retention)
    return {"runs": pruned.runs, "control_history": pruned.control_history,
            "snapshots": pruned.snapshots}


@celery_app.task(name="maintenance.expire_unverified_uploads")
def expire_unverified_uploads() -> int:
    settings = get_settings()
    if not is_configured(settings):  # no evidence storage: nothing was ever uploaded
        return 0
    window = timedelta(seconds=settings.upload_verify_window_seconds)
    return maintenance.expire_unverified_uploads(session_factory(), open_store(settings),
                                                 datetime.now(UTC), window, settings=settings,
                                                 worker=worker_id()).uploads


@celery_app.task(name="ledger.checkpoint")
def ledger_checkpoint() -> int:
    """Sign a checkpoint of every account whose ledger grew since its last one."""
    with unit_of_work() as session:
        return len(ledger.checkpoint_moved(session, datetime.now(UTC)))


@celery_app.task(name="mail.send", bind=True, max_retries=None)
def mail_send(self: Task, mail_id: str) -> str:
    """Send one queued mail over SMTP (engine.mail); a failed attempt comes back when it says."""
    attempt = send_mail(session_factory(), get_settings(), mail_id, worker=worker_id())
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in)
    return attempt.status.value


@celery_app.task(name="rejudge.run")
def rejudge_run(account_id: str, connection_id: str = "", check_id: str = "", since: str = "",
                apply: str = "") -> dict[str, int]:
    """Judge stored snapshots again with today's checks (engine.rejudge), on its own queue;
    arguments as engine.rejudge.rejudge_job makes them ("" for none)."""
    with unit_of_work() as session:
        report = rejudge(session, get_settings(), account_id=account_id or None,
                         connection_id=connection_id or None, check_id=check_id or None,
                         since=datetime.fromisoformat(since) if since else None,
                         apply=apply == "apply")
    log.info("rejudge of %s: %d verdicts %s (%d snapshot states)", connection_id or account_id,
             len(report.changes), "recorded" if apply else "would change", report.intervals)
    return {"changes": len(report.changes), "intervals": report.intervals}
