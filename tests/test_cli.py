"""The `evidence` command as a user runs it: token, db upgrade, up, demo (each of the last two
prints a console sign-in link that works)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import psycopg
import requests

from cli.stack import console_sign_in
from engine.accounts import ensure_account
from engine.db import unit_of_work
from engine.settings import Settings
from tests.conftest import ROOT, _create_database, _drop_database, settings_env
from tests.console.conftest import CSRF
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


LINK = re.compile(r"(http://\S+)/console/login#token=(\S+)")


def printed_link(path: Path, proc: subprocess.Popen, timeout: float = 180) -> tuple[str, str]:
    """The console sign-in link a command prints (base URL, token), once it has printed it."""
    deadline = time.monotonic() + timeout
    while not (found := LINK.search(path.read_text(errors="replace"))):
        assert proc.poll() is None, path.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, path.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    return found.group(1), found.group(2)


def open_console(base: str, token: str) -> requests.Response:
    """What a browser does with the link: the sign-in page posts the fragment's token."""
    http = requests.Session()
    page = http.get(f"{base}/console/login", timeout=30).text
    csrf = CSRF.search(page)
    assert csrf, page[:300]
    return http.post(f"{base}/console/login", timeout=30,
                     data={"token": token, "csrf_token": csrf.group(1)})


def test_up_serves_the_api_prints_a_console_link_and_stops_cleanly(
        settings: Settings, token: str, tmp_path: Path, db):
    with unit_of_work(settings) as session:
        ensure_account(session, "acme")
    port = free_port()
    env = {**os.environ, **settings_env(settings), "EVIDENCE_API_PORT": str(port),
           "EVIDENCE_DATA_DIR": str(tmp_path)}
    env.pop("EVIDENCE_PUBLIC_BASE_URL", None)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*EVIDENCE, "up"], cwd=ROOT, env=env, stdout=out, stderr=out,
                                start_new_session=True)
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
        base, link_token = printed_link(log, proc)
        assert base == f"http://127.0.0.1:{port}"  # where it serves, not a default
        console = open_console(base, link_token)
        assert console.status_code == 200 and console.url == f"{base}/console"
        assert "Account <strong>acme</strong>" in console.text
        assert open_console(base, link_token).status_code == 401  # once
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_without_an_account_up_says_how_to_get_a_link(settings: Settings, db):
    said = console_sign_in(settings)
    assert "no account yet" in said and "evidence login-link --account ID" in said
    assert "#token=" not in said


def test_demo_runs_on_embedded_services_and_ends_with_a_console_link(tmp_path: Path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("EVIDENCE_")}
    busy = socket.socket()  # the preferred port is taken: the demo serves on another one
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    env.update(EVIDENCE_DATA_DIR=str(tmp_path / "data"), EVIDENCE_API_PORT=str(taken),
               COLUMNS="200")
    log = tmp_path / "demo.log"
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen([*EVIDENCE, "demo", "--keep-running"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            base, link_token = printed_link(log, proc, timeout=240)
            printed = log.read_text()
            assert "Control results (AWS)" in printed
            assert "soc2-cc6.1" in printed and "failing" in printed
            assert "controls passing" in printed
            assert base.startswith("http://127.0.0.1:") and base != f"http://127.0.0.1:{taken}"
            console = open_console(base, link_token)
            assert console.status_code == 200 and console.url == f"{base}/console"
            assert "Account <strong>demo</strong>" in console.text
            assert "Amazon Web Services" in console.text  # the connection the demo made
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
    finally:
        busy.close()
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
