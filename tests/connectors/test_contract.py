"""The contract every registered connector must keep (run over the whole registry)."""

from __future__ import annotations

import pytest

from connectors.base import Connector, Severity
from engine.frameworks import catalog
from engine.registry import connectors

REGISTERED = sorted(connectors().items())


def test_the_registry_holds_the_builtin_connectors():
    assert "aws" in connectors()


@pytest.mark.parametrize("connector_id, cls", REGISTERED)
def test_connector_metadata_is_complete(connector_id: str, cls: type[Connector]):
    assert cls.id == connector_id and cls.name and cls.icon
    assert cls.checks, "a connector without checks collects nothing"
    secrets = [name for name, f in cls.credentials_model.model_fields.items()
               if ("secret" in name or "token" in name or "password" in name)
               and name != "token_type"]  # OAuth's token_type names a scheme ("bearer")
    for name in secrets:
        annotation = str(cls.credentials_model.model_fields[name].annotation)
        assert "SecretStr" in annotation, f"{name} must be a SecretStr"


@pytest.mark.parametrize("connector_id, cls", REGISTERED)
def test_every_check_is_documented_and_mapped_to_both_frameworks(connector_id: str,
                                                                 cls: type[Connector]):
    cat = catalog()
    for chk in cls.checks:
        assert chk.id.startswith(f"{connector_id}.")
        assert chk.title and chk.remediation and chk.resource_type
        assert isinstance(chk.severity, Severity)
        frameworks = {c.framework_id for c in cat.controls_for(chk.id)}
        assert {"soc2", "iso27001"} <= frameworks, f"{chk.id} maps to {frameworks}"


def test_every_mapping_names_a_registered_check():
    checks = {chk.id for cls in connectors().values() for chk in cls.checks}
    assert set(catalog().check_controls) <= checks


def test_duplicate_connector_metadata_fails_at_import():
    from connectors.aws import AwsConnector

    with pytest.raises(TypeError, match="declares a check twice"):
        type("Twice", (Connector,), {
            "id": "twice", "name": "T", "category": "cloud", "auth_type": "api_key",
            "icon": "t", "credentials_model": AwsConnector.credentials_model,
            "checks": (AwsConnector.checks[0], AwsConnector.checks[0])})
    with pytest.raises(TypeError, match="connector id"):
        type("BadId", (Connector,), {
            "id": "Bad Id", "name": "T", "category": "cloud", "auth_type": "api_key",
            "icon": "t", "credentials_model": AwsConnector.credentials_model})
