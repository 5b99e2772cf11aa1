"""gcp-storage-emulator on loopback: the Cloud Storage JSON API the real client talks to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gcp_storage_emulator.server import create_server

from connectors.testkit import free_port


class StorageEmulator:
    """gcp-storage-emulator serving in memory, in this process, on a free loopback port."""

    def __init__(self) -> None:
        port = free_port()
        self._server: Any = create_server("127.0.0.1", port, in_memory=True)
        self.endpoint = f"http://127.0.0.1:{port}"

    def wipe(self) -> None:
        """Drop every bucket and object (an empty project)."""
        self._server.wipe()


@contextmanager
def storage_emulator() -> Iterator[StorageEmulator]:
    """A started emulator, stopped when the block ends."""
    emulator = StorageEmulator()
    emulator._server.start()
    try:
        yield emulator
    finally:
        emulator._server.stop()
