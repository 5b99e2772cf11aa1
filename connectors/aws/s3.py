"""Amazon S3: bucket default encryption, public access block (the bucket's and the account's),
versioning, MFA delete and TLS-only policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from connectors.aws.policy import as_list, is_everyone, parse_document, statements
from connectors.aws.session import AwsSession, error_code
from connectors.base import (
    AuthFailed,
    ConnectorError,
    PermissionMissing,
    Result,
    Severity,
    Shard,
    check,
    collector,
)

T = TypeVar("T")

PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                       "RestrictPublicBuckets")
_SSE_NAMES = {"AES256": "SSE-S3", "aws:kms": "SSE-KMS", "aws:kms:dsse": "DSSE-KMS"}


@dataclass(frozen=True)
class Bucket:
    """One bucket's settings; a setting the credentials may not read is named in read_errors."""

    name: str
    arn: str
    region: str
    encryption_rules: list[dict[str, Any]] = field(default_factory=list)
    versioning: dict[str, str] = field(default_factory=dict)
    public_access_block: dict[str, bool] | None = None
    policy: dict[str, Any] | None = None
    read_errors: dict[str, str] = field(default_factory=dict)
    account_public_access_block: dict[str, bool] | None = None
    """The account-level Block Public Access setting, which applies to this bucket too."""


@collector(shardable=True)
def collect_buckets(session: AwsSession, *, shard: Shard) -> list[Bucket]:
    """Every bucket of the account (of the shard) with the settings the S3 checks judge."""
    partition = session.identity().partition
    with session.service("s3") as s3:
        listed = [entry for page in s3.get_paginator("list_buckets").paginate()
                  for entry in page["Buckets"] if shard.owns(entry["Name"])]
    account = _account_block_for_buckets(session) if listed else None
    read = session.fan_out(lambda entry: _read_bucket(session, entry, partition, account),
                           listed)
    return [bucket for bucket in read if bucket is not None]


def _read_bucket(session: AwsSession, entry: dict[str, Any], partition: str,
                 account: AccountPublicAccessBlock | None) -> Bucket | None:
    """Read one bucket; None when it was deleted since the listing."""
    name = entry["Name"]
    errors: dict[str, str] = {}
    if account is not None and account.read_error is not None:
        errors["account_public_access_block"] = account.read_error
    region = entry.get("BucketRegion") or _read_setting(
        session, None, "region", errors, lambda s3: _bucket_region(s3, name))
    if region is None and "region" not in errors:
        return None
    return Bucket(
        name=name,
        arn=f"arn:{partition}:s3:::{name}",
        region=region or "unknown",
        encryption_rules=_read_setting(
            session, region, "encryption", errors, lambda s3: _encryption_rules(s3, name)) or [],
        versioning=_read_setting(
            session, region, "versioning", errors, lambda s3: _versioning(s3, name)) or {},
        public_access_block=_read_setting(
            session, region, "public_access_block", errors,
            lambda s3: _public_access_block(s3, name)),
        policy=_read_setting(session, region, "policy", errors, lambda s3: _policy(s3, name)),
        read_errors=errors,
        account_public_access_block=account.config if account is not None else None,
    )


def _read_setting(session: AwsSession, region: str | None, setting: str,
                  errors: dict[str, str], read: Callable[[Any], T]) -> T | None:
    """Read one bucket setting; a bucket policy denying it is that bucket's error, not the run's."""
    try:
        with session.service("s3", region) as s3:
            return read(s3)
    except PermissionMissing as exc:
        errors[setting] = exc.message
        return None


def _bucket_region(s3: Any, name: str) -> str | None:
    """The bucket's region; None when the bucket no longer exists."""
    try:
        constraint = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return None
        raise
    # us-east-1 answers no constraint; the oldest eu-west-1 buckets answer "EU".
    return "eu-west-1" if constraint == "EU" else str(constraint)


def _encryption_rules(s3: Any, name: str) -> list[dict[str, Any]]:
    try:
        config = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
    except ClientError as exc:
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return []
        raise
    return list(config.get("Rules", []))


def _versioning(s3: Any, name: str) -> dict[str, str]:
    answer = s3.get_bucket_versioning(Bucket=name)
    return {key: answer[key] for key in ("Status", "MFADelete") if key in answer}


def _public_access_block(s3: Any, name: str) -> dict[str, bool] | None:
    try:
        config = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
            return None
        raise
    return {flag: bool(config.get(flag, False)) for flag in PUBLIC_ACCESS_FLAGS}


def _policy(s3: Any, name: str) -> dict[str, Any] | None:
    try:
        text = s3.get_bucket_policy(Bucket=name)["Policy"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucketPolicy":
            return None
        raise
    return parse_document(text)


def _unreadable(bucket: Bucket, setting: str, what: str) -> Result:
    return Result.error(bucket.arn, f"Could not read the {what} of bucket {bucket.name}: "
                        f"{bucket.read_errors[setting]}",
                        {"bucket": bucket.name, "error": bucket.read_errors[setting]})


@check(id="aws.s3.bucket_default_encryption", severity=Severity.HIGH,
       resource_type="aws.s3.bucket", needs=collect_buckets,
       remediation="Enable default encryption on the bucket (Properties > Default encryption: "
                   "SSE-S3 or SSE-KMS), e.g. `aws s3api put-bucket-encryption --bucket NAME "
                   "--server-side-encryption-configuration "
                   "'{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":"
                   "{\"SSEAlgorithm\":\"aws:kms\"}}]}'`.")
def bucket_default_encryption(buckets: list[Bucket]) -> Iterator[Result]:
    """S3 buckets encrypt new objects at rest by default."""
    for b in buckets:
        if "encryption" in b.read_errors:
            yield _unreadable(b, "encryption", "default encryption")
            continue
        algorithms = [rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
                      for rule in b.encryption_rules]
        names = sorted({_SSE_NAMES[a] for a in algorithms if a in _SSE_NAMES})
        title = (f"Bucket {b.name} encrypts new objects with {' and '.join(names)} by default"
                 if names else f"Bucket {b.name} has no default encryption")
        yield Result.of(b.arn, passing=bool(names), title=title,
                        data={"bucket": b.name, "region": b.region, "rules": b.encryption_rules})


# --- Block Public Access: the account's setting applies to every bucket -------------------

@dataclass(frozen=True)
class AccountPublicAccessBlock:
    """The account-level Block Public Access setting (S3 Control); None when never set.

    `read_error` names a permission the credentials lack: the account check then reports an
    error and the bucket check judges each bucket on its own settings.
    """

    account_id: str
    root_arn: str
    config: dict[str, bool] | None
    read_error: str | None = None

    def flag(self, name: str) -> bool:
        return bool((self.config or {}).get(name, False))


@collector()
def collect_account_public_access_block(session: AwsSession) -> AccountPublicAccessBlock:
    """The account's Block Public Access configuration (s3control GetPublicAccessBlock)."""
    return read_account_public_access_block(session)


def read_account_public_access_block(session: AwsSession) -> AccountPublicAccessBlock:
    """The account's Block Public Access configuration; a denied read is kept as read_error
    (the bucket collector reads it too, once a run, so each bucket is judged with it)."""
    identity = session.identity()
    config: dict[str, bool] | None = None
    try:
        with session.service("s3control") as s3control:
            _reach_emulator(session, s3control, identity.account_id)
            try:
                answer = s3control.get_public_access_block(AccountId=identity.account_id)
                raw = answer["PublicAccessBlockConfiguration"]
                config = {flag: bool(raw.get(flag, False)) for flag in PUBLIC_ACCESS_FLAGS}
            except ClientError as exc:
                if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                    raise
    except PermissionMissing as exc:
        return AccountPublicAccessBlock(account_id=identity.account_id,
                                        root_arn=identity.root_arn, config=None,
                                        read_error=exc.message)
    return AccountPublicAccessBlock(account_id=identity.account_id, root_arn=identity.root_arn,
                                    config=config)


def _account_block_for_buckets(session: AwsSession) -> AccountPublicAccessBlock:
    """The account's block as the bucket checks use it: any failure to read it (not only a
    denied one) leaves each bucket judged on its own settings rather than failing them all."""
    try:
        return read_account_public_access_block(session)
    except AuthFailed:
        raise
    except ConnectorError as exc:
        identity = session.identity()
        return AccountPublicAccessBlock(account_id=identity.account_id,
                                        root_arn=identity.root_arn, config=None,
                                        read_error=exc.message)


def _reach_emulator(session: AwsSession, client: Any, account_id: str) -> None:
    """S3 Control puts the account id in front of the endpoint's host; an emulator reached
    by address (127.0.0.1) has no such name, so there the prefix is taken off again."""
    if session.endpoint_url is None:
        return

    def strip_account_prefix(request: AWSRequest, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc.startswith(f"{account_id}."):
            request.url = urlunsplit(parts._replace(netloc=parts.netloc[len(account_id) + 1:]))

    client.meta.events.register("before-sign.s3-control", strip_account_prefix,
                                unique_id="evidence-s3control-emulator-host")


@check(id="aws.s3.account_public_access_block", severity=Severity.HIGH,
       resource_type="aws.account", needs=collect_account_public_access_block,
       benchmarks={"cis_aws": ["2.1.4"]},
       remediation="Turn on all four Block Public Access settings for the account (S3 > Block "
                   "Public Access settings for this account), e.g. `aws s3control "
                   "put-public-access-block --account-id ACCOUNT "
                   "--public-access-block-configuration BlockPublicAcls=true,"
                   "IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`.")
def account_public_access_block(block: AccountPublicAccessBlock) -> Iterator[Result]:
    """The account blocks public access to every S3 bucket with all four settings."""
    data = {"account_id": block.account_id, "public_access_block": block.config}
    if block.read_error is not None:
        yield Result.error(block.root_arn, "Could not read the account's Block Public Access "
                           f"settings: {block.read_error}", {**data, "error": block.read_error})
        return
    off = [f for f in PUBLIC_ACCESS_FLAGS if not block.flag(f)]
    if block.config is None:
        title = "The account has no Block Public Access configuration"
    elif off:
        title = f"The account does not block public access: {', '.join(off)} off"
    else:
        title = "The account blocks all public access to S3"
    yield Result.of(block.root_arn, passing=not off, title=title, data=data)


@check(id="aws.s3.bucket_public_access_block", severity=Severity.HIGH,
       resource_type="aws.s3.bucket", needs=collect_buckets,
       benchmarks={"cis_aws": ["2.1.4"]},
       remediation="Turn on all four Block Public Access settings on the bucket or, better, for "
                   "the whole account (Permissions > Block public access), e.g. `aws s3api "
                   "put-public-access-block --bucket NAME --public-access-block-configuration "
                   "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
                   "RestrictPublicBuckets=true`; serve public content through CloudFront with "
                   "origin access control.")
def bucket_public_access_block(buckets: list[Bucket]) -> Iterator[Result]:
    """S3 buckets block public access with all four settings, on the bucket or the account."""
    for b in buckets:
        if "public_access_block" in b.read_errors:
            yield _unreadable(b, "public_access_block", "Block Public Access settings")
            continue
        config = b.public_access_block
        by_account = [f for f in PUBLIC_ACCESS_FLAGS
                      if (b.account_public_access_block or {}).get(f, False)]
        off = [f for f in PUBLIC_ACCESS_FLAGS
               if not (config or {}).get(f, False) and f not in by_account]
        if off and config is None and not by_account:
            title = f"Bucket {b.name} has no Block Public Access configuration"
        elif off:
            title = f"Bucket {b.name} does not block public access: {', '.join(off)} off"
        elif len(by_account) == len(PUBLIC_ACCESS_FLAGS):
            title = f"Bucket {b.name} blocks all public access (the account blocks it)"
        else:
            title = f"Bucket {b.name} blocks all public access"
        yield Result.of(b.arn, passing=not off, title=title,
                        data={"bucket": b.name, "region": b.region, "public_access_block": config,
                              "account_public_access_block": b.account_public_access_block,
                              **({"account_public_access_block_error":
                                  b.read_errors["account_public_access_block"]}
                                 if "account_public_access_block" in b.read_errors else {})})


@check(id="aws.s3.bucket_versioning", severity=Severity.MEDIUM,
       resource_type="aws.s3.bucket", needs=collect_buckets,
       remediation="Enable versioning on the bucket (Properties > Bucket Versioning), e.g. "
                   "`aws s3api put-bucket-versioning --bucket NAME --versioning-configuration "
                   "Status=Enabled`, and add a lifecycle rule expiring noncurrent versions.")
def bucket_versioning(buckets: list[Bucket]) -> Iterator[Result]:
    """S3 buckets keep object versions so overwritten or deleted data can be recovered."""
    for b in buckets:
        if "versioning" in b.read_errors:
            yield _unreadable(b, "versioning", "versioning state")
            continue
        status = b.versioning.get("Status")
        if status == "Enabled":
            title = f"Bucket {b.name} has versioning enabled"
        elif status == "Suspended":
            title = f"Bucket {b.name} has versioning suspended"
        else:
            title = f"Bucket {b.name} has never had versioning enabled"
        yield Result.of(b.arn, passing=status == "Enabled", title=title,
                        data={"bucket": b.name, "region": b.region, "versioning": b.versioning})


def _denies_plain_http(condition: Mapping[str, Any]) -> bool:
    """Whether a condition block matches requests sent without TLS (SecureTransport false)."""
    for operator in ("Bool", "BoolIfExists"):
        for key, value in (condition.get(operator) or {}).items():
            if key.lower() == "aws:securetransport" and any(
                    str(v).lower() == "false" for v in as_list(value)):
                return True
    return False


def tls_only_statements(policy: Mapping[str, Any] | None, bucket_arn: str) -> list[dict[str, Any]]:
    """The statements that deny every S3 action on the bucket's objects to anyone without TLS."""
    if not policy:
        return []
    found = []
    for statement in statements(policy):
        if statement.get("Effect") != "Deny":
            continue
        actions = {str(a).lower() for a in as_list(statement.get("Action"))}
        resources = [str(r) for r in as_list(statement.get("Resource"))]
        if (is_everyone(statement.get("Principal"))
                and actions & {"s3:*", "*"}
                and any(fnmatchcase(f"{bucket_arn}/any-object", r) for r in resources)
                and _denies_plain_http(statement.get("Condition") or {})):
            found.append(statement)
    return found


@check(id="aws.s3.bucket_tls_only", severity=Severity.MEDIUM,
       resource_type="aws.s3.bucket", needs=collect_buckets,
       benchmarks={"cis_aws": ["2.1.1"]},
       remediation="Add a bucket policy statement denying every request sent without TLS: "
                   "{\"Sid\": \"DenyInsecureTransport\", \"Effect\": \"Deny\", "
                   "\"Principal\": \"*\", \"Action\": \"s3:*\", \"Resource\": "
                   "[\"arn:aws:s3:::NAME\", \"arn:aws:s3:::NAME/*\"], \"Condition\": "
                   "{\"Bool\": {\"aws:SecureTransport\": \"false\"}}}.")
def bucket_tls_only(buckets: list[Bucket]) -> Iterator[Result]:
    """S3 bucket policies deny requests that do not use TLS (aws:SecureTransport false)."""
    for b in buckets:
        if "policy" in b.read_errors:
            yield _unreadable(b, "policy", "bucket policy")
            continue
        denying = tls_only_statements(b.policy, b.arn)
        if denying:
            title = f"Bucket {b.name} denies requests without TLS"
        elif b.policy is None:
            title = f"Bucket {b.name} has no bucket policy, so it accepts plain HTTP requests"
        else:
            title = f"Bucket {b.name}'s policy does not deny requests without TLS"
        yield Result.of(b.arn, passing=bool(denying), title=title,
                        data={"bucket": b.name, "region": b.region, "policy": b.policy,
                              "tls_statements": denying})


@check(id="aws.s3.bucket_mfa_delete", severity=Severity.MEDIUM,
       resource_type="aws.s3.bucket", needs=collect_buckets,
       benchmarks={"cis_aws": ["2.1.2"]},
       remediation="As the root user with its MFA device, enable versioning with MFA delete: "
                   "`aws s3api put-bucket-versioning --bucket NAME --versioning-configuration "
                   "Status=Enabled,MFADelete=Enabled --mfa 'arn:aws:iam::ACCOUNT:mfa/"
                   "root-account-mfa-device CODE'`.")
def bucket_mfa_delete(buckets: list[Bucket]) -> Iterator[Result]:
    """S3 buckets require MFA to delete object versions or suspend versioning (MFA delete)."""
    for b in buckets:
        if "versioning" in b.read_errors:
            yield _unreadable(b, "versioning", "versioning state")
            continue
        enabled = b.versioning.get("MFADelete") == "Enabled"
        title = (f"Bucket {b.name} has MFA delete enabled" if enabled
                 else f"Bucket {b.name} does not require MFA to delete versions")
        yield Result.of(b.arn, passing=enabled, title=title,
                        data={"bucket": b.name, "region": b.region, "versioning": b.versioning})
