"""The `evidence` command: run the stack, migrate, mint tokens, and show a demo."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from rich.logging import RichHandler

from cli.demo import run_demo
from cli.stack import (
    GUNICORN_LIMITS,
    announce_console,
    api_command,
    beat_command,
    child_env,
    console,
    flower_command,
    migrate,
    start_services,
    worker_command,
)
from cli.supervisor import Children, supervise
from engine import keys, ledger
from engine.checklist import print_checks
from engine.console_sessions import issue_login_link
from engine.db import session_factory, unit_of_work
from engine.errors import EngineError
from engine.lease import release_dead_holders
from engine.rejudge import describe, rejudge, rejudge_job
from engine.settings import Settings, get_settings
from engine.tokens import mint
from engine.vault import load_keys
from workers.celery_app import job_sender, make_celery

__all__ = ["GUNICORN_LIMITS", "Children", "api_command", "beat_command", "flower_command",
           "main", "worker_command"]


def readyz_url(settings: Settings) -> str:
    """Where the supervisor asks the API it started whether it is ready."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host  # noqa: S104
    return f"http://{host}:{settings.api_port}/readyz"


def answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own API
            return bool(resp.status == 200)
    except (OSError, ValueError):  # refused, 503 (HTTPError), timeout
        return False


def stop_while_starting() -> None:
    """SIGTERM or SIGINT before the children run (embedded services starting, migrations) ends
    the command at once, as a requested stop (exit 0), its exit handlers stopping what it
    started; `supervise` takes the signals over once there are children to drain."""
    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def cmd_up(settings: Settings) -> int:
    stop_while_starting()
    settings, services = start_services(settings)
    migrate(settings)
    env = child_env(services)
    env.setdefault("EVIDENCE_WORKER_EVENTS", "true")  # so `evidence flower` sees the tasks
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    children = Children(settings.shutdown_seconds, on_exit=lambda pids: release(settings, pids))
    url, ready = readyz_url(settings), threading.Event()

    def start() -> None:
        children.start("api", api_command(settings), env)
        # rejudging stored snapshots (`evidence rejudge --queue`) shares the default worker
        for offset, (queue, queues, concurrency) in enumerate(
                (("sync", "sync", settings.worker_concurrency),
                 ("default", "default,rejudge", 2))):
            children.start(f"worker-{queue}", worker_command(
                settings, queues, concurrency=concurrency, hostname=f"{queue}@%h"),
                _metrics_env(env, settings, offset), restart=True)
        children.start("beat", beat_command(settings), env, restart=True)
        console.log(f"starting; waiting for {url}")

    def announce_when_ready() -> None:
        if not ready.is_set() and answers_ready(url):
            ready.set()
            console.log(f"ready: API on http://{settings.api_host}:{settings.api_port} (mint a "
                        "token with `evidence token --account ID`); Ctrl-C or SIGTERM stops")
            announce_console(settings)

    return supervise(children, start, announce_when_ready)


def release(settings: Settings, pids: list[int]) -> None:
    """Leases held by worker processes that are gone: stale now, taken over at once."""
    with unit_of_work(settings) as session:
        released = release_dead_holders(session, pids)
    if released:
        console.log(f"released {released} leases held by stopped workers")


def _metrics_env(env: dict[str, str], settings: Settings, offset: int) -> dict[str, str]:
    """Each worker process of `up` exports its metrics on EVIDENCE_WORKER_METRICS_PORT + n."""
    if not settings.worker_metrics_port:
        return env
    return {**env, "EVIDENCE_WORKER_METRICS_PORT": str(settings.worker_metrics_port + offset)}


def cmd_exec(settings: Settings, name: str, argv: list[str], **extra: str) -> int:
    """Run one process of the stack on the configured (or embedded) services, migrated."""
    stop_while_starting()
    settings, services = start_services(settings)
    migrate(settings)
    return run_supervised(settings, name, argv, child_env(services, **extra))


def run_supervised(settings: Settings, name: str, argv: list[str], env: dict[str, str]) -> int:
    """One child that dies with this process; SIGTERM or SIGINT drains it within
    EVIDENCE_SHUTDOWN_SECONDS (then exit 0); otherwise its own exit code."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    releases = (lambda pids: release(settings, pids)) if name == "worker" else None
    children = Children(settings.shutdown_seconds, on_exit=releases)

    def start() -> None:
        children.start(name, argv, env)

    return supervise(children, start)


def cmd_flower(settings: Settings, port: int, address: str) -> int:
    """Flower on the configured (or embedded) broker; workers must send events (-E)."""
    stop_while_starting()
    _, services = start_services(settings)
    console.log(f"Flower on http://{address}:{port} (set FLOWER_BASIC_AUTH=user:password "
                "to require a login)")
    return run_supervised(settings, "flower", flower_command(port, address),
                          child_env(services))


def cmd_keys(settings: Settings, action: str, batch_size: int) -> int:
    """`keys rotate` re-seals every stored secret with the newest key; `keys status` reports.

    Exits 0 when every stored secret is under the newest key (the older ones can be removed
    from EVIDENCE_ENCRYPTION_KEYS), 1 when some remain under older keys or none opens them.
    """
    settings, _ = start_services(settings)
    factory, ring = session_factory(settings), keys.KeyRing(load_keys(settings))
    found = keys.status(factory, ring)
    if action == "rotate":
        def progress(label: str, resealed: int) -> None:
            if resealed:
                console.log(f"{label}: {resealed} re-sealed")

        done = keys.rotate(factory, ring, batch_size=batch_size, after_batch=progress)
        found = keys.merge(done, keys.status(factory, ring))
    for report in found:
        rotated = f"{report.rotated} re-sealed, " if action == "rotate" else ""
        print(f"{report.label}: {rotated}{report.by_key.get(0, 0)} under the newest key, "
              f"{report.under_older_keys} under older keys, {report.unreadable} that no "
              "configured key opens")
    remaining = sum(r.under_older_keys + r.unreadable for r in found)
    print("every stored secret is under the newest key; older keys can be removed"
          if not remaining else f"{remaining} stored secrets are not under the newest key")
    return 0 if not remaining else 1


def cmd_token(settings: Settings, account: str, ttl_hours: float) -> int:
    print(mint(settings, account, ttl=timedelta(hours=ttl_hours)))
    return 0


def cmd_login_link(settings: Settings, account: str) -> int:
    """Print a single-use console sign-in link for the account (EVIDENCE_PUBLIC_BASE_URL)."""
    settings, _ = start_services(settings)
    migrate(settings)
    with unit_of_work(settings) as session:
        link = issue_login_link(session, settings, account, datetime.now(UTC))
    print(link.url)
    print(f"works once, until {link.expires_at:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    return 0


def cmd_ledger_verify(settings: Settings, account: str | None, checkpoint: str | None) -> int:
    """Recompute every chain (or one account's) and print OK or the first broken entry; with
    a kept checkpoint, also its signature and the prefix it vouches for. Exit 1 when broken."""
    try:
        document = ledger.read_checkpoint(Path(checkpoint).read_text()) if checkpoint else None
    except (OSError, EngineError) as exc:
        print(f"cannot read the checkpoint {checkpoint}: {exc}", file=sys.stderr)
        return 2
    settings, _ = start_services(settings)
    with unit_of_work(settings) as session:
        verdicts = ledger.verify_accounts(session, account, checkpoint=document,
                                          settings=settings)
    for verdict in verdicts:
        print("\n".join(ledger.describe(verdict)))
    if not verdicts:
        print(f"no ledger entries{f' for account {account}' if account else ''}")
    return 0 if all(v.ok for v in verdicts) else 1


def cmd_rejudge(settings: Settings, args: argparse.Namespace) -> int:
    """Judge the stored snapshots again with today's checks; print what would change (or,
    with --apply, what was recorded). Exit 0, or 2 when the scope is wrong."""
    settings, _ = start_services(settings)
    migrate(settings)
    if args.queue:
        job_sender(make_celery(settings))(rejudge_job(
            args.account, args.connection, args.check, args.since, args.apply))
        print("sent to the rejudge queue; a worker consuming it runs it "
              "(evidence worker --queues rejudge), its log says what changed")
        return 0
    try:
        with unit_of_work(settings) as session:
            report = rejudge(session, settings, account_id=args.account,
                             connection_id=args.connection, check_id=args.check,
                             since=args.since, apply=args.apply)
    except EngineError as exc:
        print(f"evidence rejudge: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(describe(report))
    return 0


def since_arg(value: str) -> datetime:
    """--since: an ISO date (00:00 UTC) or date and time (UTC unless it says otherwise)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evidence", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run api + sync and default workers + beat (embedded services "
                   "unless URLs are set); a worker or beat that dies is restarted")
    sub.add_parser("api", help="run the HTTP API under gunicorn")
    worker = sub.add_parser("worker", help="run a Celery worker (default: the sync, default and "
                            "rejudge queues, a threads pool of EVIDENCE_WORKER_CONCURRENCY)")
    worker.add_argument("--queues", default="sync,default,rejudge")
    worker.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    worker.add_argument("--concurrency", type=int, default=None)
    worker.add_argument("--hostname", default=None, help="node name, e.g. sync@%%h")
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="serve this worker's Prometheus metrics on this port")
    sub.add_parser("beat", help="run the Celery beat scheduler")
    flower = sub.add_parser("flower", help="run Flower (Celery monitoring) on the broker")
    flower.add_argument("--port", type=int, default=5555)
    flower.add_argument("--address", default="127.0.0.1")
    db = sub.add_parser("db", help="database commands")
    db.add_argument("action", choices=["upgrade"])
    token = sub.add_parser("token", help="mint a development JWT for an account")
    token.add_argument("--account", required=True)
    token.add_argument("--hours", type=float, default=12.0)
    sub.add_parser("login-link", help="print a single-use sign-in link to the web console "
                   "for an account").add_argument("--account", required=True)
    keys = sub.add_parser("keys", help="encryption keys: `rotate` re-seals every stored secret "
                          "with the newest key of EVIDENCE_ENCRYPTION_KEYS; `status` reports")
    keys.add_argument("action", choices=["rotate", "status"])
    keys.add_argument("--batch-size", type=int, default=500)
    demo = sub.add_parser("demo", help="connect an emulated AWS estate and show its controls")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave the API up afterwards and print a token")
    sub.add_parser("checks", help="list every check with its controls").add_argument(
        "--markdown", action="store_true", help="print markdown (docs/checks.md)")
    again = sub.add_parser("rejudge", help="run today's checks on the stored snapshots (no "
                           "provider call) and report the verdicts that would change")
    scope = again.add_mutually_exclusive_group(required=True)
    scope.add_argument("--connection", help="one connection's snapshots")
    scope.add_argument("--account", help="every connection of the account")
    again.add_argument("--check", help="one check id")
    again.add_argument("--since", type=since_arg, help="ISO date: states from then on")
    again.add_argument("--apply", action="store_true", help="record the new verdicts "
                       "(judgements; new evidence versions for the current state)")
    again.add_argument("--json", action="store_true", help="print JSON")
    again.add_argument("--queue", action="store_true", help="send it to a worker on the "
                       "rejudge queue (large accounts) instead of running it here")
    ledger_verify = sub.add_parser("ledger", help="the tamper-evident ledger").add_subparsers(
        dest="ledger_command", required=True).add_parser(
        "verify", help="recompute the hash chains; name the first broken entry (exit 1)")
    ledger_verify.add_argument("--account", help="only this account's chain")
    ledger_verify.add_argument("--checkpoint", metavar="FILE", help="a kept checkpoint (JSON, "
                               "as GET /api/v1/ledger/checkpoints serves one): check its "
                               "signature and that the chain still starts as it says")
    args = parser.parse_args(argv)

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    for name in ("engine", "connectors", "api", "workers"):
        logging.getLogger(name).setLevel(settings.log_level)
    if args.command == "up":
        return cmd_up(settings)
    if args.command == "api":
        return cmd_exec(settings, "api", api_command(settings))
    if args.command == "worker":
        extra = {"EVIDENCE_WORKER_METRICS_PORT": str(args.metrics_port)} \
            if args.metrics_port is not None else {}
        return cmd_exec(settings, "worker", worker_command(
            settings, args.queues, pool=args.pool, concurrency=args.concurrency,
            hostname=args.hostname), **extra)
    if args.command == "flower":
        return cmd_flower(settings, args.port, args.address)
    if args.command == "beat":
        return cmd_exec(settings, "beat", beat_command(settings))
    if args.command == "db":
        settings, _ = start_services(settings)
        migrate(settings)
        return 0
    if args.command == "token":
        return cmd_token(settings, args.account, args.hours)
    if args.command == "login-link":
        return cmd_login_link(settings, args.account)
    if args.command == "keys":
        return cmd_keys(settings, args.action, args.batch_size)
    if args.command == "demo":
        return run_demo(settings, keep_running=args.keep_running)
    if args.command == "checks":
        return print_checks(markdown=args.markdown)
    if args.command == "rejudge":
        return cmd_rejudge(settings, args)
    if args.command == "ledger":
        return cmd_ledger_verify(settings, args.account, args.checkpoint)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
