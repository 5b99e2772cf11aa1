"""Google Cloud fixtures: gcp-storage-emulator in-process, a scripted local GCS server, keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.gcp import GcpConnector, RetryPolicy
from connectors.gcp.kit import StorageEmulator, storage_emulator
from tests.connectors.gcp.local_gcs import LocalGcs, local_gcs_server

SERVICE_ACCOUNT = "evidence-auditor@acme-prod.iam.gserviceaccount.com"


class QuickRetryGcp(GcpConnector):
    """The real connector with short backoff, so retry-exhaustion tests stay quick."""

    retry_policy = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=2.0)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[StorageEmulator]:
    """gcp-storage-emulator (the kit's server) on a free loopback port for the whole session."""
    with storage_emulator() as emulator:
        yield emulator


@pytest.fixture
def gcs_endpoint(gcs_emulator: StorageEmulator) -> str:
    """An empty emulated Cloud Storage for one test."""
    gcs_emulator.wipe()
    return gcs_emulator.endpoint


@pytest.fixture
def local_gcs() -> Iterator[LocalGcs]:
    """A scripted local server answering the Cloud Storage JSON API shape."""
    with local_gcs_server() as gcs:
        yield gcs


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_json(key: rsa.RSAPrivateKey, token_uri: str, **overrides: Any) -> str:
    """A service account key file in Google's format, for a key generated here."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "acme-prod",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567", "private_key": pem,
            "client_email": SERVICE_ACCOUNT, "client_id": "103456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            **overrides}
    return json.dumps({k: v for k, v in info.items() if v is not None})
