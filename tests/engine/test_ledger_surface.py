"""The ledger as people reach it: `evidence ledger verify` (as a user runs it), the public key
and checkpoints on the API, the daily checkpoint task and its beat entry."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from beat_schedule import schedule
from engine import ledger
from engine.db import session_factory
from engine.models import Base
from engine.models.ledger import LedgerCheckpoint, LedgerKind
from engine.settings import Settings
from tests.conftest import settings_env
from tests.test_cli import run
from workers.tasks import ledger_checkpoint

ACME = "acme"


@pytest.fixture
def factory(settings: Settings, db: None) -> Iterator[sessionmaker[Session]]:
    yield session_factory(settings)


def grow(factory: sessionmaker[Session], account_id: str, n: int) -> None:
    with factory() as s, s.begin():
        for i in range(n):
            ledger.append(s, account_id, LedgerKind.AUDIT_ACTIVITY, {"i": i})


def test_ledger_verify_prints_ok_or_names_the_first_broken_entry(factory, settings, tmp_path):
    env = {**os.environ, **settings_env(settings)}
    grow(factory, ACME, 3)
    grow(factory, "globex", 2)
    with factory() as s, s.begin():
        kept = ledger.checkpoint_document(ledger.checkpoint(s, ACME, reason="test"))
    (tmp_path / "cp.json").write_text(json.dumps(kept))
    out = run(["ledger", "verify"], env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"OK acme: 3 entries, head {kept['head_sha256']}"
    assert lines[1].startswith("OK globex: 2 entries, head ")

    grow(factory, ACME, 2)
    with factory() as s, s.begin():
        s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(text("UPDATE ledger_entry SET content = :c "
                       "WHERE account_id = 'acme' AND seq = 5"), {"c": '{"i":7}'})
    out = run(["ledger", "verify", "--checkpoint", str(tmp_path / "cp.json")], env)
    assert out.returncode == 1
    broken, checked = out.stdout.splitlines()
    assert broken.startswith("BROKEN acme: entry 5 (audit_activity): its content hashes to ")
    assert broken.endswith("the content was changed")
    assert checked == ("checkpoint of acme at 3 entries: OK, the first 3 entries hash to the "
                       f"signed head {kept['head_sha256'][:12]}…")

    out = run(["ledger", "verify", "--account", "globex"], env)
    assert out.returncode == 0 and out.stdout.startswith("OK globex: 2 entries")

    (tmp_path / "bad.json").write_text("{\"account_id\": \"acme\"}")
    out = run(["ledger", "verify", "--checkpoint", str(tmp_path / "bad.json")], env)
    assert out.returncode == 2 and "lacks length" in out.stderr


def test_the_public_key_is_served_without_a_token_and_verifies_checkpoints(client, factory,
                                                                           auth):
    grow(factory, ACME, 2)
    with factory() as s, s.begin():
        ledger.checkpoint(s, ACME, reason="test")
    answer = client.get("/api/v1/ledger/public-key")
    assert answer.status_code == 200
    key = answer.get_json()["data"]
    assert key["algorithm"] == "Ed25519"
    public = serialization.load_pem_public_key(key["public_key_pem"].encode())
    assert ledger.key_id_of(public) == key["key_id"]  # type: ignore[arg-type]
    assert base64.b64decode(key["public_key"]) == public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    listed = client.get("/api/v1/ledger/checkpoints", headers=auth)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["total"] == 1
    served = body["data"][0]
    assert (served["account_id"], served["length"], served["key_id"]) == (ACME, 2, key["key_id"])
    payload = ledger.signed_payload(ACME, 2, served["head_sha256"], served["signed_at"],
                                    served["key_id"])
    public.verify(base64.b64decode(served["signature"]), payload)  # type: ignore[union-attr]
    with factory() as s:
        assert ledger.verify(s, ACME, checkpoint=served).ok
        secret = s.scalar(text("SELECT sealed FROM ledger_signing_key"))
    assert secret is not None and base64.b64encode(secret).decode() not in answer.text


def test_checkpoints_are_the_callers_own_and_need_a_token(client, factory, auth):
    grow(factory, "globex", 1)
    with factory() as s, s.begin():
        ledger.checkpoint(s, "globex", reason="test")
    assert client.get("/api/v1/ledger/checkpoints").status_code == 401
    body = client.get("/api/v1/ledger/checkpoints", headers=auth).get_json()
    assert body == {"data": [], "total": 0}


@pytest.mark.parametrize("query", ["limit=0", "limit=5000", "offset=-1", "since=yesterday",
                                   "since=1700000000", "extra=1"])
def test_a_bad_checkpoint_query_is_a_json_422_that_writes_nothing(client, factory, auth, query):
    answer = client.get(f"/api/v1/ledger/checkpoints?{query}", headers=auth)
    assert answer.status_code == 422
    assert answer.get_json()["success"] is False
    with factory() as s:
        assert s.scalar(text("SELECT count(*) FROM ledger_checkpoint")) == 0
        assert s.scalar(text("SELECT count(*) FROM ledger_signing_key")) == 0


def test_checkpoints_page_and_filter_by_time(client, factory, auth):
    grow(factory, ACME, 1)
    times = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    with factory() as s, s.begin():
        for t in times:
            ledger.checkpoint(s, ACME, reason="daily", now=t)
    body = client.get("/api/v1/ledger/checkpoints?since=2026-01-02T00:00:00Z&limit=1",
                      headers=auth).get_json()
    assert body["total"] == 2
    assert [c["signed_at"] for c in body["data"]] == ["2026-01-02T00:00:00.000000+00:00"]


def test_the_daily_task_checkpoints_moved_chains_and_beat_runs_it(factory, settings):
    grow(factory, ACME, 1)
    assert ledger_checkpoint.apply().get() == 1
    assert ledger_checkpoint.apply().get() == 0
    with factory() as s:
        assert s.query(LedgerCheckpoint).one().reason == "daily"
    entry = schedule(settings)["checkpoint-ledgers"]
    assert entry["task"] == "ledger.checkpoint" and entry["options"]["queue"] == "default"


def test_the_schema_agrees_with_the_migration(settings):
    """Every ledger column of the models exists in the migrated database, same nullability."""
    with session_factory(settings)() as s:
        rows = s.execute(text(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name LIKE 'ledger_%'")).all()
    found = {(t, c): n == "YES" for t, c, n in rows}
    expected = {(t.name, c.name): bool(c.nullable) for t in Base.metadata.sorted_tables
                if t.name.startswith("ledger_") for c in t.columns}
    assert found == expected
