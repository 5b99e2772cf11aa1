"""Credentials encrypted at rest with MultiFernet; the first key encrypts, all keys decrypt."""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from engine.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _key_file(settings: Settings) -> Path:
    return settings.data_dir / "encryption.key"


def load_keys(settings: Settings) -> list[bytes]:
    """EVIDENCE_ENCRYPTION_KEYS (comma-separated, newest first), else a key in the data folder.

    With neither, a key is generated into the data folder with a warning: fine for one machine,
    but a production deployment should configure its keys.
    """
    if settings.encryption_keys is not None:
        keys = [k.strip().encode() for k in settings.encryption_keys.get_secret_value().split(",")
                if k.strip()]
        if keys:
            return keys
    path = _key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        log.warning("EVIDENCE_ENCRYPTION_KEYS is not set: generated a credentials key at %s. "
                    "Back it up, or set EVIDENCE_ENCRYPTION_KEYS in production.", path)
    return [path.read_bytes().strip()]


class Vault:
    """Encrypts and decrypts connection credentials."""

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def seal(self, secret: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(secret, separators=(",", ":")).encode())

    def open(self, token: bytes) -> dict[str, Any]:
        try:
            value: dict[str, Any] = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise RuntimeError("stored credentials cannot be decrypted with the configured "
                               "EVIDENCE_ENCRYPTION_KEYS (was a key removed?)") from None
        return value

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the newest key."""
        return self._fernet.rotate(token)


@lru_cache(maxsize=4)
def _vault_for(keys: tuple[bytes, ...]) -> Vault:
    return Vault(list(keys))


def vault(settings: Settings | None = None) -> Vault:
    return _vault_for(tuple(load_keys(settings or get_settings())))
