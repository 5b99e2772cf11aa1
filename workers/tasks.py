"""Thin tasks: each takes ids, calls one engine function, and holds no logic of its own."""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime

from engine.connections import verify_connection
from engine.db import session_factory, unit_of_work
from engine.dispatch import dispatch_due as engine_dispatch_due
from engine.sync import run_sync
from workers.celery_app import celery_app


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


@celery_app.task(name="sync.run")
def sync_run(run_id: str) -> str | None:
    status = run_sync(session_factory(), run_id, worker=_worker_id())
    return status.value if status else None


@celery_app.task(name="connections.verify")
def connections_verify(connection_id: str) -> str:
    return verify_connection(session_factory(), connection_id).value


@celery_app.task(name="schedule.dispatch_due")
def dispatch_due() -> int:
    with unit_of_work() as session:
        return engine_dispatch_due(session, datetime.now(UTC))
