"""AWS CloudTrail: API activity is recorded in every region, in validated, KMS-encrypted logs;
S3 object-level events are recorded, and the trails' buckets log access to them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from connectors.aws.session import AwsSession, error_code
from connectors.base import PermissionMissing, Result, Severity, check, collector


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
       benchmarks={"cis_aws": ["3.1"]},
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
       benchmarks={"cis_aws": ["3.2"]},
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
       benchmarks={"cis_aws": ["3.5"]},
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


# --- what the trails record and where their logs land (CIS 3.4, 3.8, 3.9; monitoring) -------

@dataclass(frozen=True)
class TrailSetup:
    """One trail with its event selectors, CloudWatch Logs group and its S3 bucket's access
    logging (`bucket_logging` None when off; `bucket_read` says why it could not be read)."""

    name: str
    arn: str
    home_region: str
    is_multi_region: bool
    is_logging: bool
    s3_bucket: str | None
    log_group_arn: str | None
    event_selectors: list[dict[str, Any]] = field(default_factory=list)
    advanced_event_selectors: list[dict[str, Any]] = field(default_factory=list)
    bucket_logging: dict[str, Any] | None = None
    bucket_read: str | None = None  # None: read; else "not_found" or the missing permission

    @property
    def records_all_management_events(self) -> bool:
        """Read and write management events are recorded (AWS's default without selectors)."""
        if not self.event_selectors and not self.advanced_event_selectors:
            return True
        basic = any(s.get("IncludeManagementEvents", True)
                    and s.get("ReadWriteType", "All") == "All"
                    for s in self.event_selectors)
        advanced = any(_fields(s).get("eventCategory") == ["Management"]
                       and "readOnly" not in _fields(s)
                       for s in self.advanced_event_selectors)
        return basic or advanced

    def records_s3_objects(self, access: str) -> bool:
        """Data events of every S3 object are recorded for `access` ("write" or "read")."""
        wanted = {"write": ("All", "WriteOnly"), "read": ("All", "ReadOnly")}[access]
        for s in self.event_selectors:
            if s.get("ReadWriteType", "All") not in wanted:
                continue
            for resource in s.get("DataResources", []):
                if resource.get("Type") == "AWS::S3::Object" and any(
                        _all_buckets(v) for v in resource.get("Values", [])):
                    return True
        excluded = "true" if access == "write" else "false"
        for s in self.advanced_event_selectors:
            fields = _fields(s)
            if (fields.get("eventCategory") == ["Data"]
                    and fields.get("resources.type") == ["AWS::S3::Object"]
                    and "resources.ARN" not in fields and "eventName" not in fields
                    and fields.get("readOnly") != [excluded]):
                return True
        return False


def _fields(selector: dict[str, Any]) -> dict[str, list[str]]:
    """An advanced selector's Equals conditions by field (other operators count as a narrowing
    condition with no Equals values)."""
    return {str(f.get("Field")): list(f.get("Equals", []))
            for f in selector.get("FieldSelectors", [])}


def _all_buckets(value: str) -> bool:
    """A data resource value meaning every bucket: `arn:aws:s3` or `arn:aws:s3:::`."""
    parts = value.split(":")
    return (len(parts) >= 3 and parts[0] == "arn" and parts[2] == "s3"
            and all(p == "" for p in parts[3:]))


@dataclass(frozen=True)
class TrailSetups:
    """The trails seen from one region."""

    account_id: str
    root_arn: str
    region: str
    trails: list[TrailSetup] = field(default_factory=list)


def read_trail_setups(session: AwsSession, region: str, *, shadows: bool,
                      bucket_logging: bool) -> TrailSetups:
    """The trails seen from `region` with their status and selectors (read in each trail's
    home region): with `shadows`, every multi-region trail too, else only the region's own
    trails; with `bucket_logging`, each trail's S3 bucket's server access logging."""
    identity = session.identity()
    with session.service("cloudtrail", region) as cloudtrail:
        listed = cloudtrail.describe_trails(includeShadowTrails=shadows)["trailList"]
    own = {t["TrailARN"]: t for t in listed
           if shadows or t.get("HomeRegion", region) == region}
    trails = [_read_setup(session, trail, region, bucket_logging) for trail in own.values()]
    return TrailSetups(account_id=identity.account_id, root_arn=identity.root_arn,
                       region=region, trails=sorted(trails, key=lambda t: t.arn))


def _read_setup(session: AwsSession, trail: dict[str, Any], region: str,
                bucket_logging: bool) -> TrailSetup:
    home = trail.get("HomeRegion", region)
    with session.service("cloudtrail", home) as cloudtrail:
        status = cloudtrail.get_trail_status(Name=trail["TrailARN"])
        selectors = cloudtrail.get_event_selectors(TrailName=trail["TrailARN"])
    bucket = trail.get("S3BucketName")
    logging, read = (_bucket_logging(session, bucket) if bucket_logging and bucket
                     else (None, None))
    return TrailSetup(
        name=trail["Name"], arn=trail["TrailARN"], home_region=home,
        is_multi_region=bool(trail.get("IsMultiRegionTrail", False)),
        is_logging=bool(status.get("IsLogging", False)), s3_bucket=bucket,
        log_group_arn=trail.get("CloudWatchLogsLogGroupArn"),
        event_selectors=list(selectors.get("EventSelectors") or []),
        advanced_event_selectors=list(selectors.get("AdvancedEventSelectors") or []),
        bucket_logging=logging, bucket_read=read)


def _bucket_logging(session: AwsSession, bucket: str) -> tuple[dict[str, Any] | None, str | None]:
    """The bucket's LoggingEnabled block (None when off) and, when unreadable, why."""
    try:
        with session.service("s3") as s3:
            try:
                answer = s3.get_bucket_logging(Bucket=bucket)
            except ClientError as exc:
                if error_code(exc) != "NoSuchBucket":
                    raise
                return None, "not_found"
    except PermissionMissing as exc:
        return None, exc.message
    enabled = answer.get("LoggingEnabled")
    return (dict(enabled) if enabled else None), None


@collector(scoped=True)
def collect_trail_setups(session: AwsSession, region: str) -> list[TrailSetups]:
    """The trails whose home is this region, with their event selectors and their buckets'
    access logging (over all regions: every trail of the account, once)."""
    return [read_trail_setups(session, region, shadows=False, bucket_logging=True)]


@check(id="aws.cloudtrail.bucket_access_logging", severity=Severity.MEDIUM,
       resource_type="aws.cloudtrail.trail", needs=collect_trail_setups,
       benchmarks={"cis_aws": ["3.4"]},
       remediation="Turn on server access logging for the trail's S3 bucket, into a separate "
                   "log bucket: `aws s3api put-bucket-logging --bucket TRAIL_BUCKET "
                   "--bucket-logging-status '{\"LoggingEnabled\": {\"TargetBucket\": "
                   "\"LOG_BUCKET\", \"TargetPrefix\": \"cloudtrail/\"}}'`.")
def bucket_access_logging(regions: list[TrailSetups]) -> Iterator[Result]:
    """The S3 bucket each CloudTrail trail delivers to logs every access to it."""
    for t in (t for setups in regions for t in setups.trails):
        data = {"trail": t.name, "home_region": t.home_region, "s3_bucket": t.s3_bucket,
                "LoggingEnabled": t.bucket_logging}
        if t.bucket_read == "not_found" or t.s3_bucket is None:
            yield Result.not_applicable(
                t.arn, f"Trail {t.name}'s bucket {t.s3_bucket} is not in this account; judge "
                       "its access logging in the account that owns it", data)
        elif t.bucket_read is not None:
            yield Result.error(t.arn, f"Could not read the access logging of trail {t.name}'s "
                               f"bucket {t.s3_bucket}: {t.bucket_read}",
                               {**data, "error": t.bucket_read})
        else:
            title = (f"Trail {t.name}'s bucket {t.s3_bucket} logs access to "
                     f"{t.bucket_logging['TargetBucket']}" if t.bucket_logging
                     else f"Trail {t.name}'s bucket {t.s3_bucket} has access logging off")
            yield Result.of(t.arn, passing=t.bucket_logging is not None, title=title,
                            data=data)


def _s3_object_logging(regions: list[TrailSetups], access: str) -> Iterator[Result]:
    if not regions:
        return
    trails = sorted((t for setups in regions for t in setups.trails), key=lambda t: t.arn)
    covering = [t for t in trails if t.records_s3_objects(access)]
    logging = [t for t in covering if t.is_logging]
    if logging:
        title = (f"Trail {logging[0].name} records {access} data events of every S3 object")
    elif covering:
        title = (f"Trail {covering[0].name} would record S3 object {access} events but is "
                 "not logging")
    else:
        title = f"No trail records {access} data events of every S3 object"
    yield Result.of(regions[0].root_arn, passing=bool(logging), title=title, data={
        "account_id": regions[0].account_id, "access": access,
        "trails": [{"trail": t.name, "home_region": t.home_region, "is_logging": t.is_logging,
                    "EventSelectors": t.event_selectors,
                    "AdvancedEventSelectors": t.advanced_event_selectors}
                   for t in trails]})


_DATA_EVENTS_REMEDIATION = (
    "Record S3 data events for every bucket on a logging trail (multi-region is best), e.g. "
    "`aws cloudtrail put-event-selectors --trail-name TRAIL --event-selectors "
    "'[{\"ReadWriteType\": \"All\", \"IncludeManagementEvents\": true, \"DataResources\": "
    "[{\"Type\": \"AWS::S3::Object\", \"Values\": [\"arn:aws:s3\"]}]}]'`.")


@check(id="aws.cloudtrail.s3_object_write_logging", severity=Severity.MEDIUM,
       resource_type="aws.account", needs=collect_trail_setups,
       benchmarks={"cis_aws": ["3.8"]}, remediation=_DATA_EVENTS_REMEDIATION)
def s3_object_write_logging(regions: list[TrailSetups]) -> Iterator[Result]:
    """CloudTrail records object-level write events (data events) of every S3 bucket."""
    yield from _s3_object_logging(regions, "write")


@check(id="aws.cloudtrail.s3_object_read_logging", severity=Severity.MEDIUM,
       resource_type="aws.account", needs=collect_trail_setups,
       benchmarks={"cis_aws": ["3.9"]}, remediation=_DATA_EVENTS_REMEDIATION)
def s3_object_read_logging(regions: list[TrailSetups]) -> Iterator[Result]:
    """CloudTrail records object-level read events (data events) of every S3 bucket."""
    yield from _s3_object_logging(regions, "read")
