"""The custom endpoint gate: which hosts a tenant's credentials or configuration may point the
engine at, decided once, in the SDK, for every connector.

A field marked `Endpoint.EMULATOR` (or an unmarked one named `endpoint_url`) is for emulators
and test doubles; one marked `Endpoint.SERVER` is the customer's own server of the provider
(GitHub Enterprise Server, an Okta org). An unmarked field that looks like a URL (named `url`,
`*_url`, `*_uri`, `*endpoint`, `*host`) is judged as SERVER, so a forgotten mark fails closed.

`EndpointPolicy` is the deployment's decision (EVIDENCE_ALLOW_CUSTOM_ENDPOINTS): `refusals`
judges given values before anything is stored, and `public_addresses` is what the SDK's HTTP
clients (connectors.egress) connect through, so a public name that resolves to a loopback,
private or link-local address is refused at connect time too. With the flag on, nothing is
refused. This module imports nothing from engine/.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Annotated, Any, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, AnyUrl, BaseModel

__all__ = [
    "ALLOW_FLAG",
    "Endpoint",
    "EndpointPolicy",
    "EndpointRefused",
    "HttpUrl",
    "Refusal",
    "Resolve",
    "endpoint_fields",
    "is_public_address",
    "is_url_type",
    "looks_like_endpoint",
    "system_resolve",
    "unreachable",
]

log = logging.getLogger(__name__)

ALLOW_FLAG = "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS"
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa")
_ENDPOINT_NAME_ENDS = ("url", "uri", "endpoint", "host")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


_HTTP_URL = AfterValidator(_http_url)
HttpUrl = Annotated[str, _HTTP_URL]
"""An http(s) URL without a trailing slash: endpoint and base URLs in credentials models."""


class Endpoint(StrEnum):
    """Marks a credentials or config field that points the engine at another host, so the gate
    judges it: `Annotated[HttpUrl | None, Endpoint.SERVER]`.

    EMULATOR: only for emulators and test doubles, refused unless the flag is set (a field
    named `endpoint_url` counts as one unmarked). SERVER: the customer's own server of the
    provider (GitHub Enterprise Server, an Okta org), accepted over https to a public host.
    """

    EMULATOR = "emulator"
    SERVER = "server"


Resolve = Callable[[str, int], list[str]]
"""Resolve a host name to the IP addresses a connection may go to (system DNS by default;
tests inject their own to make a public-looking name resolve to loopback)."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host:port, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EndpointRefused(ConnectionError):  # noqa: N818 - reads as what happened, like the builtins
    """A connection the gate did not let out: the host resolves only to addresses that are not
    public. An OSError, so HTTP clients report it as any failure to connect (one text)."""


@dataclass(frozen=True)
class Refusal:
    """A field whose value the gate refuses, and why (never quoting a secret)."""

    field: str
    message: str


def unreachable(provider: str, field: str) -> str:
    """The one text for a verification that could not reach a tenant-given address, whatever
    went wrong (refused, timed out, TLS failed, not a public address), so a tenant cannot map
    ports or hosts by trying them."""
    return (f"could not reach {provider} at {field}: check the address (the connection was "
            "refused, timed out, failed TLS or went to an address that is not allowed)")


def looks_like_endpoint(name: str) -> bool:
    """A field name that says it holds a URL or a host."""
    lowered = name.lower()
    return any(lowered.endswith(end) for end in _ENDPOINT_NAME_ENDS)


def is_url_type(annotation: Any) -> bool:
    """A field type that holds a URL: the SDK's HttpUrl or pydantic's URL types, also inside
    Optional or another union."""
    if isinstance(annotation, type) and issubclass(annotation, AnyUrl):
        return True
    if any(m is _HTTP_URL for m in getattr(annotation, "__metadata__", ())):
        return True
    return any(is_url_type(arg) for arg in get_args(annotation))


def endpoint_fields(model: type[BaseModel]) -> dict[str, Endpoint]:
    """The fields of a credentials or config model that point the engine at a host, and their
    kind: the mark when given, else EMULATOR for `endpoint_url`, else SERVER for any field
    typed as a URL or named like one (so a forgotten mark fails closed)."""
    found: dict[str, Endpoint] = {}
    for name, info in model.model_fields.items():
        marks = [m for m in info.metadata if isinstance(m, Endpoint)]
        if marks:
            found[name] = marks[0]
        elif name == "endpoint_url":
            found[name] = Endpoint.EMULATOR
        elif (looks_like_endpoint(name) or is_url_type(info.annotation)
              or _HTTP_URL in info.metadata):
            found[name] = Endpoint.SERVER
    return found


def is_public_address(address: str) -> bool:
    """Whether an IP address (any form the resolver accepts, e.g. 2130706433 or 127.1) is
    global: not loopback, private, link-local (169.254.169.254), unique-local, shared, reserved
    or unspecified. Anything that is not an address is not public."""
    parsed = _parse_address(address)
    return parsed is not None and parsed.is_global and not parsed.is_multicast


def _parse_address(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip().strip("[]")
    try:
        parsed = ip_address(text)
    except ValueError:
        try:
            parsed = ip_address(socket.inet_aton(text))  # legacy forms: 127.1, 0x7f.0.0.1
        except OSError:
            return None
    if isinstance(parsed, IPv6Address):
        embedded = parsed.ipv4_mapped or parsed.sixtofour
        if embedded is not None:
            return embedded
    return parsed


@dataclass(frozen=True)
class EndpointPolicy:
    """Whether tenant-given endpoints may reach non-public hosts (EVIDENCE_ALLOW_CUSTOM_ENDPOINTS),
    and how host names are resolved when they may not."""

    allow_custom: bool = False
    resolve: Resolve = system_resolve

    def refusals(self, model: type[BaseModel], values: Mapping[str, Any]) -> list[Refusal]:
        """The fields of `values` (validated against `model`) this deployment refuses.

        Without the flag an EMULATOR endpoint (AWS/GCP `endpoint_url`) is refused outright, and
        a SERVER endpoint must be https to a public host: plain http, IP literals that are not
        global and local names (single-label, .localhost, .local, .internal) are refused. What
        a public name resolves to is judged when the connection is opened (`public_addresses`).
        """
        if self.allow_custom:
            return []
        found = []
        for name, kind in endpoint_fields(model).items():
            value = values.get(name)
            reason = _refusal(kind, str(value)) if value else None
            if reason is not None:
                found.append(Refusal(name, reason))
        return found

    def public_addresses(self, host: str, port: int) -> list[str]:
        """The addresses a connection to host:port may use: all of them with the flag on,
        else only global ones; none left raises EndpointRefused (checked on every connection,
        so a name that later resolves elsewhere, DNS rebinding, is caught too)."""
        if self.allow_custom:
            return self.resolve(host, port)
        literal = _parse_address(host) if _looks_numeric(host.strip("[]")) else None
        addresses = [str(literal)] if literal is not None else self.resolve(host, port)
        allowed = [a for a in addresses if self.allows(a)]
        if not allowed:
            log.warning("refused a connection to %s:%s: it resolves to %s, not a public "
                        "address (%s is off)", host, port, ", ".join(addresses) or "nothing",
                        ALLOW_FLAG)
            raise EndpointRefused(f"{host} is not a public address")
        return allowed

    def allows(self, address: str) -> bool:
        """Whether a connection may go to this IP address."""
        return self.allow_custom or is_public_address(address)

    def check_peer(self, address: str) -> None:
        """Refuse a connected socket whose peer is not allowed."""
        if not self.allows(address):
            log.warning("refused a connection that reached %s, not a public address", address)
            raise EndpointRefused(f"{address} is not a public address")


LOCKED = EndpointPolicy()
"""The production policy: tenant endpoints reach public hosts only."""


def _refusal(kind: Endpoint, url: str) -> str | None:
    """Why a deployment without the flag refuses an endpoint."""
    flag = f"only accepted when the server sets {ALLOW_FLAG}=true"
    if kind is Endpoint.EMULATOR:
        return f"custom endpoints are {flag}"
    parts = urlsplit(url if "://" in url else f"//{url}")
    if "://" in url and parts.scheme != "https":
        return f"must be an https:// URL (plain http is {flag})"
    host = (parts.hostname or "").rstrip(".").lower()
    if _is_local_name(host) or _is_non_public_literal(host):
        return f"{host or 'the host'} is a loopback, private or local address: {flag}"
    return None


def _is_local_name(host: str) -> bool:
    if _looks_numeric(host):
        return False
    return "." not in host or any(host == s or host.endswith("." + s) for s in _LOCAL_SUFFIXES)


def _looks_numeric(host: str) -> bool:
    last = host.rsplit(".", 1)[-1]
    return ":" in host or last.isdigit() or last.startswith("0x")


def _is_non_public_literal(host: str) -> bool:
    return _looks_numeric(host) and not is_public_address(host)
