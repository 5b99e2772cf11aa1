"""A realistic emulated AWS estate for the demo and the tests, seeded into moto's server.

`seed_estate` creates the resources of a small company ("acme") through boto3, half of them
compliant, and returns the verdict every check should reach on each resource. The verdicts come
from the seeding specification (`spec.py`), not from the connector, so the tests compare two
independent answers. Storage, identity, logging and keys are seeded here; the network and
compute in `compute.py`; what the CIS benchmark adds in `cis.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.aws.kit.cis import seed_cis
from connectors.aws.kit.compute import (
    seed_databases,
    seed_functions,
    seed_instances,
    seed_load_balancers,
    seed_network,
    seed_security_groups,
)
from connectors.aws.kit.spec import (
    ACCOUNT_ALIAS,
    ALL_BLOCKED,
    BUCKETS,
    CONSOLE_PASSWORD,
    DENY_HTTP,
    FAILING,
    KEYS,
    NOT_APPLICABLE,
    PASSING,
    PASSWORD_POLICY,
    POLICIES,
    STALE_DAYS,
    TRAIL_BUCKET,
    TRAIL_KEY,
    USERS,
    Bucket,
    Estate,
    Seeder,
    User,
)


def seed_estate(endpoint_url: str, regions: Sequence[str] = ("us-east-1", "eu-west-1")) -> Estate:
    """Create the acme estate in moto's server at endpoint_url; return the expected verdicts."""
    if not regions:
        raise ValueError("seed_estate needs at least one region")
    seeder = Seeder(endpoint_url, regions)
    account_id = seeder.client("sts").get_caller_identity()["Account"]
    root = f"arn:aws:iam::{account_id}:root"
    expected: dict[str, dict[str, str]] = {}
    resources = 0

    resources += _seed_buckets(seeder, expected)
    key_arns, created = _seed_keys(seeder, expected)
    resources += created
    resources += _seed_iam(seeder, account_id, expected)
    resources += _seed_policies(seeder, account_id, expected)
    resources += _seed_trails(seeder, root, key_arns[TRAIL_KEY], expected)
    resources += _seed_guardduty(seeder, account_id, expected)
    resources += _seed_config(seeder, account_id, expected)
    resources += _seed_ebs(seeder, account_id, expected)
    resources += seed_network(seeder, account_id, expected)  # before groups: VPCs bring one
    resources += seed_security_groups(seeder, account_id, expected)
    resources += seed_instances(seeder, account_id, expected)
    resources += seed_databases(seeder, account_id, expected)
    resources += seed_load_balancers(seeder, expected)
    resources += seed_functions(seeder, expected)
    aged = _moto_iam_backend(seeder, account_id) is not None
    resources += seed_cis(seeder, account_id, expected, USERS, aged)  # last: reads back the above
    return Estate(endpoint_url=endpoint_url, regions=seeder.regions, account_id=account_id,
                  account_alias=ACCOUNT_ALIAS, resources=resources, expected=expected)



def _seed_buckets(seeder: Seeder, expected: dict[str, dict[str, str]]) -> int:
    encryption: dict[str, str] = {}
    versioning: dict[str, str] = {}
    blocked: dict[str, str] = {}
    tls: dict[str, str] = {}
    for spec in BUCKETS:
        region = seeder.region(spec.region)
        s3 = seeder.client("s3", region)
        create: dict[str, Any] = {"Bucket": spec.name}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**create)
        if spec.encryption is None:
            # AWS applies SSE-S3 to new buckets; removing it makes the unencrypted case real.
            s3.delete_bucket_encryption(Bucket=spec.name)
        else:
            rule: dict[str, Any] = {"SSEAlgorithm": spec.encryption}
            if spec.encryption == "aws:kms":
                rule["KMSMasterKeyID"] = "alias/aws/s3"
            s3.put_bucket_encryption(
                Bucket=spec.name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]})
        if spec.versioning is not None:
            s3.put_bucket_versioning(Bucket=spec.name,
                                     VersioningConfiguration={"Status": "Enabled"})
            if spec.versioning == "Suspended":
                s3.put_bucket_versioning(Bucket=spec.name,
                                         VersioningConfiguration={"Status": "Suspended"})
        if spec.public_access_block is not None:
            s3.put_public_access_block(Bucket=spec.name, PublicAccessBlockConfiguration=dict(
                zip(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                     "RestrictPublicBuckets"), spec.public_access_block, strict=True)))
        arn = f"arn:aws:s3:::{spec.name}"
        if spec.tls_policy is not None:
            s3.put_bucket_policy(Bucket=spec.name, Policy=json.dumps(_bucket_policy(spec, arn)))
        encryption[arn] = PASSING if spec.encryption else FAILING
        versioning[arn] = PASSING if spec.versioning == "Enabled" else FAILING
        blocked[arn] = PASSING if spec.public_access_block == ALL_BLOCKED else FAILING
        tls[arn] = PASSING if spec.tls_policy == DENY_HTTP else FAILING
    expected["aws.s3.bucket_default_encryption"] = encryption
    expected["aws.s3.bucket_versioning"] = versioning
    expected["aws.s3.bucket_public_access_block"] = blocked
    expected["aws.s3.bucket_tls_only"] = tls
    return len(BUCKETS)


def _bucket_policy(spec: Bucket, arn: str) -> dict[str, Any]:
    """A deny-without-TLS statement; BUCKET_ARN_ONLY forgets the objects (a common slip)."""
    resources = [arn, f"{arn}/*"] if spec.tls_policy == DENY_HTTP else [arn]
    statements: list[dict[str, Any]] = [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": resources, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    if spec.name == TRAIL_BUCKET:
        statements.insert(0, {
            "Sid": "CloudTrailWrite", "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
            "Resource": f"{arn}/AWSLogs/*",
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}})
    return {"Version": "2012-10-17", "Statement": statements}


def _seed_iam(seeder: Seeder, account_id: str, expected: dict[str, dict[str, str]]) -> int:
    iam = seeder.client("iam")
    iam.create_account_alias(AccountAlias=ACCOUNT_ALIAS)
    iam.update_account_password_policy(**PASSWORD_POLICY)
    console: dict[str, str] = {}
    created = 2
    for spec in USERS:
        iam.create_user(UserName=spec.name, Tags=[{"Key": "team", "Value": "acme"}])
        created += 1
        if spec.console_password:
            iam.create_login_profile(UserName=spec.name, Password=CONSOLE_PASSWORD)
        if spec.access_key:
            for _ in range(2 if spec.second_key else 1):
                iam.create_access_key(UserName=spec.name)
                created += 1
        if spec.mfa:
            serial = iam.create_virtual_mfa_device(
                VirtualMFADeviceName=spec.name)["VirtualMFADevice"]["SerialNumber"]
            iam.enable_mfa_device(UserName=spec.name, SerialNumber=serial,
                                  AuthenticationCode1="123456", AuthenticationCode2="654321")
            created += 1
        arn = f"arn:aws:iam::{account_id}:user/{spec.name}"
        console[arn] = PASSING if spec.mfa or not spec.console_password else FAILING
    expected["aws.iam.console_users_mfa"] = console
    root = f"arn:aws:iam::{account_id}:root"
    expected["aws.iam.password_policy_strength"] = {root: FAILING}  # PASSWORD_POLICY is weak
    for check_id, holds in _password_properties(PASSWORD_POLICY).items():
        expected[f"aws.iam.password_policy_{check_id}"] = {root: PASSING if holds else FAILING}
    # moto has no way to give the root user an MFA device: AccountMFAEnabled is always 0.
    expected["aws.iam.root_account_mfa"] = {root: FAILING}
    aged = _age_credentials(seeder, account_id)
    # the root user has a row in the key checks (moto gives it no access key: both pass)
    rotation, unused, single = {root: PASSING}, {}, {root: PASSING}
    for spec in USERS:
        arn = f"arn:aws:iam::{account_id}:user/{spec.name}"
        rotation[arn], unused[arn], single[arn] = _credential_verdicts(spec, aged)
    expected["aws.iam.access_key_rotation"] = rotation
    expected["aws.iam.unused_credentials"] = unused
    expected["aws.iam.single_active_access_key"] = single
    return created


def _password_properties(policy: dict[str, Any]) -> dict[str, bool]:
    """Which properties the seeded policy holds (CIS 1.8 and 1.9, the classes, expiry)."""
    return {"min_length": policy.get("MinimumPasswordLength", 0) >= 14,
            "reuse_prevention": policy.get("PasswordReusePrevention", 0) >= 24,
            "uppercase": bool(policy.get("RequireUppercaseCharacters")),
            "lowercase": bool(policy.get("RequireLowercaseCharacters")),
            "number": bool(policy.get("RequireNumbers")),
            "symbol": bool(policy.get("RequireSymbols")),
            "expiry": 0 < policy.get("MaxPasswordAge", 0) <= 90}


def _moto_iam_backend(seeder: Seeder, account_id: str) -> Any | None:
    """moto's IAM backend when its server runs in this process (tests, demo, bench), else None."""
    try:
        from moto.iam.models import iam_backends
    except ImportError:  # pragma: no cover - moto is installed wherever the estate is seeded
        return None
    partition = seeder.client("sts").meta.partition
    backend = iam_backends[account_id][partition]
    return backend if all(spec.name in backend.users for spec in USERS) else None


def _age_credentials(seeder: Seeder, account_id: str) -> bool:
    """Back-date users, keys and their last use by each spec's days; False where impossible.

    moto's API has no way to say when a user or key was created or last used, so the estate
    writes those dates into moto's in-process backend (the connector still reads them through
    the credential report over HTTP). A moto server in another process keeps today's dates, and
    the expected verdicts follow what was really seeded.
    """
    backend = _moto_iam_backend(seeder, account_id)
    if backend is None:
        return False
    from moto.iam.models import AccessKeyLastUsed

    now = datetime.now(UTC).replace(tzinfo=None)  # moto keeps naive UTC datetimes
    for spec in USERS:
        user = backend.users[spec.name]
        user.create_date = now - timedelta(days=spec.age_days)
        if spec.password_used_days is not None:
            user.password_last_used = now - timedelta(days=spec.password_used_days)
        if spec.access_key:
            first = user.access_keys[0]
            first.create_date = now - timedelta(days=spec.key_age_days)
            if spec.key_used_days is not None:
                first.last_used = AccessKeyLastUsed(
                    timestamp=now - timedelta(days=spec.key_used_days), service="s3",
                    region=seeder.regions[0])
    return True


def _credential_verdicts(spec: User, aged: bool) -> tuple[str, str, str]:
    """Key rotation, unused credentials and single key verdicts, from the spec's days."""
    def days(value: int | None) -> int | None:
        return value if aged else None  # without back-dating, everything happened today

    user_age, key_age = days(spec.age_days) or 0, days(spec.key_age_days) or 0
    password_used, key_used = days(spec.password_used_days), days(spec.key_used_days)
    idle: list[int] = []
    if spec.console_password:
        idle.append(password_used if password_used is not None else user_age)
    if spec.access_key:
        idle.append(key_used if key_used is not None else key_age)
        if spec.second_key:
            idle.append(0)  # created today, never used
    # users without the credential pass, as Prowler reports them
    rotation = FAILING if spec.access_key and key_age > STALE_DAYS else PASSING
    unused = FAILING if idle and max(idle) >= STALE_DAYS else PASSING
    single = FAILING if spec.access_key and spec.second_key else PASSING
    return rotation, unused, single


def _seed_policies(seeder: Seeder, account_id: str,
                   expected: dict[str, dict[str, str]]) -> int:
    iam = seeder.client("iam")
    verdicts = {}
    groups: set[str] = set()
    for spec in POLICIES:
        document = {"Version": "2012-10-17", "Statement": list(spec.statements)}
        arn = iam.create_policy(PolicyName=spec.name, PolicyDocument=json.dumps(document),
                                Description=f"acme {spec.name}")["Policy"]["Arn"]
        if spec.attach_to_group is not None:
            if spec.attach_to_group not in groups:
                iam.create_group(GroupName=spec.attach_to_group)
                groups.add(spec.attach_to_group)
            iam.attach_group_policy(GroupName=spec.attach_to_group, PolicyArn=arn)
        verdicts[f"arn:aws:iam::{account_id}:policy/{spec.name}"] = (
            FAILING if spec.full_admin else PASSING)
    expected["aws.iam.no_full_admin_policies"] = verdicts
    return len(POLICIES) + len(groups)


def _seed_keys(seeder: Seeder,
               expected: dict[str, dict[str, str]]) -> tuple[dict[str, str], int]:
    """Customer-managed KMS keys; returns their ARNs by alias."""
    arns, verdicts = {}, {}
    for spec in KEYS:
        kms = seeder.client("kms", seeder.region(spec.region))
        usage = "ENCRYPT_DECRYPT" if spec.spec == "SYMMETRIC_DEFAULT" else "SIGN_VERIFY"
        meta = kms.create_key(Description=spec.alias, KeySpec=spec.spec, KeyUsage=usage,
                              Tags=[{"TagKey": "team", "TagValue": "acme"}])["KeyMetadata"]
        kms.create_alias(AliasName=f"alias/{spec.alias}", TargetKeyId=meta["KeyId"])
        if spec.rotation:
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        if spec.disabled:
            kms.disable_key(KeyId=meta["KeyId"])
        arns[spec.alias] = meta["Arn"]
        verdicts[meta["Arn"]] = (NOT_APPLICABLE if not spec.judged
                                 else PASSING if spec.rotation else FAILING)
    expected["aws.kms.key_rotation"] = verdicts
    return arns, len(KEYS)


def _seed_trails(seeder: Seeder, root: str, key_arn: str,
                 expected: dict[str, dict[str, str]]) -> int:
    home = seeder.client("cloudtrail", seeder.region(0))
    org = home.create_trail(Name="acme-org-trail", S3BucketName=TRAIL_BUCKET,
                            IsMultiRegionTrail=True, EnableLogFileValidation=True,
                            IncludeGlobalServiceEvents=True, KmsKeyId=key_arn)["TrailARN"]
    home.start_logging(Name="acme-org-trail")
    # A stopped single-region trail left over from a proof of concept: no validation, no KMS.
    other = seeder.client("cloudtrail", seeder.region(1))
    poc = other.create_trail(Name="acme-poc-trail", S3BucketName=TRAIL_BUCKET,
                             IsMultiRegionTrail=False)["TrailARN"]
    expected["aws.cloudtrail.multi_region_trail"] = {root: PASSING}
    expected["aws.cloudtrail.log_file_validation"] = {org: PASSING, poc: FAILING}
    expected["aws.cloudtrail.kms_encryption"] = {org: PASSING, poc: FAILING}
    return 2


def _region_id(account_id: str, region: str) -> str:
    return f"aws:account:{account_id}:region:{region}"


def _seed_guardduty(seeder: Seeder, account_id: str,
                    expected: dict[str, dict[str, str]]) -> int:
    """Enabled in the first region, suspended in the second, never set up elsewhere."""
    verdicts = {}
    for index, region in enumerate(seeder.regions):
        if index < 2:
            seeder.client("guardduty", region).create_detector(
                Enable=index == 0, FindingPublishingFrequency="FIFTEEN_MINUTES")
        verdicts[_region_id(account_id, region)] = PASSING if index == 0 else FAILING
    expected["aws.guardduty.enabled"] = verdicts
    return min(2, len(seeder.regions))


def _seed_config(seeder: Seeder, account_id: str,
                 expected: dict[str, dict[str, str]]) -> int:
    """Recording everything in the first region; a recorder never started in the second."""
    verdicts = {}
    for index, region in enumerate(seeder.regions):
        if index < 2:
            config = seeder.client("config", region)
            config.put_configuration_recorder(ConfigurationRecorder={
                "name": "default", "roleARN": f"arn:aws:iam::{account_id}:role/aws-config",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
            if index == 0:
                config.put_delivery_channel(DeliveryChannel={
                    "name": "default", "s3BucketName": "acme-prod-logs"})
                config.start_configuration_recorder(ConfigurationRecorderName="default")
        verdicts[_region_id(account_id, region)] = PASSING if index == 0 else FAILING
    expected["aws.config.recorder_enabled"] = verdicts
    return min(2, len(seeder.regions))


def _seed_ebs(seeder: Seeder, account_id: str, expected: dict[str, dict[str, str]]) -> int:
    verdicts = {}
    for index, region in enumerate(seeder.regions):
        ec2 = seeder.client("ec2", region)
        if index == 0:
            ec2.enable_ebs_encryption_by_default()
        else:
            ec2.disable_ebs_encryption_by_default()
        verdicts[f"aws:account:{account_id}:region:{region}"] = PASSING if index == 0 else FAILING
    expected["aws.ec2.ebs_encryption_by_default"] = verdicts
    return len(seeder.regions)

