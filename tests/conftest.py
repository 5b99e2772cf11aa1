"""Shared fixtures: real Postgres, real Redis, a real Celery worker and emulated providers.

DATABASE_URL / REDIS_URL in the environment point the suite at running servers (it creates its
own database and key prefix there); without them it starts the embedded ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from engine.db import Job, session_factory, set_job_sender
from engine.embedded import start_postgres, start_redis
from engine.migrate import upgrade
from engine.settings import Settings, get_settings
from engine.tokens import mint
from tests.emulators import moto_server, reset_moto

ROOT = Path(__file__).resolve().parent.parent
# The okta SDK refuses a non-https orgUrl; its own switch lifts that for local test servers.
TEST_ONLY_ENV = {"OKTA_TESTING_TESTINGDISABLEHTTPSCHECK": "true"}
# Far above what any test sends; tests/api/test_rate_limits.py sets low limits of its own.
TEST_RATE_LIMIT = "100000/minute"


def _create_database(base_url: str) -> tuple[str, str]:
    url = make_url(base_url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"evidence_test_{uuid.uuid4().hex[:10]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), admin


def _drop_database(admin: str, test_url: str) -> None:
    name = make_url(test_url).database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a child process needs to share this test run's settings."""
    env = {
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "EVIDENCE_DATA_DIR": str(settings.data_dir),
        "EVIDENCE_JWT_SECRET": settings.jwt_secret.get_secret_value() if settings.jwt_secret
        else "",
        "EVIDENCE_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value()
        if settings.encryption_keys else "",
        "EVIDENCE_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS": "true",
        "EVIDENCE_HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
        "EVIDENCE_LEASE_STALE_SECONDS": str(settings.lease_stale_seconds),
        "EVIDENCE_VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
        "EVIDENCE_RATE_LIMIT": settings.rate_limit,
        "EVIDENCE_AUTH_RATE_LIMIT": settings.auth_rate_limit,
    }
    return {k: v for k, v in env.items() if v}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for a private database and Redis key space, with the schema migrated."""
    data_dir = tmp_path_factory.mktemp("data")
    base_db, base_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    admin = None
    if base_db:
        db_url, admin = _create_database(base_db)
    else:
        db_url = start_postgres(data_dir)
    redis_url = base_redis or start_redis(data_dir)
    prefix = f"evtest-{uuid.uuid4().hex[:8]}:" if base_redis else ""
    values = Settings(
        DATABASE_URL=db_url, REDIS_URL=redis_url, EVIDENCE_DATA_DIR=data_dir,
        EVIDENCE_JWT_SECRET="test-secret-" + uuid.uuid4().hex,
        EVIDENCE_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        EVIDENCE_REDIS_KEY_PREFIX=prefix, EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=True,
        EVIDENCE_HEARTBEAT_SECONDS=1.0, EVIDENCE_LEASE_STALE_SECONDS=10.0,
        EVIDENCE_RATE_LIMIT=TEST_RATE_LIMIT, EVIDENCE_AUTH_RATE_LIMIT=TEST_RATE_LIMIT,
    )
    os.environ.update(settings_env(values))
    get_settings.cache_clear()
    upgrade(values)
    yield values
    if admin:
        session_factory(values).kw["bind"].dispose()
        _drop_database(admin, db_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[None]:
    """An empty database for one test (every table but Alembic's truncated before it runs)."""
    with session_factory(settings)() as session:
        tables = session.scalars(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")).all()
        session.execute(text("SET LOCAL session_replication_role = replica"))  # ledger triggers
        session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        session.commit()
    yield


@contextmanager
def running_worker(env: dict[str, str], log: Path, queues: str = "sync,default",
                   concurrency: int = 4) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process with `env` added to this one's; stopped on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
             "--queues", queues, "--pool", "threads", "--concurrency", str(concurrency),
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--hostname",
             f"test-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env={**os.environ, **TEST_ONLY_ENV, **env}, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while b"ready." not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + log.read_text())
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """`app` on a free loopback port (werkzeug, threaded); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real Celery worker process on the test broker and database; yields its log file."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with running_worker(settings_env(settings), log):
        yield log


def all_evidence(client: FlaskClient, auth: dict[str, str], integration: str,
                 page_size: int = 50) -> list[dict[str, Any]]:
    """Every current evidence item of an integration, paged through the API."""
    items: list[dict[str, Any]] = []
    while True:
        page = client.get(f"/api/v1/integrations/{integration}/evidence"
                          f"?limit={page_size}&offset={len(items)}", headers=auth).get_json()
        assert "evidence" in page, page
        items.extend(page["evidence"])
        if len(items) >= page["total"] or not page["evidence"]:
            return items


@pytest.fixture
def sent() -> list[Job]:
    """Jobs the engine enqueues in this process, captured instead of sent to a broker."""
    jobs: list[Job] = []
    set_job_sender(jobs.append)
    return jobs


@pytest.fixture
def client(settings: Settings, db: None) -> FlaskClient:
    from cli.wiring import api_app

    return api_app(settings).test_client()


@pytest.fixture
def token(settings: Settings) -> str:
    return mint(settings, "acme")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server over HTTP for the whole session (reset by `aws_endpoint`)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_endpoint(moto_endpoint: str) -> str:
    """An empty emulated AWS account for one test."""
    reset_moto(moto_endpoint)
    return moto_endpoint


# The slowest tests (real processes killed, restarted and supervised; the whole API fuzzed).
# `pytest -m "not slow"` skips them for a quick run; `.ci/run` runs everything.
SLOW = ("faults/", "workers/test_process_lifecycle.py", "workers/test_fanout.py",
        "api/test_schemathesis.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(ROOT / "tests").as_posix().startswith(SLOW):
            item.add_marker(pytest.mark.slow)
