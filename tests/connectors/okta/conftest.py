"""Fixtures for the Okta connector: a local Okta server the real okta SDK talks to over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import EndpointPolicy
from connectors.okta import OktaConnector
from connectors.okta.kit import OktaServer, okta_server
from tests.conftest import TEST_ONLY_ENV

OPEN = EndpointPolicy(allow_custom=True)
"""EVIDENCE_ALLOW_CUSTOM_ENDPOINTS on: the test servers are on loopback."""


@pytest.fixture(scope="session", autouse=True)
def _okta_sdk_accepts_loopback_http() -> Iterator[None]:
    """The okta SDK refuses a non-https orgUrl unless its own testing switch is on."""
    saved = {key: os.environ.get(key) for key in TEST_ONLY_ENV}
    os.environ.update(TEST_ONLY_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def okta() -> Iterator[OktaServer]:
    """A local Okta org (the emulated acme estate) on a free loopback port, pages of 2."""
    with okta_server(page_size=2) as server:
        yield server


def connector(raw: dict[str, Any], config: dict[str, Any] | None = None) -> OktaConnector:
    """An Okta connector from raw credentials, validated as the engine validates them; the
    local server is on loopback, so custom endpoints are allowed (as the suite's workers do)."""
    return OktaConnector(OktaConnector.parse_credentials(raw), config or {}, endpoints=OPEN)


def verdicts(outcomes: Any) -> dict[str, dict[str, str]]:
    return {o.check.id: {r.resource_id: r.status.value for r in o.results} for o in outcomes}
