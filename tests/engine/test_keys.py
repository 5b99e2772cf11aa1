"""`evidence keys rotate`: every stored secret re-sealed with the newest key, in batches that
survive an interruption, and the old key can then be removed with every connection syncing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from cli.main import main
from cli.wiring import api_app
from connectors.aws.kit import seed_estate
from engine import keys
from engine.db import session_factory
from engine.models import Account, ConfigParameter, Connection, ConnectionStatus, OAuthState
from engine.models.audit import MailStatus, OutboundMail
from engine.models.core import Frequency
from engine.models.ledger import LedgerSigningKey
from engine.settings import Settings
from engine.tokens import mint
from engine.vault import Vault
from tests.conftest import running_worker, settings_env


class Interrupted(Exception):
    pass


def old_key(settings: Settings) -> bytes:
    assert settings.encryption_keys is not None
    return settings.encryption_keys.get_secret_value().split(",")[0].encode()


def seed_secrets(settings: Settings, count: int) -> dict[str, list[bytes]]:
    """`count` values under the old key in every sealed column; what each seals, by column."""
    sealer = Vault([old_key(settings)])
    plain: dict[str, list[bytes]] = {c.label: [] for c in keys.SEALED_COLUMNS}
    with session_factory(settings)() as s, s.begin():
        s.add(Account(id="acme"))
        s.flush()
        for n in range(count):
            conn = Connection(account_id="acme", integration_id=f"fake-{n}",
                              status=ConnectionStatus.ACTIVE,
                              credentials_encrypted=sealer.seal({"token": f"t-{n}"}))
            s.add(conn)
            s.flush()
            s.add(ConfigParameter(account_id="acme", connection_id=conn.id, name="secret",
                                  is_secret=True, value_encrypted=sealer.seal({"value": f"p-{n}"})))
            s.add(OAuthState(nonce_hash=uuid.uuid4().hex, account_id="acme",
                             integration_id="github", redirect_uri="http://127.0.0.1/cb",
                             code_verifier_encrypted=sealer.seal({"code_verifier": f"v-{n}"}),
                             sync_frequency=Frequency.DAILY,
                             expires_at=datetime.now(UTC) + timedelta(minutes=10)))
            s.add(OutboundMail(account_id="acme", to_address="a@example.com", subject="hi",
                               body_sealed=sealer.seal({"body": f"b-{n}"}),
                               status=MailStatus.QUEUED, attempts=0))
            s.add(LedgerSigningKey(id=f"key-{n}", key_id=f"k{n}", created_at=datetime.now(UTC),
                                   sealed=sealer.seal({"ed25519": f"s-{n}"})))
    for column in keys.SEALED_COLUMNS:
        with session_factory(settings)() as s:
            plain[column.label] = [bytes(v) for v in s.scalars(
                select(column.value).order_by(column.key))]
    return plain


def opened(settings: Settings, sealer: Vault) -> dict[str, list[dict[str, str]]]:
    with session_factory(settings)() as s:
        return {c.label: [sealer.open(bytes(v)) for v in s.scalars(
            select(c.value).where(c.value.is_not(None)).order_by(c.key))]
            for c in keys.SEALED_COLUMNS}


def test_rotation_interrupted_midway_resumes_and_leaves_nothing_under_the_old_key(settings, db):
    old, new = old_key(settings), Fernet.generate_key()
    seed_secrets(settings, count=5)
    before = opened(settings, Vault([old]))
    factory, ring = session_factory(settings), keys.KeyRing([new, old])

    batches: list[tuple[str, int]] = []

    def stop_after_two(label: str, resealed: int) -> None:
        batches.append((label, resealed))
        if len(batches) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        keys.rotate(factory, ring, batch_size=2, after_batch=stop_after_two)
    midway = {r.label: r for r in keys.status(factory, ring)}
    credentials = midway["connection credentials"]
    assert (credentials.by_key.get(0), credentials.by_key.get(1)) == (4, 1)
    assert midway["queued mail"].by_key == {1: 5}

    done = keys.rotate(factory, ring, batch_size=2)
    assert {r.label: r.rotated for r in done} == {
        "connection credentials": 1, "secret parameters": 5, "OAuth states": 5,
        "queued mail": 5, "ledger signing key": 5}
    after = keys.status(factory, ring)
    assert all(r.under_older_keys == 0 and r.unreadable == 0 for r in after)
    assert all(r.by_key == {0: 5} for r in after)
    # The old key is gone: the newest alone opens every value, and each is what it was.
    assert opened(settings, Vault([new])) == before
    # A second run has nothing left to do.
    assert sum(r.rotated for r in keys.rotate(factory, ring)) == 0


def test_status_names_values_no_configured_key_opens(settings, db):
    seed_secrets(settings, count=1)
    stranger = keys.KeyRing([Fernet.generate_key()])
    report = {r.label: r for r in keys.status(session_factory(settings), stranger)}
    assert report["connection credentials"].unreadable == 1
    assert report["connection credentials"].by_key == {}
    assert keys.rotate(session_factory(settings), stranger)[0].rotated == 0  # left as it was


def test_keys_command_reports_and_exits_non_zero_until_rotated(settings, db, monkeypatch,
                                                               capsys):
    old, new = old_key(settings), Fernet.generate_key()
    seed_secrets(settings, count=2)
    monkeypatch.setenv("EVIDENCE_ENCRYPTION_KEYS", f"{new.decode()},{old.decode()}")
    from engine.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["keys", "status"]) == 1
        assert "connection credentials: 0 under the newest key, 2 under older keys" in \
            capsys.readouterr().out
        assert main(["keys", "rotate", "--batch-size", "1"]) == 0
        out = capsys.readouterr().out
        assert "connection credentials: 2 re-sealed, 2 under the newest key, 0 under older" in out
        assert "older keys can be removed" in out
    finally:
        get_settings.cache_clear()


def test_after_rotation_the_old_key_is_removed_and_every_connection_still_syncs(
        settings, db, worker, aws_endpoint, tmp_path: Path):
    old, new = old_key(settings), Fernet.generate_key()
    estate = seed_estate(aws_endpoint)
    client = api_app(settings).test_client()
    auth = {"Authorization": f"Bearer {mint(settings, 'acme')}"}
    connected = client.post("/api/v1/integrations/aws/connect?wait=60", headers=auth,
                            json={"credentials": estate.credentials()})
    assert connected.status_code == 200, connected.get_json()
    first = client.post("/api/v1/integrations/aws/sync?wait=120", headers=auth).get_json()
    assert first["success"] is True, first

    done = keys.rotate(session_factory(settings), keys.KeyRing([new, old]))
    assert done[0].rotated == 1

    # A deployment that only knows the new key: its own broker key space, so only the worker
    # started here (without the old key) can take the sync.
    only_new = settings.model_copy(update={
        "encryption_keys": SecretStr(new.decode()),
        "redis_key_prefix": f"evtest-{uuid.uuid4().hex[:8]}:"})
    with running_worker(settings_env(only_new), tmp_path / "worker.log"):
        client = api_app(only_new).test_client()
        again = client.post("/api/v1/integrations/aws/sync?wait=120", headers=auth)
        body = again.get_json()
        assert again.status_code == 200 and body["success"] is True, body
        assert body["errors"] == []
    with session_factory(settings)() as s:
        status = s.scalar(select(Connection.status).where(Connection.integration_id == "aws"))
    assert status is ConnectionStatus.ACTIVE
