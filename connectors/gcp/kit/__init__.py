"""The Google Cloud test kit: the acme project's buckets in gcp-storage-emulator
(see `connectors.testkit`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from connectors.gcp.kit.estate import BUCKETS, Estate, resource_id, seed_estate
from connectors.gcp.kit.server import StorageEmulator, storage_emulator
from connectors.testkit import ConnectorKit, Seeded

__all__ = ["BUCKETS", "Estate", "Kit", "StorageEmulator", "resource_id", "seed_estate",
           "storage_emulator"]


class Kit(ConnectorKit):
    """gcp-storage-emulator holding the acme-prod project, read anonymously."""

    connector_id = "gcp"

    def __init__(self) -> None:
        self.emulator: StorageEmulator | None = None

    @contextmanager
    def start(self) -> Iterator[Self]:
        with storage_emulator() as emulator:
            self.emulator = emulator
            yield self

    def seed(self) -> Seeded:
        if self.emulator is None:
            raise RuntimeError("start the kit before seeding it")
        self.emulator.wipe()
        estate = seed_estate(self.emulator.endpoint)
        return Seeded(credentials=estate.credentials(), expected=estate.expected,
                      config=estate.config(),
                      metadata={"projectId": estate.project_id, "serviceAccount": "anonymous"})
