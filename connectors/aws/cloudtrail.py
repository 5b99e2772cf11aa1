"""AWS CloudTrail: API activity is recorded in every region, in validated, KMS-encrypted logs."""

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


@collector(scoped=True)
def collect_regional_trails(session: AwsSession, region: str) -> list[Trail]:
    """The trails whose home is this region (every trail of the account, over all regions)."""
    trails = []
    with session.service("cloudtrail", region) as cloudtrail:
        listed = cloudtrail.describe_trails(includeShadowTrails=False)["trailList"]
        for trail in listed:
            if trail.get("HomeRegion", region) != region:
                continue  # a shadow of another region's trail: judged in its home region
            status = cloudtrail.get_trail_status(Name=trail["TrailARN"])
            trails.append(Trail(
                name=trail["Name"], arn=trail["TrailARN"], home_region=region,
                is_multi_region=bool(trail.get("IsMultiRegionTrail", False)),
                is_logging=bool(status.get("IsLogging", False)),
                s3_bucket=trail.get("S3BucketName"),
                is_organization_trail=bool(trail.get("IsOrganizationTrail", False)),
                log_file_validation=bool(trail.get("LogFileValidationEnabled", False)),
                kms_key_id=trail.get("KmsKeyId"),
            ))
    return sorted(trails, key=lambda t: t.arn)


def _trail_data(t: Trail) -> dict[str, object]:
    return {"trail": t.name, "home_region": t.home_region, "is_multi_region": t.is_multi_region,
            "is_logging": t.is_logging, "s3_bucket": t.s3_bucket,
            "LogFileValidationEnabled": t.log_file_validation, "KmsKeyId": t.kms_key_id}


@check(id="aws.cloudtrail.log_file_validation", severity=Severity.MEDIUM,
       resource_type="aws.cloudtrail.trail", needs=collect_regional_trails,
       remediation="Turn on log file integrity validation so tampering with delivered logs is "
                   "detectable: `aws cloudtrail update-trail --name TRAIL "
                   "--enable-log-file-validation` (in the trail's home region).")
def log_file_validation(trails: list[Trail]) -> Iterator[Result]:
    """CloudTrail trails write digest files so log tampering can be detected."""
    for t in trails:
        title = (f"Trail {t.name} ({t.home_region}) validates its log files"
                 if t.log_file_validation else
                 f"Trail {t.name} ({t.home_region}) has log file validation off")
        yield Result.of(t.arn, passing=t.log_file_validation, title=title, data=_trail_data(t))


@check(id="aws.cloudtrail.kms_encryption", severity=Severity.MEDIUM,
       resource_type="aws.cloudtrail.trail", needs=collect_regional_trails,
       remediation="Encrypt the trail's logs with a customer-managed KMS key whose policy lets "
                   "CloudTrail encrypt and your log readers decrypt: `aws cloudtrail "
                   "update-trail --name TRAIL --kms-key-id KEY_ARN`.")
def kms_encryption(trails: list[Trail]) -> Iterator[Result]:
    """CloudTrail trails encrypt their log files with a KMS key (SSE-KMS)."""
    for t in trails:
        title = (f"Trail {t.name} ({t.home_region}) encrypts its logs with KMS key {t.kms_key_id}"
                 if t.kms_key_id else
                 f"Trail {t.name} ({t.home_region}) does not encrypt its logs with KMS")
        yield Result.of(t.arn, passing=bool(t.kms_key_id), title=title, data=_trail_data(t))
