"""`/healthz` is liveness (depends on nothing); `/readyz` is readiness: database, broker and
migrations, 503 naming the check that failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from engine.db import session_factory
from engine.readiness import code_heads
from engine.settings import Settings
from tests.emulators import free_port


def test_readyz_answers_200_when_database_broker_and_migrations_are_all_right(
        client: FlaskClient):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "checks": {
        "database": "ok", "broker": "ok", "migrations": "ok"}}
    assert resp.headers["Cache-Control"] == "no-store"


def test_readyz_answers_503_when_the_broker_is_unreachable_and_healthz_still_200(
        settings: Settings, db: None):
    from api import create_app

    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = create_app(dead).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "unavailable", "checks": {
        "database": "ok", "broker": "unreachable", "migrations": "ok"}}
    assert client.get("/healthz").status_code == 200


def test_readyz_answers_503_when_the_database_is_unreachable(settings: Settings, db: None):
    from api import create_app

    dead = settings.model_copy(update={
        "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"})
    resp = create_app(dead).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"] == {"database": "unreachable", "broker": "ok",
                                         "migrations": "unknown: the database is unreachable"}


@pytest.fixture
def one_head_behind(settings: Settings) -> Iterator[str]:
    """The database as if the newest revision of one branch had not been applied yet."""
    factory = session_factory(settings)
    with factory() as s, s.begin():
        applied = set(s.scalars(text("SELECT version_num FROM alembic_version")))
        head = sorted(applied & code_heads())[-1]
        s.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": head})
    try:
        yield head
    finally:
        with factory() as s, s.begin():
            s.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})


def test_readyz_answers_503_when_the_migrations_are_behind(client: FlaskClient,
                                                           one_head_behind: str):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    checks = resp.get_json()["checks"]
    assert checks["database"] == checks["broker"] == "ok"
    assert checks["migrations"].startswith("not applied: ")  # with what only it reached
    assert one_head_behind in checks["migrations"]
    assert checks["migrations"].endswith("(run `evidence db upgrade`)")


@pytest.fixture
def one_head_ahead(settings: Settings) -> Iterator[str]:
    """The database as if a newer release had applied a revision this code does not know."""
    factory, newer = session_factory(settings), "9999_from_a_newer_release"
    with factory() as s, s.begin():
        s.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": newer})
    try:
        yield newer
    finally:
        with factory() as s, s.begin():
            s.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": newer})


def test_readyz_stays_ready_when_a_newer_release_migrated_first(client: FlaskClient,
                                                                 one_head_ahead: str):
    """A rolling deploy migrates before the old processes are replaced: they stay ready."""
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["checks"]["migrations"] == "ok"
