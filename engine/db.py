"""Database engine and sessions; jobs registered on a session are sent after it commits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import create_engine, event
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from engine.settings import Settings, get_settings


@dataclass(frozen=True)
class Job:
    """A unit of background work, named like the Celery task that runs it."""

    name: str
    args: tuple[str, ...]
    queue: str = "default"


JobSender = Callable[[Job], None]
_sender: list[JobSender] = []


def set_job_sender(sender: JobSender) -> None:
    """Install how jobs leave the process (the API and workers install Celery's send_task)."""
    _sender[:] = [sender]


def enqueue_after_commit(session: Session, job: Job) -> None:
    """Send `job` once the session's transaction has committed, never before, never on rollback."""
    session.info.setdefault("pending_jobs", []).append(job)


def _send_pending(session: Session) -> None:
    jobs: list[Job] = session.info.pop("pending_jobs", [])
    if jobs and not _sender:
        raise RuntimeError("jobs were enqueued but no job sender is installed")
    for job in jobs:
        _sender[0](job)


def _drop_pending(session: Session, *_: Any) -> None:
    session.info.pop("pending_jobs", None)


def make_engine(url: str) -> Engine:
    """The pool for `url`. A failing statement's error and log never carry its bound
    parameters (they can be key hashes, tokens or a tenant's data): only the SQL."""
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         hide_parameters=True)


def make_sessionmaker(db: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(db, expire_on_commit=False)
    event.listen(factory, "after_commit", _send_pending)
    event.listen(factory, "after_soft_rollback", _drop_pending)
    return factory


@lru_cache(maxsize=4)
def _factory_for(url: str) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(url))


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    """The process's session factory for the configured database (one engine per URL)."""
    return _factory_for((settings or get_settings()).sqlalchemy_url)


@contextmanager
def unit_of_work(settings: Settings | None = None) -> Iterator[Session]:
    """A session committed once at the end (then its jobs are sent), rolled back on error."""
    with session_factory(settings)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def rowcount(result: Result[Any]) -> int:
    """Rows a DML statement touched (its result is a CursorResult at runtime)."""
    return int(cast(CursorResult[Any], result).rowcount)
