"""GitHub Enterprise Server's base_url at connect time (issue #15 item 1): PyGithub's own
connections go through the SDK's guard, so a public name resolving to loopback is refused when
it connects (and so is the grant revoke on disconnect), and every failure to reach the server
reads the same. Real PyGithub, local server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from connectors.base import EndpointPolicy, OAuthClientCredentials, ProviderUnavailable
from connectors.endpoints import unreachable
from connectors.github import GithubConnector, GithubCredentials
from connectors.github.grant import revoke_grant
from connectors.github.kit import Estate, GithubServer
from tests.connectors.github.conftest import FAST_RETRIES
from tests.emulators import free_port

NAME = "ghe.evidence-test.example.com"  # public-looking; resolved by the tests' own hook
UNREACHABLE = unreachable("GitHub", "base_url")
OPEN = EndpointPolicy(allow_custom=True)


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@dataclass(frozen=True)
class LoopbackAllowed(EndpointPolicy):
    """Locked, except that 127.0.0.1 counts as public (the positive control)."""

    def allows(self, address: str) -> bool:
        return address == "127.0.0.1"


def connector(github: Estate, base_url: str, endpoints: EndpointPolicy) -> GithubConnector:
    conn = GithubConnector(GithubConnector.parse_credentials(
        {**github.credentials(), "base_url": base_url}), endpoints=endpoints)
    conn.retry_policy = FAST_RETRIES
    return conn


def verify_error(github: Estate, base_url: str, endpoints: EndpointPolicy) -> str:
    with pytest.raises(ProviderUnavailable) as caught:
        connector(github, base_url, endpoints).verify()
    return caught.value.message


def test_a_ghe_name_resolving_to_loopback_is_refused_when_pygithub_connects(
        github_api: GithubServer, github: Estate):
    base_url = f"http://{NAME}:{github_api.port}/api/v3"

    assert verify_error(github, base_url, EndpointPolicy(resolve=to_loopback)) == UNREACHABLE
    assert github_api.requests == []

    found = connector(github, base_url, LoopbackAllowed(resolve=to_loopback)).verify()
    assert found["organization"] == github.organization.login
    assert github_api.hits("^GET /api/v3/orgs/")


def test_a_closed_port_an_open_plain_port_and_a_refused_address_read_the_same(
        github_api: GithubServer, github: Estate):
    plain = f"https://127.0.0.1:{github_api.port}/api/v3"  # the server speaks HTTP, not TLS
    messages = {
        "closed port": verify_error(github, f"https://127.0.0.1:{free_port()}/api/v3", OPEN),
        "open port without TLS": verify_error(github, plain, OPEN),
        "loopback, flag off": verify_error(github, github_api.base_url, EndpointPolicy()),
        "name resolving to loopback": verify_error(
            github, f"https://{NAME}:{github_api.port}/api/v3",
            EndpointPolicy(resolve=to_loopback)),
    }
    assert messages == dict.fromkeys(messages, UNREACHABLE)


def test_revoking_a_grant_on_a_name_resolving_to_loopback_sends_nothing(
        github_api: GithubServer, github: Estate):
    credentials = GithubCredentials.model_validate({
        "access_token": "gho_" + "a" * 36, "organization": github.organization.login,
        "base_url": f"http://{NAME}:{github_api.port}/api/v3"})
    client = OAuthClientCredentials("Iv1.client", SecretStr("client-secret"),
                                    endpoints=EndpointPolicy(resolve=to_loopback))
    with pytest.raises(ProviderUnavailable):
        revoke_grant(client, credentials)
    assert github_api.requests == []
