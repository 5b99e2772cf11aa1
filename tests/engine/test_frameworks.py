"""Frameworks are data: complete catalogs, and mappings that point at real controls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from connectors.base import Connector, Result, Severity, check, collector
from engine import frameworks
from engine.errors import InvalidInput
from engine.frameworks import catalog, load_catalog
from engine.registry import connectors


def test_soc2_lists_every_common_criterion_with_a_title():
    soc2 = catalog().frameworks["soc2"]
    expected = {f"CC{s}.{n}" for s, count in
                {1: 5, 2: 3, 3: 4, 4: 2, 5: 3, 6: 8, 7: 5, 8: 1, 9: 2}.items()
                for n in range(1, count + 1)}
    assert set(soc2.controls) == expected
    assert all(c.title for c in soc2.controls.values())


def test_iso27001_2022_lists_all_93_annex_a_controls():
    iso = catalog().frameworks["iso27001"]
    expected = {f"A.{t}.{n}" for t, count in {5: 37, 6: 8, 7: 14, 8: 34}.items()
                for n in range(1, count + 1)}
    assert set(iso.controls) == expected
    assert iso.controls["A.8.24"].title == "Use of cryptography"


def test_controls_resolve_from_either_spelling():
    cat = catalog()
    assert cat.resolve("soc2-cc6.1").id == "CC6.1"
    assert cat.resolve("CC6.1", "SOC2").key == "soc2-cc6.1"
    assert cat.resolve("a.8.24", "iso27001").id == "A.8.24"
    with pytest.raises(InvalidInput):
        cat.resolve("CC99.1", "soc2")


def test_a_mapping_to_an_unknown_control_fails_loudly(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("x.y.z:\n  soc2: [CC42.1]\n")
    with pytest.raises(ValueError, match="unknown soc2 control CC42.1"):
        load_catalog((bad,))


# --- CIS AWS Foundations v3.0 and NIST SP 800-53 Rev. 5 as data (issue #13) ---------------

NIST_IDS = {
    "AC-2", "AC-2(1)", "AC-2(3)", "AC-2(4)", "AC-3", "AC-4", "AC-5", "AC-6", "AC-6(1)", "AC-6(2)",
    "AC-6(9)", "AC-6(10)", "AC-7", "AC-17", "AC-17(2)", "AC-21", "AU-2", "AU-3", "AU-6",
    "AU-6(1)", "AU-6(3)", "AU-9", "AU-9(2)", "AU-9(3)", "AU-9(4)", "AU-10", "AU-11", "AU-12",
    "CA-7", "CM-2", "CM-3", "CM-5", "CM-6", "CM-7", "CM-8", "CP-9", "CP-10", "IA-2", "IA-2(1)",
    "IA-2(2)", "IA-2(6)", "IA-2(8)", "IA-4", "IA-5", "IA-5(1)", "IR-4", "IR-5", "IR-6", "RA-5",
    "SA-10", "SC-5", "SC-7", "SC-7(3)", "SC-7(4)", "SC-8", "SC-8(1)", "SC-12", "SC-12(2)",
    "SC-13", "SC-23", "SC-28", "SC-28(1)", "SI-2", "SI-3", "SI-4", "SI-4(2)", "SI-7",
}
# added for the GitHub, Okta and GCP checks: session termination, publicly accessible content,
# information retention
NIST_ADDED = {"AC-12", "AC-22", "SI-12"}


def test_cis_aws_v3_lists_every_recommendation_with_level_and_assessment():
    cis = catalog().frameworks["cis_aws"]
    assert (cis.name, cis.version) == ("CIS Amazon Web Services Foundations Benchmark", "3.0.0")
    sections = {"1": 22, "2.1": 4, "2.2": 1, "2.3": 3, "2.4": 1, "3": 9, "4": 16, "5": 6}
    expected = {f"{s}.{n}" for s, count in sections.items() for n in range(1, count + 1)}
    assert set(cis.controls) == expected and len(expected) == 62
    root_keys, unauthorized_calls = cis.controls["1.4"], cis.controls["4.1"]
    assert (root_keys.level, root_keys.automated) == (1, True)
    assert root_keys.group == "1 Identity and Access Management"
    assert (unauthorized_calls.level, unauthorized_calls.automated) == (2, False)
    assert cis.controls["2.1.4"].group == "2 Storage"
    assert all(c.title and c.level in (1, 2) and c.automated is not None
               for c in cis.controls.values())


def test_nist_800_53_holds_the_controls_the_checks_evidence_with_family_and_description():
    nist = catalog().frameworks["nist_800_53"]
    assert nist.name == "NIST SP 800-53 Rev. 5"
    assert set(nist.controls) == NIST_IDS | NIST_ADDED
    assert nist.controls["AC-6(10)"].group == "AC Access Control"
    assert nist.controls["IA-2(1)"].title == "Multi-factor Authentication to Privileged Accounts"
    assert all(c.description.endswith(".") for c in nist.controls.values())


def test_catalog_order_is_numeric_within_each_part_of_an_id():
    nist, cis = catalog().frameworks["nist_800_53"], catalog().frameworks["cis_aws"]
    ordered = [c.id for c in sorted(nist.controls.values(), key=lambda c: c.sort_key)]
    assert ordered.index("AC-2") < ordered.index("AC-2(1)") < ordered.index("AC-3")
    assert ordered.index("AC-6(2)") < ordered.index("AC-6(10)") < ordered.index("AC-7")
    assert ordered.index("AC-7") < ordered.index("AC-17")
    ordered = [c.id for c in sorted(cis.controls.values(), key=lambda c: c.sort_key)]
    assert ordered[:3] == ["1.1", "1.2", "1.3"] and ordered.index("1.9") < ordered.index("1.10")
    assert ordered.index("2.1.4") < ordered.index("2.2.1") and ordered[-1] == "5.6"


def test_new_framework_controls_resolve_from_either_spelling():
    cat = catalog()
    assert cat.resolve("nist_800_53-ac-6(10)").id == "AC-6(10)"
    assert cat.resolve("AC-6(10)", "NIST_800_53").key == "nist_800_53-ac-6(10)"
    assert cat.resolve("ia-2(1)").framework_id == "nist_800_53"  # a bare id with a dash
    assert cat.resolve("cis_aws-2.1.4").title.startswith("Ensure that S3 Buckets")
    with pytest.raises(InvalidInput):
        cat.resolve("AC-99")


@pytest.mark.parametrize("provider", ["github", "okta", "gcp"])
def test_every_github_okta_and_gcp_check_maps_to_nist_800_53(provider: str):
    cat = catalog()
    for chk in connectors()[provider].checks:
        assert any(c.framework_id == "nist_800_53" for c in cat.controls_for(chk.id)), chk.id


def test_every_check_with_a_cis_aws_benchmark_id_rolls_up_to_that_recommendation():
    cat = catalog()
    declared = [(chk.id, ref) for cls in connectors().values() for chk in cls.checks
                for ref in chk.benchmarks.get("cis_aws", ())]
    assert declared
    for check_id, ref in declared:
        assert cat.frameworks["cis_aws"].controls[ref] in cat.controls_for(check_id), check_id


def test_benchmarks_without_a_catalog_are_listed_not_rolled_up():
    cat = catalog()
    assert cat.references["gcp.storage.bucket_no_public_iam"] == {"cis_gcp": ("5.1",)}
    assert cat.references["github.branch.signed_commits_required"] == {"cis_sscs": ("1.1.12",)}
    assert "cis_gcp" not in cat.frameworks


def test_replaces_resolves_an_old_check_id_to_the_checks_that_took_it_over():
    cat = catalog()
    assert cat.resolve_check("github.branch.reviews_required") == (
        "github.branch.reviews_required", "github.branch.approving_review_required",
        "github.branch.stale_reviews_dismissed")
    assert cat.resolve_check("github.repo.codeowners_present") == (
        "github.repo.codeowners_present",)


# --- the loader fails loudly, naming the file and the check ----------------------------------

@collector()
def _nothing(session: object) -> list[str]:
    return []


def _connector(tmp_path: Path, mappings: str, **benchmarks: list[str]) -> type[Connector]:
    def judge(items: list[str]):
        """Things are fine."""
        yield from (Result.of(i, passing=True, title=i) for i in items)

    thing = check(id="acme.repo.thing", severity=Severity.LOW, resource_type="acme.repo",
                  remediation="Fix it.", needs=_nothing, benchmarks=benchmarks or None)(judge)
    path = tmp_path / "mappings.yaml"
    path.write_text(mappings)
    return type("Acme", (Connector,), {
        "id": "acme", "name": "Acme", "category": "devops", "auth_type": "api_key",
        "icon": "acme", "credentials_model": BaseModel, "checks": (thing,),
        "control_mappings": path})


COMPLETE = "acme.repo.thing:\n  soc2: [CC8.1]\n  iso27001: [A.8.32]\n"


def test_a_complete_connector_loads(tmp_path: Path):
    cat = load_catalog(connector_classes=[_connector(tmp_path, COMPLETE, cis_aws=["1.4"])])
    assert {c.key for c in cat.controls_for("acme.repo.thing")} == {
        "soc2-cc8.1", "iso27001-a.8.32", "cis_aws-1.4"}


@pytest.mark.parametrize("mappings, benchmarks, message", [
    (COMPLETE + "  nist_80053: [AC-2]\n", {}, "acme.repo.thing maps to framework 'nist_80053'"),
    (COMPLETE + "  nist_800_53: [AC-99]\n", {}, "acme.repo.thing maps to unknown nist_800_53 "
     "control AC-99"),
    (COMPLETE + "acme.repo.thign:\n  soc2: [CC8.1]\n", {},
     "acme.repo.thign is not a check of connector acme"),
    ("acme.repo.thing:\n  soc2: [CC8.1]\n", {}, "acme.repo.thing maps to no iso27001 control"),
    ("", {}, "acme.repo.thing maps to no soc2 and no iso27001 control"),
    (COMPLETE, {"cis_aws": ["9.9"]}, "acme.repo.thing maps to unknown cis_aws control 9.9"),
    ("acme.repo.thing: [CC8.1]\n", {}, "must map framework ids to lists"),
])
def test_a_bad_mapping_fails_loudly_with_the_check_id(tmp_path: Path, mappings: str,
                                                     benchmarks: dict[str, list[str]],
                                                     message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_catalog(connector_classes=[_connector(tmp_path, mappings, **benchmarks)])


def test_a_control_listed_twice_in_a_catalog_fails(tmp_path: Path, monkeypatch):
    (tmp_path / "twice.yaml").write_text(
        "id: twice\nname: Twice\ncontrols:\n  - {id: X-1, title: One}\n  - {id: X-1, title: Two}\n")
    monkeypatch.setattr(frameworks, "HERE", tmp_path)
    with pytest.raises(ValueError, match="control X-1 is listed twice"):
        load_catalog()


def test_the_controls_endpoint_lists_the_new_frameworks_controls_with_their_checks(client, auth):
    answer = client.get("/api/v1/integrations/github/controls", headers=auth).get_json()
    results = {c["controlId"]: c for c in answer["controlResults"]}
    assert {c["frameworkId"] for c in answer["controlMappings"]} == {
        "soc2", "iso27001", "nist_800_53"}
    mfa = results["nist_800_53-ia-2(1)"]
    assert mfa["controlName"] == "Multi-factor Authentication to Privileged Accounts"
    assert mfa["checks"] == ["github.org.two_factor_required"] and mfa["status"] == \
        "not_evaluated"
    aws = client.get("/api/v1/integrations/aws/controls", headers=auth).get_json()
    cis = {c["controlId"]: c for c in aws["controlResults"] if c["frameworkId"] == "cis_aws"}
    assert "aws.iam.access_key_rotation" in cis["cis_aws-1.14"]["checks"]
    assert cis["cis_aws-1.14"]["controlName"] == "Ensure access keys are rotated every 90 days " \
        "or less"


def test_every_framework_and_control_id_fits_the_columns_that_store_them():
    # control_result, control_result_history, audit_control, evidence_lineage: String(32)
    for fw in catalog().frameworks.values():
        assert len(fw.id) <= 32
        assert all(len(c.id) <= 32 for c in fw.controls.values()), fw.id
