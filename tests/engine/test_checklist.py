"""The check catalog (`evidence checks`) and docs/checks.md, rendered from the same metadata."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from engine.checklist import check_catalog, print_checks, render_markdown, render_tables
from engine.registry import connectors, register, unregister
from tests.engine.fake import FakeConnector

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "checks.md"


@pytest.fixture
def fake_registered() -> Iterator[None]:
    register(FakeConnector)
    try:
        yield
    finally:
        unregister(FakeConnector.id)


def rows(markdown: str) -> dict[str, list[str]]:
    """Table rows of the markdown by check id: their cells after the id."""
    found = {}
    for line in markdown.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            found[cells[0].strip("`")] = cells[1:]
    return found


def test_docs_checks_md_is_the_current_rendering():
    assert DOC.read_text() == render_markdown(check_catalog()), (
        "docs/checks.md is stale: run `evidence checks --markdown > docs/checks.md`")


def test_catalog_lists_every_check_of_every_registered_connector():
    catalog = check_catalog()
    assert [c.id for c in catalog] == sorted(connectors())
    listed = {entry.id for c in catalog for entry in c.checks}
    assert listed == {chk.id for cls in connectors().values() for chk in cls.checks}
    assert len({entry.id for c in catalog if c.id == "aws" for entry in c.checks}) >= 25


def test_markdown_rows_carry_severity_title_and_every_mapped_framework():
    found = rows(render_markdown(check_catalog()))
    # columns: severity, resource, title, SOC 2, ISO 27001, CIS AWS v3.0, NIST 800-53
    assert found["aws.s3.bucket_tls_only"][:6] == [
        "medium", "`aws.s3.bucket`",
        "S3 bucket policies deny requests that do not use TLS (aws:SecureTransport false).",
        "CC6.1, CC6.7", "A.5.14, A.8.24", "2.1.1"]
    # a check CIS has no recommendation for shows a dash in that column
    assert found["aws.guardduty.enabled"][5] == "—"
    # emphasis markers in titles are escaped so the table renders as written
    assert '("\\*:\\*")' in found["aws.iam.no_full_admin_policies"][2]
    # NIST 800-53 and the benchmarks without a catalog get their own columns
    assert found["github.branch.signed_commits_required"][3:] == [
        "CC8.1, CC6.1", "A.8.32, A.8.4", "AU-10, CM-5, SI-7", "1.1.12"]
    assert found["gcp.storage.bucket_no_public_iam"][-1] == "5.1"


def section(markdown: str, check_id: str) -> str:
    """The details section of one check."""
    start = markdown.index(f"### `{check_id}`")
    end = markdown.find("\n### ", start + 1)
    return markdown[start:end if end > 0 else None]


def test_each_check_has_its_risk_remediation_and_reference_below_the_table():
    markdown = render_markdown(check_catalog())
    signed = section(markdown, "github.branch.signed_commits_required")
    assert "**Risk.** Anyone can author commits under another person's name" in signed
    assert "- CLI: `gh api -X POST repos/ORG/REPO/branches/BRANCH/protection/" \
           "required_signatures`" in signed
    assert "  ```hcl\n  resource \"github_branch_protection\" \"default\" {" in signed
    assert "require_signed_commits = true" in signed
    assert "Reference: <https://docs.github.com/en/repositories/" in signed
    assert "NIST 800-53: AU-10, CM-5, SI-7; CIS SSCS v1.0: 1.1.12." in signed
    old = section(markdown, "github.branch.reviews_required")
    assert "Deprecated alias, kept for one release: replaced by " \
           "`github.branch.approving_review_required`" in old
    assert "Replaces `github.branch.reviews_required`" in section(
        markdown, "github.branch.stale_reviews_dismissed")


def test_a_newly_registered_connector_appears_in_the_catalog(fake_registered):
    markdown = render_markdown(check_catalog())
    assert "## Fake (`fake`)" in markdown
    found = rows(markdown)
    assert found["fake.widget.locked"][:3] == ["high", "`fake.widget`", "Widgets are locked."]
    assert "fake.widget.exploding" in found
    tables = render_tables(check_catalog())
    assert any("Fake (fake)" in str(t.title) for t in tables)


def test_checks_table_shows_every_check_with_its_controls():
    out = io.StringIO()
    assert print_checks(console=Console(file=out, width=240, color_system=None)) == 0
    text = out.getvalue()
    for cls in connectors().values():
        for chk in cls.checks:
            assert chk.id in text
    assert "CIS AWS v3.0" in text and "ISO 27001:2022" in text and "NIST 800-53" in text
    assert "aws.iam.access_key_rotation" in text and "1.14" in text
    # each check's risk, fixes and reference follow its connector's table
    assert "Risk: Short passwords fall quickly to guessing and cracking." in text
    assert "gcloud storage buckets update gs://NAME --versioning" in text
    assert "https://cloud.google.com/storage/docs/object-versioning" in text


def test_evidence_checks_markdown_prints_the_document():
    done = subprocess.run([sys.executable, "-m", "cli.main", "checks", "--markdown"],
                          cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_markdown(check_catalog())
