"""Amazon Macie: S3 data discovered and classified, Macie enabled in every region (CIS AWS v3.0
2.1.3, as Prowler judges it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from connectors.aws.session import AwsSession, error_code
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class RegionMacie:
    """Macie's session in one region: ENABLED, PAUSED, or None when it was never enabled."""

    account_id: str
    region: str
    status: str | None

    @property
    def resource_id(self) -> str:
        return f"aws:account:{self.account_id}:region:{self.region}"


def _not_enabled(exc: ClientError) -> bool:
    """GetMacieSession's answer where Macie is off: AccessDeniedException "Macie is not
    enabled" from AWS (unlike a missing permission), ResourceNotFoundException elsewhere."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return code == "ResourceNotFoundException" or (
        code == "AccessDeniedException" and "not enabled" in message)


@collector(scoped=True)
def collect_macie(session: AwsSession, region: str) -> list[RegionMacie]:
    """The region's Macie session status (GetMacieSession)."""
    account_id = session.identity().account_id
    with session.service("macie2", region) as client:
        try:
            status = client.get_macie_session().get("status")
        except ClientError as exc:
            if not _not_enabled(exc):
                raise
            status = None
    return [RegionMacie(account_id=account_id, region=region, status=status)]


@check(id="aws.macie.enabled", severity=Severity.LOW,
       resource_type="aws.account.region", needs=collect_macie,
       benchmarks={"cis_aws": ["2.1.3"]},
       remediation="Enable Amazon Macie in every region that stores S3 data and run "
                   "automated sensitive data discovery, e.g. `aws macie2 enable-macie --region "
                   "REGION` (the delegated administrator can enable it organization-wide).")
def macie_enabled(regions: list[RegionMacie]) -> Iterator[Result]:
    """Amazon Macie is enabled in every region to discover and classify S3 data."""
    for r in regions:
        enabled = r.status == "ENABLED"
        title = (f"Macie is enabled in {r.region}" if enabled
                 else f"Macie is {r.status.lower()} in {r.region}" if r.status
                 else f"Macie is not enabled in {r.region}")
        yield Result.of(r.resource_id, passing=enabled, title=title,
                        data={"account_id": r.account_id, "region": r.region,
                              "status": r.status})
