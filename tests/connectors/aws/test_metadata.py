"""Every AWS check's metadata (connectors/aws/metadata.yaml): present, pointing at AWS's docs,
and where the fix is a CloudWatch metric filter, a pattern the check itself accepts."""

from __future__ import annotations

import re

import pytest

from connectors.aws import AwsConnector
from connectors.aws.cloudwatch import WATCHES, pattern_has


def test_every_check_has_risk_remediation_and_an_aws_docs_url():
    metadata = AwsConnector.check_metadata()
    assert set(metadata) == {c.id for c in AwsConnector.checks}
    for check_id, entry in metadata.items():
        assert entry.url.startswith("https://docs.aws.amazon.com/"), check_id
        fix = entry.remediation
        assert fix.cli.startswith(("aws ", "Not available: ")), check_id
        assert fix.terraform.startswith(("resource ", "#")), check_id


@pytest.mark.parametrize("key", sorted(WATCHES))
def test_the_metric_filter_a_monitoring_check_suggests_passes_that_check(key):
    fix = AwsConnector.check_metadata()[f"aws.cloudwatch.{key}"].remediation
    for text in (fix.cli, fix.terraform):
        pattern = re.search(r"\{ .* \}", text)
        assert pattern is not None, text
        assert pattern_has(pattern.group(0).replace('\\"', '"'), WATCHES[key].terms) == []
