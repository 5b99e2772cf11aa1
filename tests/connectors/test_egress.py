"""The SDK's HTTP clients under the endpoint policy: with EVIDENCE_ALLOW_CUSTOM_ENDPOINTS off a
connection goes only to public addresses, judged on what the host resolves to when the
connection is opened (a public-looking name resolving to loopback is refused, however it passed
validation); with the flag on they are the libraries' own clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest
import requests
from requests.adapters import HTTPAdapter

from connectors.egress import GuardedAdapter, aiohttp_connector, guard_requests, requests_session
from connectors.endpoints import LOCKED, EndpointPolicy, EndpointRefused
from connectors.github import GithubCredentials

NAME = "ghe.evidence-test.example.com"  # public-looking; the tests resolve it themselves
OPEN = EndpointPolicy(allow_custom=True)


def to_loopback(host: str, port: int) -> list[str]:
    """A resolver hook: every name resolves to loopback (what a hostile DNS answer does)."""
    return ["127.0.0.1"]


@dataclass(frozen=True)
class LoopbackAllowed(EndpointPolicy):
    """The locked policy, except that 127.0.0.1 counts as public: proves the guarded clients
    really connect, through the resolver hook, to an address the policy allows."""

    def allows(self, address: str) -> bool:
        return address == "127.0.0.1"


class Server:
    """A plain HTTP server on loopback that counts the requests it answers."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


def test_a_public_name_resolving_to_loopback_passes_validation_and_is_refused_on_connect(
        server: Server):
    url = f"https://{NAME}:{server.port}/api/v3"
    assert LOCKED.refusals(GithubCredentials, {"base_url": url}) == []  # a public name

    with pytest.raises(requests.ConnectionError), \
            requests_session(EndpointPolicy(resolve=to_loopback)) as http:
        http.get(f"http://{NAME}:{server.port}/", timeout=5)
    assert server.hits == []

    with requests_session(LoopbackAllowed(resolve=to_loopback)) as http:
        assert http.get(f"http://{NAME}:{server.port}/", timeout=5).text == "ok"
    assert server.hits == [f"{NAME}:{server.port}"]  # the name was asked for, not the address


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_loopback_by_address_or_by_the_system_resolver_is_refused(server: Server, host: str):
    with pytest.raises(requests.ConnectionError), requests_session(LOCKED) as http:
        http.get(f"http://{host}:{server.port}/", timeout=5)
    assert server.hits == []


def test_only_public_addresses_of_a_name_are_used_and_none_left_is_a_refusal():
    mixed = EndpointPolicy(resolve=lambda host, port: ["10.0.0.7", "93.184.215.14",
                                                       "169.254.169.254", "::1"])
    assert mixed.public_addresses(NAME, 443) == ["93.184.215.14"]
    private = EndpointPolicy(resolve=lambda host, port: ["10.0.0.7", "fd00::1", "100.64.0.1",
                                                         "169.254.169.254", "0.0.0.0"])
    with pytest.raises(EndpointRefused):
        private.public_addresses(NAME, 443)
    with pytest.raises(EndpointRefused):
        LOCKED.public_addresses("169.254.169.254", 80)
    assert OPEN.public_addresses("127.0.0.1", 80) == ["127.0.0.1"]


def test_every_connection_resolves_again_so_a_rebound_name_is_refused(server: Server):
    answers = iter([["127.0.0.1"], ["10.1.2.3"]])
    seen: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        seen.append(host)
        return next(answers)

    policy = LoopbackAllowed(resolve=rebinding)
    with requests_session(policy) as http:
        assert http.get(f"http://{NAME}:{server.port}/", timeout=5,
                        headers={"Connection": "close"}).text == "ok"
        with pytest.raises(requests.ConnectionError):
            http.get(f"http://{NAME}:{server.port}/", timeout=5)
    assert seen == [NAME, NAME] and len(server.hits) == 1


def aiohttp_get(policy: EndpointPolicy, url: str) -> str:
    async def get() -> str:
        async with aiohttp.ClientSession(connector=aiohttp_connector(policy)) as http, \
                http.get(url) as response:
            return await response.text()

    return asyncio.run(get())


def test_the_aiohttp_connector_refuses_a_name_resolving_to_loopback(server: Server):
    with pytest.raises(aiohttp.ClientConnectorError):
        aiohttp_get(EndpointPolicy(resolve=to_loopback), f"http://{NAME}:{server.port}/")
    with pytest.raises(aiohttp.ClientConnectorError):
        aiohttp_get(LOCKED, f"http://127.0.0.1:{server.port}/")  # aiohttp resolves no literal
    assert server.hits == []
    assert aiohttp_get(LoopbackAllowed(resolve=to_loopback),
                       f"http://{NAME}:{server.port}/") == "ok"
    assert server.hits == [f"{NAME}:{server.port}"]


def test_with_the_flag_on_the_clients_are_the_libraries_own(server: Server):
    plain = guard_requests(requests.Session(), OPEN)
    assert all(type(a) is HTTPAdapter for a in plain.adapters.values())
    assert isinstance(guard_requests(requests.Session(), LOCKED).get_adapter("https://x.io"),
                      GuardedAdapter)
    with requests_session(OPEN) as http:
        assert http.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "ok"

    async def connector_type() -> type:
        connector = aiohttp_connector(OPEN)
        await connector.close()
        return type(connector)

    assert asyncio.run(connector_type()) is aiohttp.TCPConnector
    assert aiohttp_get(OPEN, f"http://127.0.0.1:{server.port}/") == "ok"
