"""A realistic emulated AWS estate for the demo and the tests, seeded into moto's server.

`seed_estate` creates the resources of a small company ("acme") through boto3, half of them
compliant, and returns the verdict every check should reach on each resource. The verdicts come
from the seeding specification below, not from the connector, so the tests compare two
independent answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from connectors.base import Status

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - AWS's documented example key
ACCOUNT_ALIAS = "acme-prod"
PASSING, FAILING, NOT_APPLICABLE = (Status.PASSING.value, Status.FAILING.value,
                                    Status.NOT_APPLICABLE.value)

DB_PASSWORD = "Emulated-Db-Passw0rd"  # noqa: S105 - the emulator's throwaway databases
CONSOLE_PASSWORD = "Emulated-Console-Passw0rd!"  # noqa: S105 - the emulator's throwaway users
ALL_BLOCKED = (True, True, True, True)


@dataclass(frozen=True)
class _Bucket:
    name: str
    region: int  # index into the estate's regions
    encryption: str | None  # SSE algorithm, None for no default encryption
    versioning: str | None  # "Enabled", "Suspended", None for never configured
    public_access_block: tuple[bool, bool, bool, bool] | None


@dataclass(frozen=True)
class _User:
    name: str
    console_password: bool
    mfa: bool
    access_key: bool


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


BUCKETS = (
    _Bucket("acme-prod-logs", 0, "aws:kms", "Enabled", ALL_BLOCKED),
    _Bucket("acme-cloudtrail-logs", 0, "AES256", "Enabled", ALL_BLOCKED),
    _Bucket("acme-prod-backups", 0, "aws:kms", "Enabled", ALL_BLOCKED),
    _Bucket("acme-terraform-state", 0, "aws:kms", "Enabled", ALL_BLOCKED),
    _Bucket("acme-customer-uploads", 0, "AES256", None, ALL_BLOCKED),
    _Bucket("acme-marketing-site", 0, None, None, (True, True, False, False)),
    _Bucket("acme-data-lake-raw", 0, "aws:kms", "Suspended", ALL_BLOCKED),
    _Bucket("acme-ml-training-data", 0, None, "Enabled", None),
    _Bucket("acme-eu-customer-data", 1, "aws:kms", "Enabled", ALL_BLOCKED),
    _Bucket("acme-eu-static-assets", 1, "AES256", None, (True, True, True, False)),
    _Bucket("acme-eu-analytics-exports", 1, None, None, None),
    _Bucket("acme-dev-scratch", 1, None, "Suspended", None),
)
TRAIL_BUCKET = "acme-cloudtrail-logs"

USERS = (
    _User("alice.nguyen", console_password=True, mfa=True, access_key=False),
    _User("bob.martinez", console_password=True, mfa=False, access_key=True),
    _User("carol.smith", console_password=True, mfa=True, access_key=False),
    _User("dave.okafor", console_password=True, mfa=False, access_key=False),
    _User("erin.kowalski", console_password=True, mfa=True, access_key=True),
    _User("frank.li", console_password=True, mfa=True, access_key=False),
    _User("grace.hopper", console_password=True, mfa=False, access_key=False),
    _User("ci-deployer", console_password=False, mfa=False, access_key=True),
    _User("terraform-automation", console_password=False, mfa=False, access_key=True),
    _User("backup-agent", console_password=False, mfa=True, access_key=True),
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
    _Database("acme-prod-orders", 0, "postgres", encrypted=True),
    _Database("acme-analytics", 0, "mysql", encrypted=False),
    _Database("acme-eu-customers", 1, "postgres", encrypted=True),
    _Database("acme-eu-reporting", 1, "mysql", encrypted=False),
)


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
    resources += _seed_iam(seeder, account_id, expected)
    resources += _seed_trails(seeder, root, expected)
    resources += _seed_ebs(seeder, account_id, expected)
    resources += _seed_security_groups(seeder, account_id, expected)
    resources += _seed_databases(seeder, account_id, expected)
    return Estate(endpoint_url=endpoint_url, regions=seeder.regions, account_id=account_id,
                  account_alias=ACCOUNT_ALIAS, resources=resources, expected=expected)


def _seed_buckets(seeder: _Seeder, expected: dict[str, dict[str, str]]) -> int:
    encryption, versioning, blocked = {}, {}, {}
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
        encryption[arn] = PASSING if spec.encryption else FAILING
        versioning[arn] = PASSING if spec.versioning == "Enabled" else FAILING
        blocked[arn] = PASSING if spec.public_access_block == ALL_BLOCKED else FAILING
    expected["aws.s3.bucket_default_encryption"] = encryption
    expected["aws.s3.bucket_versioning"] = versioning
    expected["aws.s3.bucket_public_access_block"] = blocked
    return len(BUCKETS)


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
    return created


def _seed_trails(seeder: _Seeder, root: str, expected: dict[str, dict[str, str]]) -> int:
    home = seeder.client("cloudtrail", seeder.region(0))
    home.create_trail(Name="acme-org-trail", S3BucketName=TRAIL_BUCKET, IsMultiRegionTrail=True,
                      EnableLogFileValidation=True, IncludeGlobalServiceEvents=True)
    home.start_logging(Name="acme-org-trail")
    # A stopped single-region trail left over from a proof of concept.
    other = seeder.client("cloudtrail", seeder.region(1))
    other.create_trail(Name="acme-poc-trail", S3BucketName=TRAIL_BUCKET, IsMultiRegionTrail=False)
    expected["aws.cloudtrail.multi_region_trail"] = {root: PASSING}
    return 2


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


def _seed_databases(seeder: _Seeder, account_id: str,
                    expected: dict[str, dict[str, str]]) -> int:
    verdicts = {}
    for spec in DATABASES:
        rds = seeder.client("rds", seeder.region(spec.region))
        rds.create_db_instance(
            DBInstanceIdentifier=spec.identifier, DBInstanceClass="db.t3.medium",
            Engine=spec.engine, AllocatedStorage=50, MasterUsername="acmeadmin",
            MasterUserPassword=DB_PASSWORD, StorageEncrypted=spec.encrypted,
            Tags=[{"Key": "team", "Value": "acme"}])
        arn = f"arn:aws:rds:{seeder.region(spec.region)}:{account_id}:db:{spec.identifier}"
        verdicts[arn] = PASSING if spec.encrypted else FAILING
    expected["aws.rds.storage_encrypted"] = verdicts
    return len(DATABASES)
