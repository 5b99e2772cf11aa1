"""The GitHub test kit: the acme-corp organization served by a local GitHub REST server
(see `connectors.testkit`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from connectors.github.kit.estate import ORGANIZATION, TOKEN, Estate, Repo, seed_estate
from connectors.github.kit.oauth import (
    OAUTH_CALLBACK,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    GithubOAuth,
)
from connectors.github.kit.server import GithubServer, github_server
from connectors.testkit import ConnectorKit, Seeded

__all__ = ["OAUTH_CALLBACK", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "ORGANIZATION", "TOKEN",
           "Estate", "GithubOAuth", "GithubServer", "Kit", "Repo", "github_server", "seed_estate"]


class Kit(ConnectorKit):
    """A local GitHub Enterprise-shaped API on loopback, listing five items a page."""

    connector_id = "github"

    def __init__(self) -> None:
        self.server: GithubServer | None = None

    @contextmanager
    def start(self) -> Iterator[Self]:
        with github_server(page_size=5) as server:
            self.server = server
            yield self

    def seed(self) -> Seeded:
        if self.server is None:
            raise RuntimeError("start the kit before seeding it")
        # A connection without configuration allows no public repository; the verdicts say so.
        estate = seed_estate(self.server.base_url, allowed_public_repos=())
        self.server.serve(estate)
        return Seeded(credentials=estate.credentials(), expected=estate.expected,
                      metadata={"organization": estate.organization.login,
                                "plan": estate.organization.plan,
                                "repositories": len(estate.repos)},
                      secrets=(TOKEN,))
