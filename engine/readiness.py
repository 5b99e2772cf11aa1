"""Readiness (`/readyz`): the database answers, the broker answers, the schema is migrated.

Each check is one cheap round trip with a short timeout, on a connection of its own (not the
app's pools), so a probe never waits behind requests and never hangs on a dead service.
Liveness (`/healthz`) depends on nothing and is not here. The answer names what failed, not
how (addresses and errors go to the log, not to an unauthenticated caller).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psycopg
import redis
from alembic.script import ScriptDirectory

from engine.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2
MIGRATIONS = Path(__file__).parent / "migrations"
OK = "ok"


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # check name -> "ok", or what is wrong

    @property
    def is_ready(self) -> bool:
        return all(result == OK for result in self.checks.values())


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def code_heads() -> frozenset[str]:
    """The Alembic heads this code ships (every head is applied by `evidence db upgrade`)."""
    return frozenset(_scripts().get_heads())


def migration_state(applied: set[str]) -> str:
    """"ok" when the database's heads (alembic_version) cover every head of this code.

    A head another revision depends on is not kept in alembic_version once that one is
    applied, so the comparison is between what the heads reach, not the two lists. A database
    ahead of this code (a newer release migrated it first, as a rolling deploy does) is
    ready: migrations only add, so older code keeps working on the newer schema until it is
    replaced, instead of every old process going unready at once."""
    known = tuple(h for h in applied if h in _revisions())
    reached = {r.revision for r in _scripts().iterate_revisions(known, "base")} if known else set()
    missing = sorted(code_heads() - reached)
    if not missing:
        return OK
    return f"not applied: {', '.join(missing)} (run `evidence db upgrade`)"


@lru_cache(maxsize=1)
def _revisions() -> frozenset[str]:
    return frozenset(r.revision for r in _scripts().walk_revisions())


def check_readiness(settings: Settings) -> Readiness:
    database, migrations = _database(settings)
    return Readiness({"database": database, "broker": _broker(settings),
                      "migrations": migrations})


def _database(settings: Settings) -> tuple[str, str]:
    """SELECT 1, then the applied heads against the code's: (database, migrations)."""
    url = settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(url, connect_timeout=TIMEOUT_SECONDS, autocommit=True,
                             options=f"-c statement_timeout={TIMEOUT_SECONDS * 1000}") as conn:
            conn.execute("SELECT 1")
            try:
                applied = {row[0] for row in conn.execute(
                    "SELECT version_num FROM alembic_version")}
            except psycopg.errors.UndefinedTable:
                applied = set()
    except psycopg.Error as exc:
        log.warning("readiness: the database is unreachable: %s", _first_line(exc))
        return "unreachable", "unknown: the database is unreachable"
    return OK, migration_state(applied)


def _broker(settings: Settings) -> str:
    """PING the Redis broker (kombu's `redis+socket://` is redis-py's `unix://`)."""
    url = settings.redis_url or ""
    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://"):]
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS,
                                      socket_timeout=TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        log.warning("readiness: the broker is unreachable: %s", _first_line(exc))
        return "unreachable"
    return OK


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
