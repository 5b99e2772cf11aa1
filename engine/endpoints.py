"""The custom endpoint gate: which hosts a connection's credentials may point a provider SDK at.

A credentials field marked `Endpoint.EMULATOR` (or named `endpoint_url`) is for emulators and
test doubles; one marked `Endpoint.SERVER` is the customer's own server of the provider (GitHub
Enterprise Server). EVIDENCE_ALLOW_CUSTOM_ENDPOINTS lifts the gate.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from ipaddress import IPv6Address, ip_address
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from connectors.base import Endpoint
from engine.errors import InvalidInput
from engine.settings import Settings

_LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa")


def endpoint_fields(model: type[BaseModel]) -> dict[str, Endpoint]:
    """The credentials fields that point a provider SDK at another host, and their kind."""
    found: dict[str, Endpoint] = {}
    for name, info in model.model_fields.items():
        marks = [m for m in info.metadata if isinstance(m, Endpoint)]
        if marks:
            found[name] = marks[0]
        elif name == "endpoint_url":
            found[name] = Endpoint.EMULATOR
    return found


def _refusal(kind: Endpoint, url: str) -> str | None:
    """Why this deployment refuses an endpoint without EVIDENCE_ALLOW_CUSTOM_ENDPOINTS."""
    flag = "only accepted when the server sets EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=true"
    if kind is Endpoint.EMULATOR:
        return f"custom endpoints are {flag}"
    parts = urlsplit(url)
    if parts.scheme != "https":
        return f"must be an https:// URL (plain http is {flag})"
    host = (parts.hostname or "").rstrip(".").lower()
    if _is_local_name(host) or _is_non_public_address(host):
        return f"{host or 'the host'} is a loopback, private or local address: {flag}"
    return None


def _is_local_name(host: str) -> bool:
    if _looks_numeric(host):
        return False
    return "." not in host or any(host == s or host.endswith("." + s) for s in _LOCAL_SUFFIXES)


def _looks_numeric(host: str) -> bool:
    last = host.rsplit(".", 1)[-1]
    return ":" in host or last.isdigit() or last.startswith("0x")


def _is_non_public_address(host: str) -> bool:
    """An IP literal (any form the resolver accepts, e.g. 2130706433) that is not global."""
    if not _looks_numeric(host):
        return False
    try:
        address = ip_address(host)
    except ValueError:
        try:
            address = ip_address(socket.inet_aton(host))  # legacy forms: 127.1, 0x7f.0.0.1
        except OSError:
            return True  # not an address anything should be pointed at
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global


def check_endpoint_policy(model: type[BaseModel], values: Mapping[str, Any],
                          settings: Settings) -> None:
    """Refuse credentials that point a provider SDK at a host this deployment does not allow.

    With EVIDENCE_ALLOW_CUSTOM_ENDPOINTS everything goes (emulators, tests, a private network).
    Without it an EMULATOR endpoint (AWS/GCP `endpoint_url`) is refused outright, and a SERVER
    endpoint (GitHub Enterprise Server's `base_url`) must be https to a public host: plain
    http, IP literals that are not global (loopback, private, link-local, metadata) and local
    names (single-label, .localhost, .local, .internal) are refused. A public name that
    resolves to a private address is not caught here; certificate verification stops it.
    """
    if settings.allow_custom_endpoints:
        return
    fields = []
    for name, kind in endpoint_fields(model).items():
        value = values.get(name)
        reason = _refusal(kind, str(value)) if value else None
        if reason is not None:
            fields.append({"field": name, "message": reason})
    if fields:
        raise InvalidInput("; ".join(f"credentials.{f['field']}: {f['message']}"
                                     for f in fields),
                           code="invalid_credentials", fields=fields)
