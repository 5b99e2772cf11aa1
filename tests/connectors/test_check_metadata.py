"""Check metadata as data (connectors/<provider>/metadata.yaml): complete for every provider,
validated when the connector class is created."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from connectors.base import Connector, Result, Severity, check, collector
from engine.registry import connectors

PROVIDERS = ["aws", "gcp", "github", "okta"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_check_has_risk_remediation_and_a_reference(provider: str):
    cls = connectors()[provider]
    metadata = cls.check_metadata()
    missing = [chk.id for chk in cls.checks if chk.id not in metadata]
    assert not missing, f"{provider}/metadata.yaml has no entry for {missing}"
    for chk in cls.checks:
        entry = metadata[chk.id]
        assert entry.url.startswith("https://")
        assert entry.risk and entry.remediation.console and entry.remediation.terraform
        assert entry.remediation.cli.startswith(
            ("aws ", "gcloud ", "gh ", "curl ", "Not available: ")), chk.id


@collector()
def _nothing(session: object) -> list[str]:
    return []


def _judge(items: list[str]):
    """Things are fine."""
    yield from (Result.of(i, passing=True, title=i) for i in items)


THING = check(id="acme.repo.thing", severity=Severity.LOW, resource_type="acme.repo",
              remediation="Fix it.", needs=_nothing)(_judge)

ENTRY = """acme.repo.thing:
  risk: "Things break."
  remediation:
    console: "Settings > Things: fix."
    cli: "gh api -X PUT repos/ORG/REPO/thing"
    terraform: |
      resource "acme_thing" "this" {}
  url: "https://docs.example.com/thing"
"""


def _declare(tmp_path: Path, text: str) -> type[Connector]:
    path = tmp_path / "metadata.yaml"
    path.write_text(text)
    return type("Acme", (Connector,), {
        "id": "acme", "name": "Acme", "category": "devops", "auth_type": "api_key",
        "icon": "acme", "credentials_model": BaseModel, "checks": (THING,),
        "check_metadata_file": path})


def test_a_valid_entry_is_read_at_import(tmp_path: Path):
    cls = _declare(tmp_path, ENTRY + '  benchmarks:\n    cis_sscs: ["1.1.4"]\n')
    entry = cls.check_metadata()["acme.repo.thing"]
    assert entry.remediation.terraform.startswith('resource "acme_thing"')
    assert entry.benchmarks == {"cis_sscs": ("1.1.4",)}


@pytest.mark.parametrize("text, message", [
    (ENTRY.replace("acme.repo.thing:", "acme.repo.thign:"),
     "metadata for 'acme.repo.thign', which is not a check of connector acme"),
    (ENTRY.replace('  url: "https://docs.example.com/thing"\n', ""), "acme.repo.thing: url"),
    (ENTRY.replace("https://docs", "http://docs"), "acme.repo.thing: url"),
    (ENTRY.replace("    terraform: |\n      resource \"acme_thing\" \"this\" {}\n", ""),
     "acme.repo.thing: remediation.terraform"),
    (ENTRY + "  severity: high\n", "acme.repo.thing: severity: Extra inputs are not permitted"),
    (ENTRY.replace('"Things break."', '"  "'), "acme.repo.thing: risk"),
    (ENTRY + "  benchmarks:\n    cis_sscs: []\n", "acme.repo.thing: benchmarks"),
    ("- just a list\n", "must map check ids to their metadata"),
])
def test_a_malformed_or_unknown_entry_fails_at_import(tmp_path: Path, text: str, message: str):
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _declare(tmp_path, text)


def test_a_check_without_an_entry_is_allowed_at_import_and_left_to_the_completeness_test(
        tmp_path: Path):
    assert _declare(tmp_path, "").check_metadata() == {}
