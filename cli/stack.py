"""The processes of the stack as commands (gunicorn, Celery worker, beat, Flower), and the
services and environment they run on; shared by `evidence` and its demo."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from rich.console import Console
from sqlalchemy import select

from engine.console_sessions import issue_login_link
from engine.db import unit_of_work
from engine.embedded import Services, ensure_services, resolved
from engine.migrate import upgrade
from engine.models import Account
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


def worker_command(settings: Settings, queues: str = "sync,default,rejudge", *,
                   pool: str = "threads", concurrency: int | None = None,
                   hostname: str | None = None) -> list[str]:
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


def served_base_url(settings: Settings, port: int | None = None) -> str:
    """Where people reach the API this command starts: EVIDENCE_PUBLIC_BASE_URL when it is set,
    else the address it binds (loopback for a wildcard)."""
    if port is None and "public_base_url" in settings.model_fields_set:
        return settings.public_base_url.rstrip("/")
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host  # noqa: S104
    return f"http://{host}:{port or settings.api_port}"


def console_sign_in(settings: Settings, account_id: str | None = None, *,
                    base_url: str | None = None) -> str:
    """What to tell the person at the terminal about the console: a fresh single-use sign-in
    link for `account_id` (default: the first account), or how to get one when there is no
    account yet."""
    base = base_url or served_base_url(settings)
    with unit_of_work(settings) as session:
        account = account_id or session.scalars(
            select(Account.id).order_by(Account.created_at, Account.id).limit(1)).first()
        if account is None:
            return (f"console: {base}/console (no account yet; once one exists, "
                    "`evidence login-link --account ID` prints a sign-in link)")
        link = issue_login_link(session, settings.model_copy(update={"public_base_url": base}),
                                account, datetime.now(UTC))
    return (f"console, signed in as {account} (the link works once, until "
            f"{link.expires_at:%H:%M} UTC; `evidence login-link --account ID` makes more):\n"
            f"  {link.url}")


def announce_console(settings: Settings) -> None:
    """Print `console_sign_in` on stderr, unwrapped (a link broken over lines opens nothing)."""
    print(console_sign_in(settings), file=sys.stderr, flush=True)
