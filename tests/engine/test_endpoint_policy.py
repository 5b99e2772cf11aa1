"""The custom endpoint gate: which credentials may point a provider SDK at another host when
EVIDENCE_ALLOW_CUSTOM_ENDPOINTS is off (production) and on (emulators, private networks)."""

from __future__ import annotations

import pytest

from connectors.aws import AwsConnector
from connectors.base import Endpoint
from connectors.github import GithubCredentials
from engine.endpoints import check_endpoint_policy, endpoint_fields
from engine.errors import InvalidInput
from engine.settings import Settings

LOCKED = Settings(EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=False)
OPEN = Settings(EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=True)


def test_fields_are_found_by_their_marker_or_the_endpoint_url_name():
    assert endpoint_fields(GithubCredentials) == {"base_url": Endpoint.SERVER}
    assert endpoint_fields(AwsConnector.credentials_model) == {"endpoint_url": Endpoint.EMULATOR}


@pytest.mark.parametrize("base_url", [
    "https://ghe.example.com/api/v3",
    "https://github.acme.io:8443/api/v3",
    "https://GHE.Example.COM./api/v3",
    "https://140.82.112.6/api/v3",
])
def test_github_enterprise_over_https_on_a_public_host_needs_no_flag(base_url):
    check_endpoint_policy(GithubCredentials, {"base_url": base_url}, LOCKED)


@pytest.mark.parametrize("base_url, why", [
    ("http://ghe.example.com/api/v3", "https://"),
    ("https://localhost/api/v3", "address"),
    ("https://api.localhost/api/v3", "address"),
    ("https://127.0.0.1:8443/api/v3", "address"),
    ("https://127.1/api/v3", "address"),
    ("https://2130706433/api/v3", "address"),
    ("https://0x7f.0.0.1/api/v3", "address"),
    ("https://[::1]/api/v3", "address"),
    ("https://[::ffff:127.0.0.1]/api/v3", "address"),
    ("https://10.20.30.40/api/v3", "address"),
    ("https://192.168.1.10/api/v3", "address"),
    ("https://100.64.0.1/api/v3", "address"),
    ("https://169.254.169.254/latest/meta-data", "address"),
    ("https://[fd00::1]/api/v3", "address"),
    ("https://0.0.0.0/api/v3", "address"),
    ("https://metadata.google.internal/api/v3", "address"),
    ("https://ghe.local/api/v3", "address"),
    ("https://ghe/api/v3", "address"),
])
def test_a_base_url_on_http_or_a_non_public_host_needs_the_flag(base_url, why):
    with pytest.raises(InvalidInput) as refused:
        check_endpoint_policy(GithubCredentials, {"base_url": base_url}, LOCKED)
    assert refused.value.code == "invalid_credentials"
    (field,) = refused.value.details["fields"]
    assert field["field"] == "base_url" and why in field["message"]
    assert "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=true" in refused.value.message
    check_endpoint_policy(GithubCredentials, {"base_url": base_url}, OPEN)


@pytest.mark.parametrize("endpoint_url", ["https://s3.example.com", "http://127.0.0.1:5000"])
def test_an_emulator_endpoint_needs_the_flag_whatever_its_host(endpoint_url):
    model = AwsConnector.credentials_model
    with pytest.raises(InvalidInput) as refused:
        check_endpoint_policy(model, {"endpoint_url": endpoint_url}, LOCKED)
    assert [f["field"] for f in refused.value.details["fields"]] == ["endpoint_url"]
    check_endpoint_policy(model, {"endpoint_url": endpoint_url}, OPEN)


def test_credentials_without_an_endpoint_pass():
    check_endpoint_policy(GithubCredentials, {"organization": "acme", "base_url": None}, LOCKED)
    check_endpoint_policy(AwsConnector.credentials_model, {}, LOCKED)
