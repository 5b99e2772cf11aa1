"""The HTTP clients a provider session opens connections with, under the endpoint policy.

With EVIDENCE_ALLOW_CUSTOM_ENDPOINTS off, every connection resolves its host through the
policy, connects only to public addresses, and checks the connected peer again, so a public
name that resolves (or later rebinds) to loopback, a private network or the cloud metadata
address is refused at connect time, not only when the URL was validated. TLS still verifies
the certificate against the host name. With the flag on these are the libraries' own clients.

`guard_requests` covers requests-based SDKs (PyGithub, google-cloud-storage, google-auth);
`aiohttp_connector` covers aiohttp-based ones (the okta SDK). Connections through a proxy
configured by the operator (HTTPS_PROXY) go to the proxy, which must refuse private
destinations itself.
"""

from __future__ import annotations

import asyncio
import socket
from functools import cache
from typing import Any

import aiohttp
import requests
from aiohttp.abc import AbstractResolver, ResolveResult
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from connectors.endpoints import EndpointPolicy

__all__ = ["GuardedAdapter", "aiohttp_connector", "guard_requests", "requests_session"]


def requests_session(policy: EndpointPolicy) -> requests.Session:
    """A requests session whose connections obey the policy."""
    return guard_requests(requests.Session(), policy)


def guard_requests(session: requests.Session, policy: EndpointPolicy,
                   pool_size: int = requests.adapters.DEFAULT_POOLSIZE,
                   max_retries: Any = 0) -> requests.Session:
    """Mount guarded adapters on a session (an SDK's own, e.g. google-auth's AuthorizedSession);
    with the flag on the session is left as it is."""
    if not policy.allow_custom:
        adapter = GuardedAdapter(policy, pool_connections=pool_size, pool_maxsize=pool_size,
                                 max_retries=max_retries)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    return session


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools connect only to the addresses the policy allows."""

    def __init__(self, policy: EndpointPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        http_pool, https_pool = _pool_classes(self.policy)
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


@cache
def _pool_classes(policy: EndpointPolicy) -> tuple[type[HTTPConnectionPool],
                                                   type[HTTPSConnectionPool]]:
    """urllib3 pools (and connections) bound to one policy."""

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_socket(self, policy)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_socket(self, policy)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return GuardedHTTPPool, GuardedHTTPSPool


def _guarded_socket(conn: HTTPConnection, policy: EndpointPolicy) -> socket.socket:
    """urllib3's `_new_conn`, connecting only to allowed addresses of the host and checking the
    peer it reached; every failure is urllib3's NewConnectionError (or its timeout)."""
    try:
        addresses = policy.public_addresses(conn.host, conn.port or 0)
    except OSError as exc:  # refused by the policy, or the name does not resolve
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
    error: OSError | None = None
    for address in addresses:
        try:
            sock = create_connection((address, conn.port or 0), conn.timeout,
                                     source_address=conn.source_address,
                                     socket_options=conn.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. "
                                            f"(connect timeout={conn.timeout})") from exc
        except OSError as exc:
            error = exc
            continue
        try:
            policy.check_peer(str(sock.getpeername()[0]))
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


def aiohttp_connector(policy: EndpointPolicy, **kwargs: Any) -> aiohttp.TCPConnector:
    """An aiohttp connector whose connections obey the policy (the library's own when the flag
    is on). Its resolver resolves through the policy and keeps only allowed addresses; IP
    literals, which aiohttp does not resolve, are judged the same way."""
    if policy.allow_custom:
        return aiohttp.TCPConnector(**kwargs)
    return _GuardedConnector(policy, resolver=_GuardedResolver(policy), **kwargs)


class _GuardedResolver(AbstractResolver):
    def __init__(self, policy: EndpointPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        addresses = await loop.run_in_executor(None, self.policy.public_addresses, host, port)
        return [_resolved(host, address, port) for address in addresses]

    async def close(self) -> None:
        return None


class _GuardedConnector(aiohttp.TCPConnector):
    def __init__(self, policy: EndpointPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy

    async def _resolve_host(self, host: str, port: int,
                            traces: Any = None) -> list[ResolveResult]:
        # aiohttp answers an IP literal without asking the resolver; judge every answer here.
        found: list[ResolveResult] = await super()._resolve_host(host, port, traces=traces)
        for result in found:
            self._policy.check_peer(result["host"])
        return found


def _resolved(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST)
