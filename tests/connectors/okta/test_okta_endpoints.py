"""Okta's org_url at connect time (issue #15 item 1): a public org name that resolves to
loopback is refused when the SDK connects, and every failure to reach the org reads the same,
so trying hosts and ports maps nothing. Real okta SDK, local server. (The 422 at connect is in
tests/api/test_endpoint_gate.py.)"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from connectors.base import EndpointPolicy, ProviderUnavailable
from connectors.endpoints import unreachable
from connectors.okta import OktaCredentials, OktaSession
from connectors.okta.kit import OktaServer
from connectors.okta.session import OktaApi, RetryPolicy, Scope
from tests.connectors.okta.conftest import OPEN
from tests.emulators import free_port

NAME = "acme.okta-test.example.com"  # public-looking; resolved by the tests' own hook
FAST = RetryPolicy(attempts=2, initial_wait=0.01)
UNREACHABLE = unreachable("Okta", "org_url")


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@dataclass(frozen=True)
class LoopbackAllowed(EndpointPolicy):
    """Locked, except that 127.0.0.1 counts as public (the positive control)."""

    def allows(self, address: str) -> bool:
        return address == "127.0.0.1"


def verify_error(credentials: OktaCredentials, endpoints: EndpointPolicy) -> str:
    """What listing one user (the connector's verify call) fails with."""
    session = OktaSession(credentials, retry=FAST, endpoints=endpoints)

    async def one_user(api: OktaApi) -> object:
        return await api.call("list users", Scope.USERS_READ,
                              lambda: api.client.list_users(limit=1))

    with pytest.raises(ProviderUnavailable) as caught:
        session.read(one_user)
    return caught.value.message


def at(okta: OktaServer, org_url: str) -> OktaCredentials:
    """The estate's credentials pointed at another org URL (the validator would refuse a
    plain-http name; the gate is what is under test here)."""
    valid = OktaCredentials.model_validate(okta.estate.credentials())
    return valid.model_copy(update={"org_url": org_url})


def test_a_public_org_name_resolving_to_loopback_is_refused_when_the_sdk_connects(
        okta: OktaServer):
    port = okta.url.rsplit(":", 1)[1]
    credentials = at(okta, f"http://{NAME}:{port}")
    assert EndpointPolicy().refusals(OktaCredentials, {"org_url": f"https://{NAME}"}) == []

    assert verify_error(credentials, EndpointPolicy(resolve=to_loopback)) == UNREACHABLE
    assert okta.seen == []

    session = OktaSession(credentials, retry=FAST,
                          endpoints=LoopbackAllowed(resolve=to_loopback))

    async def one_user(api: OktaApi) -> object:
        return await api.call("list users", Scope.USERS_READ,
                              lambda: api.client.list_users(limit=1))

    assert session.read(one_user)  # the guarded connector does connect where it may
    assert [s.path for s in okta.seen] == ["/api/v1/users"]


def test_a_closed_port_an_open_plain_port_and_a_refused_address_read_the_same(
        okta: OktaServer):
    port = okta.url.rsplit(":", 1)[1]
    messages = {
        "closed port": verify_error(at(okta, f"https://127.0.0.1:{free_port()}"), OPEN),
        "open port without TLS": verify_error(at(okta, f"https://127.0.0.1:{port}"), OPEN),
        "loopback, flag off": verify_error(at(okta, f"https://127.0.0.1:{port}"),
                                           EndpointPolicy()),
        "name resolving to loopback": verify_error(at(okta, f"https://{NAME}:{port}"),
                                                   EndpointPolicy(resolve=to_loopback)),
    }
    assert messages == dict.fromkeys(messages, UNREACHABLE)
    assert "org_url" in UNREACHABLE and str(port) not in UNREACHABLE
