"""The AWS test kit: the acme estate seeded into moto's server (see `connectors.testkit`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from connectors.aws.kit.estate import seed_estate
from connectors.aws.kit.server import moto_server, reset_moto
from connectors.aws.kit.spec import ACCESS_KEY_ID, ACCOUNT_ALIAS, SECRET_ACCESS_KEY, Estate
from connectors.testkit import ConnectorKit, Seeded

__all__ = ["ACCESS_KEY_ID", "ACCOUNT_ALIAS", "SECRET_ACCESS_KEY", "Estate", "Kit", "moto_server",
           "reset_moto", "seed_estate"]


class Kit(ConnectorKit):
    """moto's server holding the acme AWS account in two regions."""

    connector_id = "aws"

    def __init__(self) -> None:
        self.endpoint = ""

    @contextmanager
    def start(self) -> Iterator[Self]:
        with moto_server() as endpoint:
            self.endpoint = endpoint
            yield self

    def seed(self) -> Seeded:
        if not self.endpoint:
            raise RuntimeError("start the kit before seeding it")
        reset_moto(self.endpoint)
        estate = seed_estate(self.endpoint)
        return Seeded(credentials=estate.credentials(), expected=estate.expected,
                      metadata={"accountId": estate.account_id,
                                "accountAlias": estate.account_alias,
                                "regions": list(estate.regions)},
                      secrets=(SECRET_ACCESS_KEY,))
