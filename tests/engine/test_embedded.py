"""The embedded default and the configured path both reach working services."""

from __future__ import annotations

from pathlib import Path

import psycopg
import redis

from engine.embedded import ensure_services
from engine.settings import Settings


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
