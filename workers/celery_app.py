"""The Celery application: Redis broker, `sync`, `default` and `rejudge` queues, late acks."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import worker_init
from kombu import Queue

from beat_schedule import schedule
from engine.beat_lock import BEAT_LOCKED_EXIT, BeatLock, BeatLocked
from engine.db import Job, JobSender, set_job_sender
from engine.registry import connectors
from engine.settings import Settings, get_settings
from workers.metrics import serve_worker_metrics

log = logging.getLogger(__name__)

QUEUES = ("sync", "default", "rejudge")
"""`rejudge` is its own queue, so judging a large account's history again never waits behind
(or holds up) syncs: run a worker for it with `evidence worker --queues rejudge`."""


def make_celery(settings: Settings) -> Celery:
    app = Celery("evidence_engine", broker=settings.redis_url, include=["workers.tasks"])
    timeout = settings.visibility_timeout
    transport: dict[str, Any] = {
        "visibility_timeout": timeout,
        # Look for unacknowledged messages past the timeout every few seconds (kombu's default
        # sweep runs every ~100 s), so a short test timeout is honoured promptly.
        "unacked_restore_interval": max(1, min(10, timeout // 4)),
        "unacked_restore_throttle": 1,
    }
    if settings.redis_key_prefix:
        transport["global_keyprefix"] = settings.redis_key_prefix
    app.conf.update(
        task_queues=tuple(Queue(name) for name in QUEUES),
        task_default_queue="default",
        task_routes={"sync.*": {"queue": "sync"}, "connections.*": {"queue": "sync"},
                     "rejudge.*": {"queue": "rejudge"}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=settings.worker_events,  # Flower needs them
        task_send_sent_event=settings.worker_events,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule=schedule(settings),
        beat_scheduler="workers.celery_app:SingleBeatScheduler",
    )
    return app


class SingleBeatScheduler(PersistentScheduler):
    """Celery's default scheduler, run only by the beat holding the database's beat lock.

    The lock is taken before the schedule file is opened (a scheduler built lazily, for the
    banner, takes nothing): a second beat exits with BEAT_LOCKED_EXIT and a message, touching
    nothing. EVIDENCE_BEAT_LOCK=false skips it.
    """

    def setup_schedule(self) -> None:
        settings = get_settings()
        if settings.beat_lock and not _held:
            lock = BeatLock(settings, on_lost=_stop_beat)
            try:
                lock.hold()
            except BeatLocked as exc:
                log.critical("%s; a second beat would double every periodic task, so this one "
                             "does not start", exc)
                raise SystemExit(BEAT_LOCKED_EXIT) from exc
            _held.append(lock)
        super().setup_schedule()


_held: list[BeatLock] = []  # the lock this process holds, for its life


def _stop_beat(reason: str) -> None:
    log.critical("%s (taken while this beat's connection was lost); stopping", reason)
    os.kill(os.getpid(), signal.SIGTERM)


def queue_depths(app: Celery) -> dict[str, int]:
    """Messages waiting in each queue (not those a worker holds unacknowledged).

    Declares the queues (as every worker does) rather than a passive check: kombu's Redis
    transport checks existence with an EXISTS that ignores `global_keyprefix`.
    """
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        return {name: channel.queue_declare(queue=name).message_count for name in QUEUES}


def job_sender(app: Celery) -> JobSender:
    """How engine jobs leave a process through `app`: by task name onto its broker (the caller
    needs no task imports)."""
    def send(job: Job) -> None:
        app.send_task(job.name, args=list(job.args), queue=job.queue)

    return send


celery_app = make_celery(get_settings())
send_job = job_sender(celery_app)


@worker_init.connect
def _prepare_worker(**_: Any) -> None:
    """Import every connector now, not inside the first run's lease; serve this process's
    metrics on EVIDENCE_WORKER_METRICS_PORT (0: off)."""
    connectors()
    serve_worker_metrics(get_settings())


set_job_sender(send_job)
