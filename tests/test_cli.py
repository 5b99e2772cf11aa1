"""The `evidence` command as a user runs it: token, db upgrade, up, demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jwt
import psycopg
import requests

from engine.settings import Settings
from tests.conftest import ROOT, _create_database, _drop_database, settings_env
from tests.emulators import free_port

EVIDENCE = [sys.executable, "-m", "cli.main"]


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*EVIDENCE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_token_mints_a_jwt_for_the_account(settings: Settings):
    out = run(["token", "--account", "acme-co"], {**os.environ, **settings_env(settings)})
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), settings.jwt_secret.get_secret_value(),
                        algorithms=["HS256"], audience=settings.jwt_audience)
    assert claims["account"] == "acme-co"


def test_db_upgrade_creates_the_schema_on_an_empty_database(settings: Settings):
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql://postgres@127"):
        url, admin = settings.database_url, None  # embedded: upgrade is idempotent here
    else:
        url, admin = _create_database(os.environ["DATABASE_URL"])
    try:
        env = {**os.environ, **settings_env(settings), "DATABASE_URL": url}
        out = run(["db", "upgrade"], env)
        assert out.returncode == 0, out.stderr
        with psycopg.connect(url) as conn:
            tables = {r[0] for r in conn.execute(
                "select tablename from pg_tables where schemaname = 'public'")}
        assert {"connection", "sync_run", "evidence", "evidence_version", "control_result",
                "control_result_history", "check_state", "account"} <= tables
    finally:
        if admin:
            _drop_database(admin, url)


def test_up_serves_the_api_and_stops_cleanly(settings: Settings, token: str, tmp_path: Path):
    port = free_port()
    env = {**os.environ, **settings_env(settings), "EVIDENCE_API_PORT": str(port),
           "EVIDENCE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([*EVIDENCE, "up"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "evidence up died"
            try:
                resp = requests.get(f"http://127.0.0.1:{port}/api/v1/integrations",
                                    headers={"Authorization": f"Bearer {token}"}, timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.3)
        assert resp.status_code == 200
        assert "aws" in [i["id"] for i in resp.json()["integrations"]]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_demo_runs_on_embedded_services_on_a_fresh_data_folder(tmp_path: Path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("EVIDENCE_")}
    env.update(EVIDENCE_DATA_DIR=str(tmp_path / "data"), EVIDENCE_API_PORT=str(free_port()),
               COLUMNS="200")
    out = run(["demo"], env, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Control results (AWS)" in out.stdout
    assert "soc2-cc6.1" in out.stdout and "failing" in out.stdout
    assert "controls passing" in out.stdout
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
