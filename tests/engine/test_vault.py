"""Credentials are sealed with MultiFernet; a key is generated when none is configured."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from engine.settings import Settings
from engine.vault import Vault, load_keys


def test_a_key_is_generated_into_the_data_folder_with_a_warning(tmp_path: Path, caplog):
    settings = Settings(EVIDENCE_DATA_DIR=tmp_path, EVIDENCE_ENCRYPTION_KEYS=None)
    with caplog.at_level(logging.WARNING):
        keys = load_keys(settings)
    assert (tmp_path / "encryption.key").read_bytes().strip() == keys[0]
    assert (tmp_path / "encryption.key").stat().st_mode & 0o077 == 0
    assert "EVIDENCE_ENCRYPTION_KEYS is not set" in caplog.text
    assert load_keys(settings) == keys  # the same key on the next start


def test_configured_keys_rotate_old_tokens_stay_readable():
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = Vault([old]).seal({"secret": "hunter2"})
    assert b"hunter2" not in sealed
    rotated = Vault(load_keys(Settings(EVIDENCE_ENCRYPTION_KEYS=f"{new.decode()},{old.decode()}")))
    assert rotated.open(sealed) == {"secret": "hunter2"}
    assert Vault([new]).open(rotated.rotate(sealed)) == {"secret": "hunter2"}
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        Vault([Fernet.generate_key()]).open(sealed)
