"""The acme AWS estate as data: what the kit seeds into moto's server, and the seeding clients.

Every resource is listed here with the facts its verdicts follow from, so the expected verdicts
come from this specification, not from the connector: the tests compare two independent answers.
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
DENY_HTTP, BUCKET_ARN_ONLY = "deny-http", "bucket-arn-only"  # bucket TLS policy shapes
STALE_DAYS = 90  # both the key-age and the unused-credential checks draw the line here


@dataclass(frozen=True)
class Bucket:
    name: str
    region: int  # index into the estate's regions
    encryption: str | None  # SSE algorithm, None for no default encryption
    versioning: str | None  # "Enabled", "Suspended", None for never configured
    public_access_block: tuple[bool, bool, bool, bool] | None
    tls_policy: str | None = None  # DENY_HTTP, BUCKET_ARN_ONLY, or no bucket policy


@dataclass(frozen=True)
class User:
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
class Group:
    name: str
    region: int
    description: str
    ingress: tuple[dict[str, Any], ...]
    opens_admin_port: bool  # what the deprecated aws.ec2.security_group_admin_ports concludes
    opens_to: tuple[str, ...] = ()  # sources TCP SSH/RDP or all traffic is open to (CIS 5.2/5.3)


@dataclass(frozen=True)
class Database:
    identifier: str
    region: int
    engine: str
    encrypted: bool
    public: bool
    backup_days: int
    auto_minor_upgrade: bool


BUCKETS = (
    Bucket("acme-prod-logs", 0, "aws:kms", "Enabled", ALL_BLOCKED, DENY_HTTP),
    Bucket("acme-cloudtrail-logs", 0, "AES256", "Enabled", ALL_BLOCKED, DENY_HTTP),
    Bucket("acme-prod-backups", 0, "aws:kms", "Enabled", ALL_BLOCKED, DENY_HTTP),
    Bucket("acme-terraform-state", 0, "aws:kms", "Enabled", ALL_BLOCKED, BUCKET_ARN_ONLY),
    Bucket("acme-customer-uploads", 0, "AES256", None, ALL_BLOCKED),
    Bucket("acme-marketing-site", 0, None, None, (True, True, False, False)),
    Bucket("acme-data-lake-raw", 0, "aws:kms", "Suspended", ALL_BLOCKED),
    Bucket("acme-ml-training-data", 0, None, "Enabled", None),
    Bucket("acme-eu-customer-data", 1, "aws:kms", "Enabled", ALL_BLOCKED, DENY_HTTP),
    Bucket("acme-eu-static-assets", 1, "AES256", None, (True, True, True, False)),
    Bucket("acme-eu-analytics-exports", 1, None, None, None),
    Bucket("acme-dev-scratch", 1, None, "Suspended", None),
)
TRAIL_BUCKET = "acme-cloudtrail-logs"

# Ages in days before seeding; they take effect where moto's server runs in this process.
USERS = (
    User("alice.nguyen", console_password=True, mfa=True, access_key=False,
          age_days=400, password_used_days=2),
    User("bob.martinez", console_password=True, mfa=False, access_key=True,
          age_days=300, key_age_days=300, key_used_days=5, password_used_days=10),
    User("carol.smith", console_password=True, mfa=True, access_key=False, age_days=200),
    User("dave.okafor", console_password=True, mfa=False, access_key=False, age_days=20),
    User("erin.kowalski", console_password=True, mfa=True, access_key=True,
          age_days=120, key_age_days=30, key_used_days=1, password_used_days=100),
    User("frank.li", console_password=True, mfa=True, access_key=False),
    User("grace.hopper", console_password=True, mfa=False, access_key=False,
          age_days=95, password_used_days=91),
    User("ci-deployer", console_password=False, mfa=False, access_key=True,
          age_days=500, key_age_days=500, key_used_days=0, second_key=True),
    User("terraform-automation", console_password=False, mfa=False, access_key=True,
          age_days=60, key_age_days=60),
    User("backup-agent", console_password=False, mfa=True, access_key=True,
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


V4, V6 = "0.0.0.0/0", "::/0"

GROUPS = (
    Group("web-alb", 0, "Public load balancer", (_tcp(443, V4, V6), _tcp(80, V4)), False),
    Group("bastion-ssh", 0, "Bastion host", (_tcp(22, V4),), True, (V4,)),
    Group("app-servers", 0, "Application tier", (), False),  # ingress from web-alb, below
    Group("windows-jump", 0, "Windows jump box", (_tcp(3389, V4),), True, (V4,)),
    Group("db-postgres", 0, "Postgres from the VPC", (_tcp(5432, "10.0.0.0/16"),), False),
    # RDP's UDP transport open to the world: CIS 5.2 and Prowler count TCP and all-traffic
    # rules only, the deprecated alias counted UDP too
    Group("rdp-udp", 0, "RDP over UDP", ({"IpProtocol": "udp", "FromPort": 3389,
                                           "ToPort": 3389, "IpRanges": [{"CidrIp": V4}]},),
          True),
    Group("legacy-allow-all", 1, "Legacy, to be removed",
           ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": V4}]},), True, (V4,)),
    Group("ops-ssh-vpn", 1, "SSH from the office VPN", (_tcp(22, "203.0.113.0/24"),), False),
    Group("eu-debug-ports", 1, "Debugging, low ports", (_tcp(0, V6, to_port=1024),), True,
          (V6,)),
    Group("eu-ssh-ipv6", 1, "SSH over IPv6", (_tcp(22, "10.0.0.0/8", V6),), True, (V6,)),
    Group("eu-web", 1, "Public web", (_tcp(443, V4, V6),), False),
)

DATABASES = (
    Database("acme-prod-orders", 0, "postgres", encrypted=True, public=False, backup_days=14,
              auto_minor_upgrade=True),
    Database("acme-analytics", 0, "mysql", encrypted=False, public=True, backup_days=1,
              auto_minor_upgrade=False),
    Database("acme-eu-customers", 1, "postgres", encrypted=True, public=False, backup_days=7,
              auto_minor_upgrade=True),
    Database("acme-eu-reporting", 1, "mysql", encrypted=False, public=True, backup_days=0,
              auto_minor_upgrade=True),
)



def _statement(effect: str, action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[dict[str, Any], ...]
    full_admin: bool  # what the check must conclude
    attach_to_group: str | None = None


POLICIES = (
    Policy("acme-break-glass-admin", (_statement("Allow", "*", "*"),), True, "break-glass"),
    Policy("acme-ci-deploy", (_statement("Allow", ["s3:PutObject", "s3:DeleteObject"],
                                          "arn:aws:s3:::acme-marketing-site/*"),
                               _statement("Allow", "cloudfront:CreateInvalidation", "*")), False),
    Policy("acme-legacy-ops", (_statement("Allow", ["ec2:Describe*"], "*"),
                                _statement("Allow", ["*:*"], ["*"], Condition={
                                    "IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})), True),
    Policy("acme-ec2-operators", (_statement("Allow", "ec2:*", "*"),), False, "operators"),
    Policy("acme-deny-outside-eu", (_statement("Deny", "*", "*", Condition={
        "StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}}),), False),
)


@dataclass(frozen=True)
class Key:
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
    Key("acme-cloudtrail", 0, rotation=True),
    Key("acme-app-secrets", 0, rotation=False),
    Key("acme-code-signing", 0, rotation=False, spec="RSA_2048"),
    Key("acme-eu-data", 1, rotation=True),
    Key("acme-eu-retired", 1, rotation=False, disabled=True),
)
TRAIL_KEY = "acme-cloudtrail"


@dataclass(frozen=True)
class Vpc:
    name: str | None  # None: the region's default VPC
    region: int
    cidr: str | None
    flow_log_traffic: str | None  # ALL, REJECT, ACCEPT, or no flow log


VPCS = (
    Vpc(None, 0, None, "ALL"),
    Vpc("acme-prod-vpc", 0, "10.20.0.0/16", "REJECT"),
    Vpc("acme-staging-vpc", 0, "10.30.0.0/16", "ACCEPT"),
    Vpc("acme-shared-services", 0, "10.50.0.0/16", "ALL"),  # peered with prod (CIS 5.5)
    Vpc(None, 1, None, None),
    Vpc("acme-eu-vpc", 1, "10.40.0.0/16", "ALL"),
)


@dataclass(frozen=True)
class Instance:
    name: str
    region: int
    http_tokens: str
    http_endpoint: str = "enabled"
    profile: bool = False  # runs with an IAM instance profile (CIS 1.18)


INSTANCES = (
    Instance("acme-web-1", 0, "required", profile=True),
    Instance("acme-legacy-batch", 0, "optional"),
    Instance("acme-eu-worker", 1, "optional", http_endpoint="disabled", profile=True),
    Instance("acme-eu-jumpbox", 1, "optional"),
)
INSTANCE_PROFILE = "acme-app-instance"


@dataclass(frozen=True)
class Listener:
    protocol: str
    port: int
    redirect_to_https: bool = False
    expected: str = PASSING


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    region: int
    kind: str  # application, network
    scheme: str
    listeners: tuple[Listener, ...]


LOAD_BALANCERS = (
    LoadBalancer("acme-web-alb", 0, "application", "internet-facing", (
        Listener("HTTPS", 443), Listener("HTTP", 80, redirect_to_https=True))),
    LoadBalancer("acme-internal-api", 0, "application", "internal", (
        Listener("HTTP", 8080, expected=FAILING),)),
    LoadBalancer("acme-mqtt-nlb", 0, "network", "internet-facing", (
        Listener("TLS", 8883), Listener("TCP", 1883, expected=NOT_APPLICABLE))),
    LoadBalancer("acme-eu-web", 1, "application", "internet-facing", (
        Listener("HTTP", 80, expected=FAILING),)),
)


@dataclass(frozen=True)
class Function:
    name: str
    region: int
    url_auth: str | None  # NONE (public), AWS_IAM, or no function URL


FUNCTIONS = (
    Function("acme-thumbnailer", 0, "NONE"),
    Function("acme-webhook-receiver", 0, "AWS_IAM"),
    Function("acme-nightly-report", 0, None),
    Function("acme-eu-gdpr-export", 1, "NONE"),
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


class Seeder:
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
