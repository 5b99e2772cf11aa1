"""The embedded default and the configured path both reach working services, and an
embedded server stops with the process that started it (or is adopted after a kill -9)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import redis

from engine.embedded import ensure_services
from engine.settings import Settings
from tests.conftest import ROOT
from tests.faults.stack import wait_for


def test_without_urls_private_postgres_and_redis_start_under_the_data_folder(tmp_path: Path):
    services = ensure_services(Settings(EVIDENCE_DATA_DIR=tmp_path, DATABASE_URL=None,
                                        REDIS_URL=None))
    assert services.embedded == ("postgres", "redis")
    assert str(tmp_path) in services.database_url and str(tmp_path) in services.redis_url
    with psycopg.connect(services.database_url) as conn:
        assert conn.execute("select 41 + 1").fetchone() == (42,)
    client = redis.Redis(unix_socket_path=services.redis_url.removeprefix("redis+socket://"))
    assert client.ping()


def test_set_urls_are_used_as_they_are_and_nothing_is_started(tmp_path: Path, settings):
    configured = Settings(DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url,
                          EVIDENCE_DATA_DIR=tmp_path / "unused")
    services = ensure_services(configured)
    assert services.embedded == ()
    assert (services.database_url, services.redis_url) == (settings.database_url,
                                                           settings.redis_url)
    assert not (tmp_path / "unused").exists()


# A process that starts the embedded Redis and leaves clients connected (as the suite does: its
# Celery pools, its own clients), then exits normally or is killed.
PROBE = """
import os, signal, sys
from pathlib import Path
import redis
from engine.embedded import start_redis

url = start_redis(Path(sys.argv[1]))
clients = [redis.Redis(unix_socket_path=url.removeprefix("redis+socket://")) for _ in range(3)]
for client in clients:
    client.ping()
print(clients[0].info()["process_id"], flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def run_probe(data_dir: Path, end: str) -> int:
    """The embedded Redis server's pid, as the probe saw it."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(data_dir), end], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip(), out.stderr
    return int(out.stdout.split()[0])


def stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def servers_on(data_dir: Path) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if any(str(data_dir) in arg for arg in p.info["cmdline"] or [])
            and not stopped(p.pid)]


def test_embedded_redis_stops_when_its_process_exits_with_clients_still_connected(
        tmp_path: Path):
    pid = run_probe(tmp_path, "exit")
    wait_for(lambda: stopped(pid), 30, "the embedded redis-server to stop")
    assert servers_on(tmp_path) == []


def test_a_redis_left_by_a_killed_process_is_adopted_then_stopped_not_doubled(tmp_path: Path):
    left = run_probe(tmp_path, "kill")
    try:
        assert not stopped(left)  # kill -9 runs no exit handler: the server is left running
        assert run_probe(tmp_path, "exit") == left  # the next one uses it, no second server
        wait_for(lambda: stopped(left), 30, "the adopted redis-server to stop")
        assert servers_on(tmp_path) == []
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(left).kill()


PG_PROBE = """
import os, signal, sys
from pathlib import Path
import psycopg
from engine.embedded import start_postgres

url = start_postgres(Path(sys.argv[1]))
with psycopg.connect(url) as conn:
    print(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0], flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def run_pg_probe(data_dir: Path, end: str) -> str:
    out = subprocess.run([sys.executable, "-c", PG_PROBE, str(data_dir), end], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
    assert out.stdout.strip(), out.stderr
    return out.stdout.strip()


def test_a_postgres_left_by_a_killed_process_is_reused_then_stopped_by_the_next(
        tmp_path: Path):
    started = run_pg_probe(tmp_path, "kill")
    try:
        assert servers_on(tmp_path)  # left running by the kill -9
        assert run_pg_probe(tmp_path, "exit") == started  # the same server, reused
        wait_for(lambda: not servers_on(tmp_path), 60, "the reused PostgreSQL to stop")
    finally:
        for pid in servers_on(tmp_path):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
