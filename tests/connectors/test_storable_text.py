"""The SDK refuses credentials and configuration text that Postgres or the vault could not
take (NUL, a lone surrogate) or that no provider needs (over 64 KiB a string), naming the
field and never the value: 422 before anything is stored, for every connector."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.aws import AwsConnector
from connectors.base import MAX_TEXT, AuthType, Category, Connector, InvalidFields, unstorable_text
from connectors.okta import OktaConnector

GOOD = {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


class Plain(Connector):
    id = "plaintext"
    name = "Plain"
    category = Category.DEVOPS
    auth_type = AuthType.API_KEY
    icon = "plain"
    credentials_model = OktaConnector.credentials_model


@pytest.mark.parametrize("value, field", [
    ({"a": "x\x00"}, "a"),
    ({"a": ["ok", {"b": "\ud800"}]}, "a.1.b"),
    ({"a": {"\x00": 1}}, "a"),
    ({"a": "x" * (MAX_TEXT + 1)}, "a"),
])
def test_unstorable_text_names_the_field_not_the_value(value: Any, field: str):
    found = unstorable_text(value)
    assert [f["field"] for f in found] == [field]
    assert "\x00" not in found[0]["message"] and "xxxx" not in found[0]["message"]


def test_storable_text_passes_and_a_deep_document_costs_no_stack():
    storable = {"a": ["é", "日本", "🙂", 1, None, True], "b": {"c": "x" * MAX_TEXT}}
    assert unstorable_text(storable) == []
    deep: Any = "ok"
    for _ in range(100_000):
        deep = [deep]
    assert unstorable_text({"a": deep}) == []


@pytest.mark.parametrize("secret", ["a\x00" * 20, "\udc80" * 20, "x" * (MAX_TEXT + 1)])
def test_credentials_that_cannot_be_stored_are_invalid_credentials(secret: str):
    with pytest.raises(InvalidFields) as caught:
        AwsConnector.parse_credentials({**GOOD, "secret_access_key": secret})
    assert caught.value.code == "invalid_credentials"
    assert caught.value.details["fields"][0]["field"] == "secret_access_key"


@pytest.mark.parametrize("cls", [AwsConnector, OktaConnector, Plain])
@pytest.mark.parametrize("config", [{"max_super_admins": "\x00"}, {"anything": "\ud800"},
                                    {"\x00": "x"}])
def test_configuration_that_cannot_be_stored_is_invalid_config(cls: type[Connector],
                                                               config: dict[str, Any]):
    with pytest.raises(InvalidFields) as caught:
        cls.parse_config(config)
    assert caught.value.code == "invalid_config"


def test_aws_takes_no_configuration_parameters():
    assert AwsConnector.parse_config({}) == {}
    with pytest.raises(InvalidFields) as caught:
        AwsConnector.parse_config({"regions": ["us-east-1"]})
    assert caught.value.details["fields"] == [
        {"field": "regions", "message": "not a configuration parameter of aws"}]
