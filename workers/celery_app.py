"""The Celery application: Redis broker, `sync` and `default` queues, late acks."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from beat_schedule import SCHEDULE
from engine.db import Job, set_job_sender
from engine.settings import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    app = Celery("evidence_engine", broker=settings.redis_url, include=["workers.tasks"])
    transport: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    if settings.redis_key_prefix:
        transport["global_keyprefix"] = settings.redis_key_prefix
    app.conf.update(
        task_queues=(Queue("sync"), Queue("default")),
        task_default_queue="default",
        task_routes={"sync.*": {"queue": "sync"}, "connections.*": {"queue": "sync"}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule=SCHEDULE,
    )
    return app


celery_app = make_celery(get_settings())


def send_job(job: Job) -> None:
    """Hand an engine job to the broker by task name (the caller needs no task imports)."""
    celery_app.send_task(job.name, args=list(job.args), queue=job.queue)


set_job_sender(send_job)
