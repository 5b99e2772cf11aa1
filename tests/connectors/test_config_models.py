"""Connector configuration: `config_model` validates what `config_params` documents, when it is
saved (`Connector.parse_config`), and runtime parsing agrees with it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.base import AuthType, Category, ConfigParam, Connector, InvalidFields
from connectors.gcp import GcpConnector
from connectors.gcp.storage import StorageConfig
from connectors.github import GithubConnector
from connectors.github.repos import allowlist
from connectors.okta import OktaConnector, OktaSettings
from engine.errors import http_status
from engine.registry import connectors

REGISTERED = sorted(connectors().items())
BUILTIN_WITH_PARAMS = [GcpConnector, GithubConnector, OktaConnector]


@pytest.mark.parametrize("connector_id, cls", REGISTERED)
def test_every_config_param_is_a_field_of_the_config_model_with_the_same_default(
        connector_id: str, cls: type[Connector]):
    if cls.config_model is None:
        assert not cls.config_params, "a connector with parameters declares config_model"
        return
    fields = cls.config_model.model_fields
    documented = {p.name: p for p in cls.config_params}
    assert set(documented) == set(fields), "config_params must document every field"
    for name, param in documented.items():
        assert param.default == fields[name].get_default(call_default_factory=True), name
        is_secret = "SecretStr" in str(fields[name].annotation)
        assert param.secret == is_secret, name


def test_the_builtin_connectors_that_take_parameters_declare_their_model():
    assert OktaConnector.config_model is OktaSettings
    assert GcpConnector.config_model is StorageConfig
    for cls in BUILTIN_WITH_PARAMS:
        assert cls.config_model is not None and cls.config_params, cls.id


def test_a_config_param_without_a_field_in_the_model_fails_at_import():
    with pytest.raises(TypeError, match="no field for the config params"):
        type("Mismatched", (Connector,), {
            "id": "mismatched", "name": "M", "category": Category.CLOUD,
            "auth_type": AuthType.API_KEY, "icon": "m",
            "credentials_model": OktaConnector.credentials_model,
            "config_model": OktaSettings,
            "config_params": (ConfigParam("max_admins", "not a field of OktaSettings"),)})


@pytest.mark.parametrize("cls, raw, expected", [
    (OktaConnector, {"max_super_admins": "6", "inactive_days": 30},
     {"max_super_admins": 6, "inactive_days": 30}),
    (OktaConnector, {}, {}),
    (GcpConnector, {"require_cmek": "true"}, {"require_cmek": True}),
    (GithubConnector, {"allowed_public_repos": "docs-site, acme-corp/sdk\nblog"},
     {"allowed_public_repos": ["docs-site", "acme-corp/sdk", "blog"]}),
    (GithubConnector, {"allowed_public_repos": ["docs-site"]},
     {"allowed_public_repos": ["docs-site"]}),
    (GithubConnector, {"allowed_public_repos": ""}, {"allowed_public_repos": []}),
])
def test_valid_configurations_parse_to_plain_values(cls: type[Connector], raw: dict[str, Any],
                                                    expected: dict[str, Any]):
    assert cls.parse_config(raw) == expected


@pytest.mark.parametrize("cls, raw, fields", [
    (OktaConnector, {"max_super_admins": "0"}, ["max_super_admins"]),
    (OktaConnector, {"stuck_after_days": "a month", "max_session_idle_minutes": 10**6},
     ["stuck_after_days", "max_session_idle_minutes"]),
    (OktaConnector, {"colour": "blue"}, ["colour"]),
    (GcpConnector, {"require_cmek": "sometimes"}, ["require_cmek"]),
    (GithubConnector, {"allowed_public_repos": "docs site"}, ["allowed_public_repos.0"]),
    (GithubConnector, {"allowed_public_repos": "ok,../etc/passwd"}, ["allowed_public_repos.1"]),
    (GithubConnector, {"allowed_public_repos": 7}, ["allowed_public_repos"]),
])
def test_invalid_configurations_name_every_failing_field(cls: type[Connector],
                                                         raw: dict[str, Any], fields: list[str]):
    with pytest.raises(InvalidFields) as caught:
        cls.parse_config(raw)
    assert caught.value.code == "invalid_config" and http_status(caught.value) == 422
    assert [f["field"] for f in caught.value.details["fields"]] == fields


class _SecretConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    webhook_key: SecretStr | None = Field(None, min_length=32)
    region: str = Field("eu", pattern=r"^[a-z]{2}$")


class _SecretConnector(Connector):
    id = "secretcfg"
    name = "Secret config"
    category = Category.DEVOPS
    auth_type = AuthType.API_KEY
    icon = "secretcfg"
    credentials_model = OktaConnector.credentials_model
    config_model = _SecretConfig
    config_params = (ConfigParam("webhook_key", "Signs deliveries", secret=True),
                     ConfigParam("region", "Where", default="eu"))


def test_a_refused_configuration_never_echoes_its_values():
    secret = "hunter2-not-long-enough"
    with pytest.raises(InvalidFields) as caught:
        _SecretConnector.parse_config({"webhook_key": secret, "region": "Europe/Paris"})
    error = caught.value
    assert secret not in f"{error.message} {error.details}"
    assert "Europe/Paris" not in f"{error.message} {error.details}"
    assert [f["field"] for f in error.details["fields"]] == ["webhook_key", "region"]
    key = "k" * 40
    assert _SecretConnector.parse_config({"webhook_key": key}) == {"webhook_key": key}


def test_without_a_config_model_the_configuration_is_taken_as_given():
    class Plain(Connector):
        id = "plaincfg"
        name = "Plain"
        category = Category.DEVOPS
        auth_type = AuthType.API_KEY
        icon = "plain"
        credentials_model = OktaConnector.credentials_model

    assert Plain.config_model is None
    assert Plain.parse_config({"anything": "goes"}) == {"anything": "goes"}


@pytest.mark.parametrize("raw", ["docs-site", "Docs-Site, acme-corp/SDK\n\n", ["a", " b "], ""])
def test_the_github_model_and_the_checks_read_the_allowlist_alike(raw: Any):
    parsed = GithubConnector.parse_config({"allowed_public_repos": raw})
    assert allowlist(parsed["allowed_public_repos"]) == allowlist(raw)


def test_gcp_and_okta_runtime_parsing_accepts_what_parse_config_answers():
    okta = OktaConnector.parse_config({"max_super_admins": "6"})
    assert OktaSettings.model_validate(okta).max_super_admins == 6
    gcp = GcpConnector.parse_config({"require_cmek": "yes"})
    assert StorageConfig.model_validate(gcp).require_cmek is True
