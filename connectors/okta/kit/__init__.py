"""The Okta test kit: the acme org served by a local Okta API server (see `connectors.testkit`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from connectors.okta.kit.estate import Estate, build_estate
from connectors.okta.kit.server import OktaServer, okta_server
from connectors.testkit import ConnectorKit, Seeded

__all__ = ["Estate", "Kit", "OktaServer", "build_estate", "okta_server"]


class Kit(ConnectorKit):
    """A local Okta org on loopback, read with an API token, listing two items a page."""

    connector_id = "okta"
    environment = {"OKTA_TESTING_TESTINGDISABLEHTTPSCHECK": "true"}
    """The okta SDK refuses a plain-HTTP orgUrl unless its own testing switch is on."""

    def __init__(self) -> None:
        self.server: OktaServer | None = None

    @contextmanager
    def start(self) -> Iterator[Self]:
        with okta_server(page_size=2) as server:
            self.server = server
            yield self

    def seed(self) -> Seeded:
        if self.server is None:
            raise RuntimeError("start the kit before seeding it")
        self.server.faults.clear()
        estate = self.server.estate
        return Seeded(credentials=estate.credentials(), expected=estate.expected,
                      metadata={"orgUrl": self.server.url, "authMode": "api_token"},
                      secrets=(estate.api_token,))
