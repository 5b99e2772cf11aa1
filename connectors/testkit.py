"""The test kit every connector package ships: its emulated estate and the local server it lives on.

A connector package `<pkg>` has a module `<pkg>.kit` with a class `Kit` (a `ConnectorKit`):
`start()` runs the provider's local server on loopback, `seed()` fills it with a small company's
estate and says which verdict every check must reach on every resource. One end-to-end test
drives every registered connector through its kit; the demo and third parties use the same kits.
The servers listen on loopback, so the engine must run with EVIDENCE_ALLOW_CUSTOM_ENDPOINTS.
"""

from __future__ import annotations

import socket
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar, Self

from connectors.base import Connector

Verdicts = dict[str, dict[str, str]]
"""check id → resource id → status (`passing`, `failing`, `error`, `not_applicable`)."""


@dataclass(frozen=True)
class Seeded:
    """An estate seeded into a running kit: how to connect to it and what a sync must find."""

    credentials: dict[str, Any]
    """Raw credentials, as a client sends them to `POST .../connect`."""
    expected: Verdicts
    config: dict[str, Any] = field(default_factory=dict)
    """Configuration parameters the expected verdicts assume (empty: the connector's defaults)."""
    metadata: dict[str, Any] | None = None
    """What the connection reports once verified, when the kit knows it exactly."""
    secrets: tuple[str, ...] = ()
    """Secret values of the credentials: no answer of the API may contain one."""

    @property
    def evidence_count(self) -> int:
        return sum(len(resources) for resources in self.expected.values())


class ConnectorKit(ABC):
    """A provider's local test estate. Use as `with Kit().start() as kit: seeded = kit.seed()`."""

    connector_id: ClassVar[str]
    environment: ClassVar[Mapping[str, str]] = {}
    """Environment the provider's SDK needs (in every process that runs the connector) to talk
    to the local server, e.g. the okta SDK's switch that lets it use plain HTTP."""

    @abstractmethod
    def start(self) -> AbstractContextManager[Self]:
        """Run the local server until the block ends; yields the kit, ready to seed."""

    @abstractmethod
    def seed(self) -> Seeded:
        """Fill the running server with the estate (replacing what it held) and return it."""


def kit_for(connector: type[Connector]) -> ConnectorKit:
    """The kit shipped in a connector's package (`<package>.kit.Kit`)."""
    module = sys.modules[connector.__module__]
    package = module.__package__ or connector.__module__
    kit = getattr(import_module(f"{package}.kit"), "Kit", None)
    if not (isinstance(kit, type) and issubclass(kit, ConnectorKit)):
        raise TypeError(f"{package}.kit.Kit is not a ConnectorKit")
    if kit.connector_id != connector.id:
        raise TypeError(f"{package}.kit.Kit is the kit of {kit.connector_id}, not {connector.id}")
    return kit()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
