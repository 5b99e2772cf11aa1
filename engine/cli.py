"""The `evidence` command: run the stack, migrate, mint tokens, and show a demo."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.logging import RichHandler

from engine.embedded import Services, ensure_services, resolved
from engine.settings import Settings, get_settings

console = Console(stderr=True)


def start_services(settings: Settings) -> tuple[Settings, Services]:
    services = ensure_services(settings)
    return resolved(settings, services), services


def child_env(services: Services, **extra: str) -> dict[str, str]:
    return {**os.environ, **services.environ(), **extra}


def api_command(settings: Settings, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"{settings.api_host}:{settings.api_port}",
            "--workers", str(workers), "--threads", "8", "--access-logfile", "-",
            "api.wsgi:app"]


def worker_command(settings: Settings, queues: str = "sync,default") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--queues", queues, "--pool", "threads",
            "--concurrency", str(settings.worker_concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle"]


def beat_command(settings: Settings) -> list[str]:
    schedule = settings.data_dir / "celerybeat-schedule"
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat",
            "--loglevel", "INFO", "--schedule", str(schedule)]


def migrate(settings: Settings) -> None:
    from engine.migrate import upgrade

    upgrade(settings)
    console.log("database schema is up to date")


class Children:
    """Child processes started together and stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], quiet: bool = False
              ) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if quiet else None
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
        self.procs.append((name, proc))
        return proc

    def wait_any(self) -> int:
        while True:
            for name, proc in self.procs:
                code = proc.poll()
                if code is not None:
                    console.log(f"{name} exited with {code}")
                    return code
            time.sleep(0.5)

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def cmd_up(settings: Settings) -> int:
    settings, services = start_services(settings)
    migrate(settings)
    env = child_env(services)
    children = Children()
    try:
        children.start("api", api_command(settings), env)
        children.start("worker", worker_command(settings), env)
        children.start("beat", beat_command(settings), env)
        console.log(f"API on http://{settings.api_host}:{settings.api_port} "
                    "(mint a token with `evidence token --account ID`); Ctrl-C stops")
        return children.wait_any()
    except KeyboardInterrupt:
        return 0
    finally:
        children.stop()


def cmd_exec(settings: Settings, argv: list[str]) -> int:
    """Run one process of the stack on the configured (or embedded) services, migrated."""
    settings, services = start_services(settings)
    migrate(settings)
    return subprocess.call(argv, env=child_env(services))


def cmd_token(settings: Settings, account: str, ttl_hours: float) -> int:
    from datetime import timedelta

    from engine.tokens import mint

    print(mint(settings, account, ttl=timedelta(hours=ttl_hours)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evidence", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run api + worker + beat (embedded services unless URLs are set)")
    sub.add_parser("api", help="run the HTTP API under gunicorn")
    sub.add_parser("worker", help="run a Celery worker on the sync and default queues")
    sub.add_parser("beat", help="run the Celery beat scheduler")
    db = sub.add_parser("db", help="database commands")
    db.add_argument("action", choices=["upgrade"])
    token = sub.add_parser("token", help="mint a development JWT for an account")
    token.add_argument("--account", required=True)
    token.add_argument("--hours", type=float, default=12.0)
    demo = sub.add_parser("demo", help="connect an emulated AWS estate and show its controls")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave the API up afterwards and print a token")
    args = parser.parse_args(argv)

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    for name in ("engine", "connectors", "api", "workers"):
        logging.getLogger(name).setLevel(settings.log_level)
    if args.command == "up":
        return cmd_up(settings)
    if args.command == "api":
        return cmd_exec(settings, api_command(settings))
    if args.command == "worker":
        return cmd_exec(settings, worker_command(settings))
    if args.command == "beat":
        return cmd_exec(settings, beat_command(settings))
    if args.command == "db":
        settings, _ = start_services(settings)
        migrate(settings)
        return 0
    if args.command == "token":
        return cmd_token(settings, args.account, args.hours)
    if args.command == "demo":
        from engine.demo import run_demo

        return run_demo(settings, keep_running=args.keep_running)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
