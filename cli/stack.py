"""The processes of the stack as commands (gunicorn, Celery worker, beat, Flower), and the
services and environment they run on; shared by `evidence` and its demo."""

from __future__ import annotations

import os
import sys

from rich.console import Console

from engine.embedded import Services, ensure_services, resolved
from engine.migrate import upgrade
from engine.settings import Settings

console = Console(stderr=True)


def start_services(settings: Settings) -> tuple[Settings, Services]:
    services = ensure_services(settings)
    return resolved(settings, services), services


def child_env(services: Services, **extra: str) -> dict[str, str]:
    return {**os.environ, **services.environ(), **extra}


GUNICORN_LIMITS = ("--worker-class", "api.gunicorn_worker.JsonErrorWorker",
                   "--limit-request-line", "4094", "--limit-request-field_size", "8190",
                   "--limit-request-fields", "100")
"""What gunicorn reads of a request before the app sees it; beyond it the refusal (414, 431,
400) is JSON in the API's error shape (the worker class). Bodies: EVIDENCE_MAX_BODY_BYTES."""


def api_command(settings: Settings, workers: int = 2) -> list[str]:
    """gunicorn with a control socket of its own under the data folder (its default, one per
    user, would be shared by every stack on the machine); drains within the shutdown bound."""
    control = settings.data_dir / f"gunicorn-{settings.api_port}.ctl"
    return [sys.executable, "-m", "gunicorn", "--bind", f"{settings.api_host}:{settings.api_port}",
            "--workers", str(workers), "--threads", str(settings.api_threads),
            "--access-logfile", "-", "--control-socket", str(control),
            "--graceful-timeout", str(max(1, int(settings.shutdown_seconds))),
            *GUNICORN_LIMITS, "cli.wsgi:app"]


def worker_command(settings: Settings, queues: str = "sync,default", *, pool: str = "threads",
                   concurrency: int | None = None, hostname: str | None = None) -> list[str]:
    """A Celery worker. Connector syncs are I/O bound: a `threads` pool sized for waiting."""
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--queues", queues, "--pool", pool,
            "--concurrency", str(concurrency or settings.worker_concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle"]
    return [*argv, "--hostname", hostname] if hostname else argv


def flower_command(port: int, address: str) -> list[str]:
    """Flower on the engine's broker (the app's settings: URL, key prefix, transport options)."""
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "flower",
            f"--port={port}", f"--address={address}"]


def beat_command(settings: Settings) -> list[str]:
    schedule = settings.data_dir / "celerybeat-schedule"
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat",
            "--loglevel", "INFO", "--schedule", str(schedule)]


def migrate(settings: Settings) -> None:
    upgrade(settings)
    console.log("database schema is up to date")
