"""Fixtures for the GitHub connector: a local GitHub REST server serving the emulated estate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import EndpointPolicy
from connectors.github import GithubConnector, RetryPolicy
from connectors.github.kit import Estate, GithubServer, github_server, seed_estate

# Retries as in production, but with sub-second backoff so fault tests stay quick.
FAST_RETRIES = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=2.0)


@pytest.fixture(scope="session")
def github_api() -> Iterator[GithubServer]:
    """One local GitHub server for the session (pages of five items)."""
    with github_server(page_size=5) as server:
        yield server


@pytest.fixture
def github(github_api: GithubServer) -> Estate:
    """The acme-corp estate, freshly served with no faults."""
    estate = seed_estate(github_api.base_url)
    github_api.serve(estate)
    return estate


def connector(raw: dict[str, Any], config: dict[str, Any] | None = None,
              policy: RetryPolicy = FAST_RETRIES) -> GithubConnector:
    """A connector on the given raw credentials, with a fast retry policy for tests."""
    conn = GithubConnector(GithubConnector.parse_credentials(raw), config or {},
                           endpoints=EndpointPolicy(allow_custom=True))  # a loopback server
    conn.retry_policy = policy
    return conn
