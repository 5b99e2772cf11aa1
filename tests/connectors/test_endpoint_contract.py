"""The endpoint contract every registered connector keeps: each credentials or config field that
can point the engine at a host is marked, and the SDK's gate refuses loopback, private and
metadata addresses in it while EVIDENCE_ALLOW_CUSTOM_ENDPOINTS is off."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AnyUrl, BaseModel
from pydantic import HttpUrl as PydanticHttpUrl

from connectors.base import Connector, Endpoint
from connectors.endpoints import (
    LOCKED,
    EndpointPolicy,
    endpoint_fields,
    is_url_type,
    looks_like_endpoint,
)
from engine.endpoints import check_endpoint_policy
from engine.errors import InvalidInput
from engine.registry import connectors
from engine.settings import Settings

REFUSED = ["https://127.0.0.1", "http://10.0.0.1", "https://169.254.169.254"]


def url_like_fields(model: type[BaseModel]) -> list[str]:
    """Fields whose type is a URL (the SDK's HttpUrl, pydantic's AnyUrl/HttpUrl, optional or
    not) or whose name ends in url, uri, endpoint or host."""
    return [name for name, info in model.model_fields.items()
            if is_url_type(info.annotation) or looks_like_endpoint(name)]


def models(cls: type[Connector]) -> list[tuple[str, type[BaseModel]]]:
    found: list[tuple[str, type[BaseModel]]] = [("credentials", cls.credentials_model)]
    if cls.config_model is not None:
        found.append(("config", cls.config_model))
    return found


FIELDS = [(cid, section, model, name)
          for cid, cls in sorted(connectors().items())
          for section, model in models(cls)
          for name in url_like_fields(model)]


def test_the_builtin_endpoint_fields_are_all_found():
    found = {(cid, section, name) for cid, section, _, name in FIELDS}
    assert {("aws", "credentials", "endpoint_url"), ("gcp", "credentials", "endpoint_url"),
            ("github", "credentials", "base_url"), ("okta", "credentials", "org_url")} <= found


@pytest.mark.parametrize("connector_id, section, model, name", FIELDS,
                         ids=[f"{c}.{s}.{n}" for c, s, _, n in FIELDS])
def test_every_url_like_field_is_marked(connector_id, section, model, name):
    info = model.model_fields[name]
    assert any(isinstance(m, Endpoint) for m in info.metadata), (
        f"{connector_id} {section}.{name} looks like a URL: mark it "
        "Annotated[..., Endpoint.SERVER] (or Endpoint.EMULATOR)")


@pytest.mark.parametrize("url", REFUSED)
@pytest.mark.parametrize("connector_id, section, model, name", FIELDS,
                         ids=[f"{c}.{s}.{n}" for c, s, _, n in FIELDS])
def test_every_url_like_field_is_refused_on_non_public_hosts_without_the_flag(
        connector_id, section, model, name, url):
    refused = LOCKED.refusals(model, {name: url})
    assert [r.field for r in refused] == [name]
    with pytest.raises(InvalidInput) as caught:
        check_endpoint_policy(model, {name: url}, Settings(EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=False),
                              section=section)
    assert caught.value.code == f"invalid_{'config' if section == 'config' else 'credentials'}"
    assert [f["field"] for f in caught.value.details["fields"]] == [name]
    assert EndpointPolicy(allow_custom=True).refusals(model, {name: url}) == []


def test_an_unmarked_url_field_of_a_third_party_connector_is_gated_as_a_server():
    class Credentials(BaseModel):
        api_url: str
        webhook_endpoint: AnyUrl | None = None
        tenant_host: str = ""
        region: str = "eu"
        docs: PydanticHttpUrl | None = None
        emulator: Annotated[str | None, Endpoint.EMULATOR] = None

    assert endpoint_fields(Credentials) == {
        "api_url": Endpoint.SERVER, "webhook_endpoint": Endpoint.SERVER,
        "tenant_host": Endpoint.SERVER, "docs": Endpoint.SERVER,
        "emulator": Endpoint.EMULATOR}
    assert {r.field for r in LOCKED.refusals(Credentials, {
        "api_url": "https://10.1.2.3", "tenant_host": "127.0.0.1",
        "emulator": "https://emulator.example.com", "region": "127.0.0.1",
        "docs": "http://docs.example.com"})} == {"api_url", "tenant_host", "emulator", "docs"}
    assert LOCKED.refusals(Credentials, {"api_url": "https://api.example.com",
                                         "tenant_host": "acme.example.com"}) == []
