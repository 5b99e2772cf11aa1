"""AWS Security Hub: enabled in every region (CIS AWS v3.0 4.16)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from connectors.aws.session import AwsSession, error_code
from connectors.base import Result, Severity, check, collector

# DescribeHub's answer for an account that never enabled Security Hub in the region.
_NOT_SUBSCRIBED = frozenset({"InvalidAccessException", "ResourceNotFoundException"})


@dataclass(frozen=True)
class RegionHub:
    """Security Hub in one region: its hub ARN, or None when it is not enabled there."""

    account_id: str
    region: str
    hub_arn: str | None
    subscribed_at: str | None

    @property
    def resource_id(self) -> str:
        return f"aws:account:{self.account_id}:region:{self.region}"


@collector(scoped=True)
def collect_hubs(session: AwsSession, region: str) -> list[RegionHub]:
    """The region's Security Hub (DescribeHub); not subscribed means not enabled."""
    account_id = session.identity().account_id
    with session.service("securityhub", region) as client:
        try:
            hub = client.describe_hub()
        except ClientError as exc:
            if error_code(exc) not in _NOT_SUBSCRIBED:
                raise
            hub = {}
    return [RegionHub(account_id=account_id, region=region, hub_arn=hub.get("HubArn"),
                      subscribed_at=hub.get("SubscribedAt"))]


@check(id="aws.securityhub.enabled", severity=Severity.MEDIUM,
       resource_type="aws.account.region", needs=collect_hubs,
       benchmarks={"cis_aws": ["4.16"]},
       remediation="Enable Security Hub in every region with the standards you follow (the "
                   "delegated administrator can enable it organization-wide), e.g. `aws "
                   "securityhub enable-security-hub --enable-default-standards --region "
                   "REGION`.")
def securityhub_enabled(hubs: list[RegionHub]) -> Iterator[Result]:
    """AWS Security Hub is enabled in every region."""
    for h in hubs:
        title = (f"Security Hub is enabled in {h.region}" if h.hub_arn
                 else f"Security Hub is not enabled in {h.region}")
        yield Result.of(h.resource_id, passing=bool(h.hub_arn), title=title,
                        data={"account_id": h.account_id, "region": h.region,
                              "hub_arn": h.hub_arn, "subscribed_at": h.subscribed_at})
