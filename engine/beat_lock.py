"""One beat per database: a Postgres session advisory lock held for the beat process's life.

The lock lives on a connection of its own, so Postgres releases it the moment the process
dies, however it dies (no TTL to wait out). A keeper thread checks that connection; when it
breaks (Postgres restarted) the lock is taken again, and a beat that finds another beat holding
it by then stops. Dispatch's own FOR UPDATE SKIP LOCKED claim stays the second line.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import psycopg

from engine.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAME = "evidence-engine:beat"
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
APPLICATION = "evidence beat"
BEAT_LOCKED_EXIT = 3  # the exit code of a beat that found the lock held


class BeatLocked(Exception):
    """Another beat holds this database's beat lock."""


def _url(settings: Settings) -> str:
    return settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "SELECT a.application_name, a.client_addr, a.pid FROM pg_stat_activity a "
        "WHERE a.application_name LIKE %s AND a.pid <> pg_backend_pid() "
        "AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' "
        "AND l.granted) LIMIT 1", (APPLICATION + "%",)).fetchone()
    if row is None:
        return "another beat"
    name, addr, pid = row
    return f"{name} (backend pid {pid}{f', from {addr}' if addr else ''})"


def take_beat_lock(settings: Settings, wait_seconds: float = 5.0) -> psycopg.Connection:
    """The connection that holds the beat lock; BeatLocked if another beat keeps it past
    `wait_seconds` (a beat restarted after a crash waits out the old session's end)."""
    name = f"{APPLICATION} {socket.gethostname()}:{os.getpid()}"[:63]
    conn = psycopg.connect(_url(settings), autocommit=True, application_name=name,
                           connect_timeout=10)
    deadline = time.monotonic() + wait_seconds
    while True:
        row = conn.execute(_TRY_LOCK, (LOCK_NAME,)).fetchone()
        if row and row[0]:
            return conn
        if time.monotonic() >= deadline:
            holder = _holder(conn)
            conn.close()
            raise BeatLocked(f"{holder} holds the beat lock of this database")
        time.sleep(0.5)


class BeatLock:
    """The lock, kept for the process's life: `hold()` takes it, a keeper thread re-takes it
    after a lost connection and calls `on_lost` if another beat has it by then."""

    def __init__(self, settings: Settings, on_lost: Callable[[str], None],
                 check_seconds: float = 5.0) -> None:
        self.settings, self.on_lost, self.check_seconds = settings, on_lost, check_seconds
        self.conn: psycopg.Connection | None = None

    def hold(self) -> None:
        self.conn = take_beat_lock(self.settings)
        threading.Thread(target=self._keep, daemon=True, name="beat-lock").start()

    def _keep(self) -> None:
        while True:
            time.sleep(self.check_seconds)
            try:
                assert self.conn is not None  # noqa: S101 - set by hold()
                self.conn.execute("SELECT 1")
                continue
            except psycopg.Error:
                log.warning("lost the connection holding the beat lock; taking it again")
            try:
                self.conn = take_beat_lock(self.settings, wait_seconds=0)
                log.info("holding the beat lock again")
            except BeatLocked as exc:
                self.on_lost(str(exc))
                return
            except psycopg.Error:
                continue  # the database is still away: try again on the next check
