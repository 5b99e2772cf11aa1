"""moto's server on loopback: every AWS service boto3 reaches, on one port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from moto.server import ThreadedMotoServer

from connectors.testkit import free_port


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    """Empty every service of the server (an account with nothing in it)."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
