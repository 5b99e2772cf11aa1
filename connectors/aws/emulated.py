"""A realistic emulated AWS estate for the demo and the tests, seeded into moto's server.

`seed_estate` creates the resources of a small company ("acme") through boto3, half of them
compliant, and returns the verdict every check should reach on each resource. The verdicts come
from the seeding specification below, not from the connector, so the tests compare two
independent answers.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from connectors.aws.emulated_cis import seed_cis
from connectors.base import Status

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - AWS's documented example key
ACCOUNT_ALIAS = "acme-prod"
PASSING, FAILING, NOT_APPLICABLE = (Status.PASSING.value, Status.FAILING.value,
                                    Status.NOT_APPLICABLE.value)

DB_PASSWORD = "Emulated-Db-Passw0rd"  # noqa: S105 - the emulator's throwaway databases
CONSOLE_PASSWORD = "Emulated-Console-Passw0rd!"  # noqa: S105 - the emulator's throwaway users
ALL_BLOCKED = (True, True, True, True)
DENY_HTTP, BUCKET_ARN_ONLY = "deny-http", "bucket-arn-only"  # bucket TLS policy shapes
STALE_DAYS = 90  # both the key-age and the unused-credential checks draw the line here


@dataclass(frozen=True)
class _Bucket:
    name: str
    region: int  # index into the estate's regions
    encryption: str | None  # SSE algorithm, None for no default encryption
    versioning: str | None  # "Enabled", "Suspended", None for never configured
    public_access_block: tuple[bool, bool, bool, bool] | None
    tls_policy: str | None = None  # DENY_HTTP, BUCKET_ARN_ONLY, or no bucket policy


@dataclass(frozen=True)
class _User:
    name: str
    console_password: bool
    mfa: bool
    access_key: bool
    age_days: int = 0  # when the user (and its console password) was created
    key_age_days: int = 0  # when its first access key was created
    key_used_days: int | None = None  # None: the key was never used
    password_used_days: int | None = None  # None: the console password was never used
    second_key: bool = False  # a second active key, created today and never used


@dataclass(frozen=True)
class _Group:
    name: str
    region: int
    description: str
    ingress: tuple[dict[str, Any], ...]
    opens_admin_port: bool  # what the check must conclude


@dataclass(frozen=True)
class _Database:
    identifier: str
    region: int
    engine: str
    encrypted: bool
    public: bool
    backup_days: int
    auto_minor_upgrade: bool


BUCKETS = (
    _Bucket("acme-prod-logs", 0, "aws:kms", "Enabled", ALL_BLOCKED, DENY_HTTP),
    _Bucket("acme-cloudtrail-logs", 0, "AES256", "Enabled", ALL_BLOCKED, DENY_HTTP),
    _Bucket("acme-prod-backups", 0, "aws:kms", "Enabled", ALL_BLOCKED, DENY_HTTP),
    _Bucket("acme-terraform-state", 0, "aws:kms", "Enabled", ALL_BLOCKED, BUCKET_ARN_ONLY),
    _Bucket("acme-customer-uploads", 0, "AES256", None, ALL_BLOCKED),
    _Bucket("acme-marketing-site", 0, None, None, (True, True, False, False)),
    _Bucket("acme-data-lake-raw", 0, "aws:kms", "Suspended", ALL_BLOCKED),
    _Bucket("acme-ml-training-data", 0, None, "Enabled", None),
    _Bucket("acme-eu-customer-data", 1, "aws:kms", "Enabled", ALL_BLOCKED, DENY_HTTP),
    _Bucket("acme-eu-static-assets", 1, "AES256", None, (True, True, True, False)),
    _Bucket("acme-eu-analytics-exports", 1, None, None, None),
    _Bucket("acme-dev-scratch", 1, None, "Suspended", None),
)
TRAIL_BUCKET = "acme-cloudtrail-logs"

# Ages in days before seeding; they take effect where moto's server runs in this process.
USERS = (
    _User("alice.nguyen", console_password=True, mfa=True, access_key=False,
          age_days=400, password_used_days=2),
    _User("bob.martinez", console_password=True, mfa=False, access_key=True,
          age_days=300, key_age_days=300, key_used_days=5, password_used_days=10),
    _User("carol.smith", console_password=True, mfa=True, access_key=False, age_days=200),
    _User("dave.okafor", console_password=True, mfa=False, access_key=False, age_days=20),
    _User("erin.kowalski", console_password=True, mfa=True, access_key=True,
          age_days=120, key_age_days=30, key_used_days=1, password_used_days=100),
    _User("frank.li", console_password=True, mfa=True, access_key=False),
    _User("grace.hopper", console_password=True, mfa=False, access_key=False,
          age_days=95, password_used_days=91),
    _User("ci-deployer", console_password=False, mfa=False, access_key=True,
          age_days=500, key_age_days=500, key_used_days=0, second_key=True),
    _User("terraform-automation", console_password=False, mfa=False, access_key=True,
          age_days=60, key_age_days=60),
    _User("backup-agent", console_password=False, mfa=True, access_key=True,
          age_days=365, key_age_days=200),
)

# A weak policy: short, no symbols, never expires, little reuse prevention.
PASSWORD_POLICY = {"MinimumPasswordLength": 8, "RequireUppercaseCharacters": True,
                   "RequireLowercaseCharacters": True, "RequireNumbers": True,
                   "RequireSymbols": False, "PasswordReusePrevention": 5}


def _tcp(port: int, *cidrs: str, to_port: int | None = None) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": to_port or port,
            "IpRanges": [{"CidrIp": c} for c in cidrs if ":" not in c],
            "Ipv6Ranges": [{"CidrIpv6": c} for c in cidrs if ":" in c]}


GROUPS = (
    _Group("web-alb", 0, "Public load balancer", (_tcp(443, "0.0.0.0/0", "::/0"),
                                                  _tcp(80, "0.0.0.0/0")), False),
    _Group("bastion-ssh", 0, "Bastion host", (_tcp(22, "0.0.0.0/0"),), True),
    _Group("app-servers", 0, "Application tier", (), False),  # ingress from web-alb, below
    _Group("windows-jump", 0, "Windows jump box", (_tcp(3389, "0.0.0.0/0"),), True),
    _Group("db-postgres", 0, "Postgres from the VPC", (_tcp(5432, "10.0.0.0/16"),), False),
    _Group("legacy-allow-all", 1, "Legacy, to be removed",
           ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},), True),
    _Group("ops-ssh-vpn", 1, "SSH from the office VPN", (_tcp(22, "203.0.113.0/24"),), False),
    _Group("eu-debug-ports", 1, "Debugging, low ports", (_tcp(0, "::/0", to_port=1024),), True),
    _Group("eu-web", 1, "Public web", (_tcp(443, "0.0.0.0/0", "::/0"),), False),
)

DATABASES = (
    _Database("acme-prod-orders", 0, "postgres", encrypted=True, public=False, backup_days=14,
              auto_minor_upgrade=True),
    _Database("acme-analytics", 0, "mysql", encrypted=False, public=True, backup_days=1,
              auto_minor_upgrade=False),
    _Database("acme-eu-customers", 1, "postgres", encrypted=True, public=False, backup_days=7,
              auto_minor_upgrade=True),
    _Database("acme-eu-reporting", 1, "mysql", encrypted=False, public=True, backup_days=0,
              auto_minor_upgrade=True),
)



def _statement(effect: str, action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


@dataclass(frozen=True)
class _Policy:
    name: str
    statements: tuple[dict[str, Any], ...]
    full_admin: bool  # what the check must conclude
    attach_to_group: str | None = None


POLICIES = (
    _Policy("acme-break-glass-admin", (_statement("Allow", "*", "*"),), True, "break-glass"),
    _Policy("acme-ci-deploy", (_statement("Allow", ["s3:PutObject", "s3:DeleteObject"],
                                          "arn:aws:s3:::acme-marketing-site/*"),
                               _statement("Allow", "cloudfront:CreateInvalidation", "*")), False),
    _Policy("acme-legacy-ops", (_statement("Allow", ["ec2:Describe*"], "*"),
                                _statement("Allow", ["*:*"], ["*"], Condition={
                                    "IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})), True),
    _Policy("acme-ec2-operators", (_statement("Allow", "ec2:*", "*"),), False, "operators"),
    _Policy("acme-deny-outside-eu", (_statement("Deny", "*", "*", Condition={
        "StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}}),), False),
)


@dataclass(frozen=True)
class _Key:
    alias: str
    region: int
    rotation: bool
    spec: str = "SYMMETRIC_DEFAULT"
    disabled: bool = False

    @property
    def judged(self) -> bool:
        """Rotation applies to enabled symmetric keys; the others are not applicable."""
        return self.spec == "SYMMETRIC_DEFAULT" and not self.disabled


KEYS = (
    _Key("acme-cloudtrail", 0, rotation=True),
    _Key("acme-app-secrets", 0, rotation=False),
    _Key("acme-code-signing", 0, rotation=False, spec="RSA_2048"),
    _Key("acme-eu-data", 1, rotation=True),
    _Key("acme-eu-retired", 1, rotation=False, disabled=True),
)
TRAIL_KEY = "acme-cloudtrail"


@dataclass(frozen=True)
class _Vpc:
    name: str | None  # None: the region's default VPC
    region: int
    cidr: str | None
    flow_log_traffic: str | None  # ALL, REJECT, ACCEPT, or no flow log


VPCS = (
    _Vpc(None, 0, None, "ALL"),
    _Vpc("acme-prod-vpc", 0, "10.20.0.0/16", "REJECT"),
    _Vpc("acme-staging-vpc", 0, "10.30.0.0/16", "ACCEPT"),
    _Vpc(None, 1, None, None),
    _Vpc("acme-eu-vpc", 1, "10.40.0.0/16", "ALL"),
)


@dataclass(frozen=True)
class _Instance:
    name: str
    region: int
    http_tokens: str
    http_endpoint: str = "enabled"


INSTANCES = (
    _Instance("acme-web-1", 0, "required"),
    _Instance("acme-legacy-batch", 0, "optional"),
    _Instance("acme-eu-worker", 1, "optional", http_endpoint="disabled"),
    _Instance("acme-eu-jumpbox", 1, "optional"),
)


@dataclass(frozen=True)
class _Listener:
    protocol: str
    port: int
    redirect_to_https: bool = False
    expected: str = PASSING


@dataclass(frozen=True)
class _LoadBalancer:
    name: str
    region: int
    kind: str  # application, network
    scheme: str
    listeners: tuple[_Listener, ...]


LOAD_BALANCERS = (
    _LoadBalancer("acme-web-alb", 0, "application", "internet-facing", (
        _Listener("HTTPS", 443), _Listener("HTTP", 80, redirect_to_https=True))),
    _LoadBalancer("acme-internal-api", 0, "application", "internal", (
        _Listener("HTTP", 8080, expected=FAILING),)),
    _LoadBalancer("acme-mqtt-nlb", 0, "network", "internet-facing", (
        _Listener("TLS", 8883), _Listener("TCP", 1883, expected=NOT_APPLICABLE))),
    _LoadBalancer("acme-eu-web", 1, "application", "internet-facing", (
        _Listener("HTTP", 80, expected=FAILING),)),
)


@dataclass(frozen=True)
class _Function:
    name: str
    region: int
    url_auth: str | None  # NONE (public), AWS_IAM, or no function URL


FUNCTIONS = (
    _Function("acme-thumbnailer", 0, "NONE"),
    _Function("acme-webhook-receiver", 0, "AWS_IAM"),
    _Function("acme-nightly-report", 0, None),
    _Function("acme-eu-gdpr-export", 1, "NONE"),
)
LAMBDA_ROLE = "acme-lambda-exec"

@dataclass(frozen=True)
class Estate:
    """What was seeded, and the verdict each check must reach: check id → {resource: status}."""

    endpoint_url: str
    regions: tuple[str, ...]
    account_id: str
    account_alias: str
    resources: int
    expected: dict[str, dict[str, str]]

    def credentials(self) -> dict[str, Any]:
        """Raw connection credentials reaching this estate (as a client would send them)."""
        return {"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
                "regions": list(self.regions), "endpoint_url": self.endpoint_url}


class _Seeder:
    """boto3 clients on the emulator, one per (service, region)."""

    def __init__(self, endpoint_url: str, regions: Sequence[str]) -> None:
        self.endpoint_url = endpoint_url
        self.regions = tuple(regions)
        self._session = boto3.Session(aws_access_key_id=ACCESS_KEY_ID,
                                      aws_secret_access_key=SECRET_ACCESS_KEY)
        self._clients: dict[tuple[str, str], Any] = {}

    def region(self, index: int) -> str:
        return self.regions[index % len(self.regions)]

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.regions[0])
        if key not in self._clients:
            self._clients[key] = self._session.client(
                service, region_name=key[1], endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 2}))
        return self._clients[key]


def seed_estate(endpoint_url: str, regions: Sequence[str] = ("us-east-1", "eu-west-1")) -> Estate:
    """Create the acme estate in moto's server at endpoint_url; return the expected verdicts."""
    if not regions:
        raise ValueError("seed_estate needs at least one region")
    seeder = _Seeder(endpoint_url, regions)
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
    resources += _seed_network(seeder, account_id, expected)  # before groups: VPCs bring one
    resources += _seed_security_groups(seeder, account_id, expected)
    resources += _seed_instances(seeder, account_id, expected)
    resources += _seed_databases(seeder, account_id, expected)
    resources += _seed_load_balancers(seeder, expected)
    resources += _seed_functions(seeder, expected)
    aged = _moto_iam_backend(seeder, account_id) is not None
    resources += seed_cis(seeder, account_id, expected, USERS, aged)  # last: reads back the above
    return Estate(endpoint_url=endpoint_url, regions=seeder.regions, account_id=account_id,
                  account_alias=ACCOUNT_ALIAS, resources=resources, expected=expected)


def _seed_buckets(seeder: _Seeder, expected: dict[str, dict[str, str]]) -> int:
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


def _bucket_policy(spec: _Bucket, arn: str) -> dict[str, Any]:
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


def _seed_iam(seeder: _Seeder, account_id: str, expected: dict[str, dict[str, str]]) -> int:
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
        console[arn] = (NOT_APPLICABLE if not spec.console_password
                        else PASSING if spec.mfa else FAILING)
    expected["aws.iam.console_users_mfa"] = console
    root = f"arn:aws:iam::{account_id}:root"
    expected["aws.iam.password_policy_strength"] = {root: FAILING}  # PASSWORD_POLICY is weak
    # moto has no way to give the root user an MFA device: AccountMFAEnabled is always 0.
    expected["aws.iam.root_account_mfa"] = {root: FAILING}
    aged = _age_credentials(seeder, account_id)
    rotation, unused, single = {}, {}, {}
    for spec in USERS:
        arn = f"arn:aws:iam::{account_id}:user/{spec.name}"
        rotation[arn], unused[arn], single[arn] = _credential_verdicts(spec, aged)
    expected["aws.iam.access_key_rotation"] = rotation
    expected["aws.iam.unused_credentials"] = unused
    expected["aws.iam.single_active_access_key"] = single
    return created


def _moto_iam_backend(seeder: _Seeder, account_id: str) -> Any | None:
    """moto's IAM backend when its server runs in this process (tests, demo, bench), else None."""
    try:
        from moto.iam.models import iam_backends
    except ImportError:  # pragma: no cover - moto is installed wherever the estate is seeded
        return None
    partition = seeder.client("sts").meta.partition
    backend = iam_backends[account_id][partition]
    return backend if all(spec.name in backend.users for spec in USERS) else None


def _age_credentials(seeder: _Seeder, account_id: str) -> bool:
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


def _credential_verdicts(spec: _User, aged: bool) -> tuple[str, str, str]:
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
    rotation = (NOT_APPLICABLE if not spec.access_key
                else FAILING if key_age > STALE_DAYS else PASSING)
    unused = (NOT_APPLICABLE if not idle
              else FAILING if max(idle) >= STALE_DAYS else PASSING)
    single = (NOT_APPLICABLE if not spec.access_key
              else FAILING if spec.second_key else PASSING)
    return rotation, unused, single


def _seed_policies(seeder: _Seeder, account_id: str,
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


def _seed_keys(seeder: _Seeder,
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


def _seed_trails(seeder: _Seeder, root: str, key_arn: str,
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


def _seed_guardduty(seeder: _Seeder, account_id: str,
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


def _seed_config(seeder: _Seeder, account_id: str,
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


def _seed_ebs(seeder: _Seeder, account_id: str, expected: dict[str, dict[str, str]]) -> int:
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


def _default_vpc(seeder: _Seeder, region: str) -> str:
    vpcs = seeder.client("ec2", region).describe_vpcs(
        Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return str(vpcs[0]["VpcId"])


def _seed_network(seeder: _Seeder, account_id: str,
                  expected: dict[str, dict[str, str]]) -> int:
    """VPCs with and without flow logs; every region's default VPC is judged too."""
    verdicts = {}
    created = 0
    defaults = {region: _default_vpc(seeder, region) for region in seeder.regions}
    for spec in VPCS:
        if spec.name is None and spec.region >= len(seeder.regions):
            continue  # fewer regions than the spec: that default VPC is the first region's
        region = seeder.region(spec.region)
        ec2 = seeder.client("ec2", region)
        if spec.name is None:
            vpc_id = defaults[region]
        else:
            vpc_id = ec2.create_vpc(CidrBlock=spec.cidr, TagSpecifications=[{
                "ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": spec.name}]}],
            )["Vpc"]["VpcId"]
            created += 1
        if spec.flow_log_traffic is not None:
            answer = ec2.create_flow_logs(
                ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=spec.flow_log_traffic,
                LogDestinationType="s3", LogDestination="arn:aws:s3:::acme-prod-logs")
            if answer.get("Unsuccessful"):
                raise RuntimeError(f"moto refused the flow log: {answer['Unsuccessful']}")
        verdicts[f"arn:aws:ec2:{region}:{account_id}:vpc/{vpc_id}"] = (
            PASSING if spec.flow_log_traffic in ("ALL", "REJECT") else FAILING)
    for region, vpc_id in defaults.items():
        verdicts.setdefault(f"arn:aws:ec2:{region}:{account_id}:vpc/{vpc_id}", FAILING)
    expected["aws.ec2.vpc_flow_logs"] = verdicts
    return created


def _seed_security_groups(seeder: _Seeder, account_id: str,
                          expected: dict[str, dict[str, str]]) -> int:
    verdicts: dict[str, str] = {}
    ids: dict[str, str] = {}
    for spec in GROUPS:
        region = seeder.region(spec.region)
        ec2 = seeder.client("ec2", region)
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
        group = ec2.create_security_group(GroupName=spec.name, Description=spec.description,
                                          VpcId=vpc["VpcId"])
        ids[spec.name] = group["GroupId"]
        if spec.ingress:
            ec2.authorize_security_group_ingress(GroupId=group["GroupId"],
                                                 IpPermissions=list(spec.ingress))
        if spec.name == "app-servers":
            ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                "UserIdGroupPairs": [{"GroupId": ids["web-alb"]}]}])
        arn = f"arn:aws:ec2:{region}:{account_id}:security-group/{group['GroupId']}"
        verdicts[arn] = FAILING if spec.opens_admin_port else PASSING
    # The default group of each region's default VPC exists too; moto gives it no ingress from
    # outside, so it passes. It is read back only to learn its id.
    for region in seeder.regions:
        defaults = seeder.client("ec2", region).describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        for group in defaults:
            if any(r.get("IpRanges") or r.get("Ipv6Ranges") for r in group["IpPermissions"]):
                raise RuntimeError(f"unexpected ingress in moto's default group {group}")
            arn = f"arn:aws:ec2:{region}:{account_id}:security-group/{group['GroupId']}"
            verdicts[arn] = PASSING
    expected["aws.ec2.security_group_admin_ports"] = verdicts
    return len(GROUPS)


# An Amazon Linux image moto serves in every region.
IMAGE_ID = "ami-12c6146b"


def _seed_instances(seeder: _Seeder, account_id: str,
                    expected: dict[str, dict[str, str]]) -> int:
    verdicts = {}
    for spec in INSTANCES:
        region = seeder.region(spec.region)
        instance = seeder.client("ec2", region).run_instances(
            ImageId=IMAGE_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1,
            MetadataOptions={"HttpTokens": spec.http_tokens, "HttpEndpoint": spec.http_endpoint},
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": spec.name}]}],
        )["Instances"][0]
        arn = f"arn:aws:ec2:{region}:{account_id}:instance/{instance['InstanceId']}"
        verdicts[arn] = (PASSING if spec.http_tokens == "required"
                         or spec.http_endpoint == "disabled" else FAILING)
    expected["aws.ec2.instance_imdsv2"] = verdicts
    return len(INSTANCES)


def _seed_databases(seeder: _Seeder, account_id: str,
                    expected: dict[str, dict[str, str]]) -> int:
    encrypted, private, backups, patched = {}, {}, {}, {}
    for spec in DATABASES:
        rds = seeder.client("rds", seeder.region(spec.region))
        rds.create_db_instance(
            DBInstanceIdentifier=spec.identifier, DBInstanceClass="db.t3.medium",
            Engine=spec.engine, AllocatedStorage=50, MasterUsername="acmeadmin",
            MasterUserPassword=DB_PASSWORD, StorageEncrypted=spec.encrypted,
            PubliclyAccessible=spec.public, BackupRetentionPeriod=spec.backup_days,
            AutoMinorVersionUpgrade=spec.auto_minor_upgrade,
            Tags=[{"Key": "team", "Value": "acme"}])
        arn = f"arn:aws:rds:{seeder.region(spec.region)}:{account_id}:db:{spec.identifier}"
        encrypted[arn] = PASSING if spec.encrypted else FAILING
        private[arn] = FAILING if spec.public else PASSING
        backups[arn] = PASSING if spec.backup_days >= 7 else FAILING
        patched[arn] = PASSING if spec.auto_minor_upgrade else FAILING
    expected["aws.rds.storage_encrypted"] = encrypted
    expected["aws.rds.not_publicly_accessible"] = private
    expected["aws.rds.automated_backups"] = backups
    expected["aws.rds.auto_minor_version_upgrade"] = patched
    return len(DATABASES)


def _seed_load_balancers(seeder: _Seeder, expected: dict[str, dict[str, str]]) -> int:
    verdicts = {}
    certificates: dict[str, str] = {}
    for spec in LOAD_BALANCERS:
        region = seeder.region(spec.region)
        elbv2 = seeder.client("elbv2", region)
        vpc_id = _default_vpc(seeder, region)
        subnets = seeder.client("ec2", region).describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        lb_arn = elbv2.create_load_balancer(
            Name=spec.name, Type=spec.kind, Scheme=spec.scheme,
            Subnets=[s["SubnetId"] for s in subnets[:2]])["LoadBalancers"][0]["LoadBalancerArn"]
        target = elbv2.create_target_group(
            Name=f"{spec.name}-tg", VpcId=vpc_id, Port=8080,
            Protocol="HTTP" if spec.kind == "application" else "TCP",
        )["TargetGroups"][0]["TargetGroupArn"]
        for listener in spec.listeners:
            create: dict[str, Any] = {
                "LoadBalancerArn": lb_arn, "Protocol": listener.protocol, "Port": listener.port,
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": target}]}
            if listener.redirect_to_https:
                create["DefaultActions"] = [{"Type": "redirect", "RedirectConfig": {
                    "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}]
            if listener.protocol in ("HTTPS", "TLS"):
                if region not in certificates:
                    certificates[region] = seeder.client("acm", region).request_certificate(
                        DomainName="acme.example.com", ValidationMethod="DNS",
                        SubjectAlternativeNames=["*.acme.example.com"])["CertificateArn"]
                create["Certificates"] = [{"CertificateArn": certificates[region]}]
                create["SslPolicy"] = "ELBSecurityPolicy-TLS13-1-2-2021-06"
            arn = elbv2.create_listener(**create)["Listeners"][0]["ListenerArn"]
            verdicts[arn] = listener.expected
    expected["aws.elbv2.https_listeners"] = verdicts
    return len(LOAD_BALANCERS) + sum(len(lb.listeners) for lb in LOAD_BALANCERS)


def _function_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
    return archive.getvalue()


def _seed_functions(seeder: _Seeder, expected: dict[str, dict[str, str]]) -> int:
    role = seeder.client("iam").create_role(
        RoleName=LAMBDA_ROLE, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = _function_zip()
    verdicts = {}
    for spec in FUNCTIONS:
        client = seeder.client("lambda", seeder.region(spec.region))
        arn = client.create_function(
            FunctionName=spec.name, Runtime="python3.12", Role=role, Handler="index.handler",
            Code={"ZipFile": code}, Tags={"team": "acme"})["FunctionArn"]
        if spec.url_auth is not None:
            client.create_function_url_config(FunctionName=spec.name, AuthType=spec.url_auth)
        verdicts[arn] = FAILING if spec.url_auth == "NONE" else PASSING
    expected["aws.lambda.function_url_auth"] = verdicts
    return len(FUNCTIONS) + 1
