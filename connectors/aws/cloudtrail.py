"""AWS CloudTrail: the account records API activity in every region."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class Trail:
    """One trail and whether it is logging now."""

    name: str
    arn: str
    home_region: str
    is_multi_region: bool
    is_logging: bool
    s3_bucket: str | None
    is_organization_trail: bool
    log_file_validation: bool
    kms_key_id: str | None


@dataclass(frozen=True)
class TrailInventory:
    """The trails visible from one region: its own, and every multi-region trail."""

    account_id: str
    root_arn: str
    region: str
    trails: list[Trail] = field(default_factory=list)


@collector()
def collect_trails(session: AwsSession) -> TrailInventory:
    """Trails seen from the home region, with their logging status.

    With shadow trails included, one region lists every multi-region trail of the account
    (and its organization), wherever its home region is, which is all this check needs.
    """
    identity = session.identity()
    region = session.home_region
    trails = []
    with session.service("cloudtrail", region) as cloudtrail:
        listed = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
        for trail in {t["TrailARN"]: t for t in listed}.values():
            status = cloudtrail.get_trail_status(Name=trail["TrailARN"])
            trails.append(Trail(
                name=trail["Name"], arn=trail["TrailARN"],
                home_region=trail.get("HomeRegion", region),
                is_multi_region=bool(trail.get("IsMultiRegionTrail", False)),
                is_logging=bool(status.get("IsLogging", False)),
                s3_bucket=trail.get("S3BucketName"),
                is_organization_trail=bool(trail.get("IsOrganizationTrail", False)),
                log_file_validation=bool(trail.get("LogFileValidationEnabled", False)),
                kms_key_id=trail.get("KmsKeyId"),
            ))
    return TrailInventory(account_id=identity.account_id, root_arn=identity.root_arn,
                          region=region, trails=sorted(trails, key=lambda t: t.arn))


@check(id="aws.cloudtrail.multi_region_trail", severity=Severity.HIGH,
       resource_type="aws.account", needs=collect_trails,
       remediation="Create a multi-region trail that logs management events (read and write) "
                   "to a dedicated, access-restricted S3 bucket and start logging, e.g. `aws "
                   "cloudtrail create-trail --name org-trail --s3-bucket-name BUCKET "
                   "--is-multi-region-trail` then `aws cloudtrail start-logging --name "
                   "org-trail`; or use an organization trail.")
def multi_region_trail(inventory: TrailInventory) -> Iterator[Result]:
    """CloudTrail records API activity in every region with a logging multi-region trail."""
    logging = [t for t in inventory.trails if t.is_multi_region and t.is_logging]
    stopped = [t for t in inventory.trails if t.is_multi_region and not t.is_logging]
    if logging:
        title = ("Multi-region trail " + ", ".join(t.name for t in logging) + " is logging"
                 if len(logging) == 1 else
                 "Multi-region trails " + ", ".join(t.name for t in logging) + " are logging")
    elif stopped:
        title = ("No multi-region trail is logging: " + ", ".join(t.name for t in stopped)
                 + " stopped")
    elif inventory.trails:
        title = f"No multi-region trail: {len(inventory.trails)} single-region trail(s) only"
    else:
        title = "The account has no CloudTrail trail"
    yield Result.of(inventory.root_arn, passing=bool(logging), title=title,
                    data={"account_id": inventory.account_id, "region": inventory.region,
                          "trails": [asdict(t) for t in inventory.trails]})
