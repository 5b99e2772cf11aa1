"""The emulated estate, continued: what the CIS AWS Foundations Benchmark checks judge.

Seeded after the rest of the acme estate (it reads back the default VPCs' groups and ACLs and
adds to the trails and users made there). As in estate.py, the verdicts come from the
seeding specification, not from the connector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.aws.cloudwatch import WATCHES
from connectors.aws.kit.spec import Seeder, User
from connectors.base import Status

PASSING, FAILING, NOT_APPLICABLE, ERROR = (Status.PASSING.value, Status.FAILING.value,
                                           Status.NOT_APPLICABLE.value, Status.ERROR.value)
Expected = dict[str, dict[str, str]]

# Account-level Block Public Access: the ACL settings only, so the account check fails and
# every bucket is judged as before (no bucket without its own policy blocks gains from it).
ACCOUNT_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                 "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
ACCESS_LOG_BUCKET = "acme-customer-uploads"  # the CloudTrail bucket logs access into it
LOG_DELIVERY = 'uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'
ARCHIVE_TRAIL, ARCHIVE_BUCKET = "acme-audit-archive", "acme-terraform-state"
DIRECT_POLICY = ("ci-deployer", "acme-ci-deploy")  # a user holding a policy of its own
LOG_GROUP, ALERTS_TOPIC, UNWATCHED_TOPIC = "acme-cloudtrail", "acme-security-alerts", \
    "acme-unwatched-alerts"
ALERTS_EMAIL = "secops@acme.example.com"
SETUP_KEY_USER = "henry.ng"  # a console user whose access key, made at setup, was never used
CIS_UNUSED_DAYS = 45
CONSOLE_PASSWORD = "Emulated-Console-Passw0rd!"  # noqa: S105 - the emulator's throwaway users


@dataclass(frozen=True)
class _Watch:
    check: str  # key of cloudwatch.WATCHES
    mode: str  # full, no_alarm, no_subscriber, partial_pattern


# The monitoring section: some recommendations fully in place, some broken in one way each;
# the others have no metric filter at all.
WATCH_SEEDS = (
    _Watch("unauthorized_api_calls_alarm", "full"),
    _Watch("root_usage_alarm", "full"),
    _Watch("iam_policy_changes_alarm", "full"),
    _Watch("cloudtrail_changes_alarm", "full"),
    _Watch("security_group_changes_alarm", "full"),
    _Watch("console_signin_without_mfa_alarm", "no_alarm"),
    _Watch("console_auth_failures_alarm", "no_subscriber"),
    _Watch("s3_bucket_policy_changes_alarm", "partial_pattern"),
)


@dataclass(frozen=True)
class _FileSystem:
    token: str
    region: int
    encrypted: bool


FILE_SYSTEMS = (
    _FileSystem("acme-shared-home", 0, True),
    _FileSystem("acme-legacy-nfs", 0, False),
    _FileSystem("acme-eu-media", 1, True),
)


def seed_cis(seeder: Seeder, account_id: str, expected: Expected,
             users: Sequence[User], aged: bool) -> int:
    """Seed what the CIS checks read; return how many resources were created. `users` are
    the estate's IAM users, `aged` whether their dates were back-dated in moto."""
    root = f"arn:aws:iam::{account_id}:root"
    created = 0
    created += _seed_credentials(seeder, account_id, expected, users, aged)
    created += _seed_account_block(seeder, account_id, root, expected)
    created += _seed_iam(seeder, account_id, root, expected)
    created += _seed_file_systems(seeder, expected)
    created += _seed_security_hub(seeder, account_id, expected)
    created += _seed_trails(seeder, account_id, root, expected)
    created += _seed_monitoring(seeder, account_id, root, expected)
    created += _seed_network(seeder, account_id, expected)
    created += _seed_account(seeder, account_id, root, expected)
    created += _seed_peering(seeder, account_id, expected)
    return created


# (requester, accepter, the route prod's main table sends through it, what 5.5 concludes)
PEERINGS = (("acme-prod-vpc", "acme-staging-vpc", "10.30.0.0/16", FAILING),  # the whole VPC
            ("acme-prod-vpc", "acme-shared-services", "10.50.1.0/24", PASSING))  # one subnet


def _seed_peering(seeder: Seeder, account_id: str, expected: Expected) -> int:
    region = seeder.region(0)
    ec2 = seeder.client("ec2", region)
    vpcs = {t["Value"]: v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]
            for t in v.get("Tags", []) if t["Key"] == "Name"}
    verdicts = {}
    for requester, accepter, destination, verdict in PEERINGS:
        peering = ec2.create_vpc_peering_connection(
            VpcId=vpcs[requester], PeerVpcId=vpcs[accepter],
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering)
        table = ec2.describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [vpcs[requester]]},
            {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
        ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=destination,
                         VpcPeeringConnectionId=peering)
        verdicts[f"arn:aws:ec2:{region}:{account_id}:vpc-peering-connection/{peering}"] = verdict
    expected["aws.ec2.vpc_peering_least_access"] = verdicts
    return len(PEERINGS)


def _seed_account(seeder: Seeder, account_id: str, root: str, expected: Expected) -> int:
    """A security contact (1.2); no SAML provider (1.21: people are IAM users here); Macie on
    everywhere but the second region (2.1.3; moto starts every region with Macie enabled)."""
    seeder.client("account").put_alternate_contact(
        AlternateContactType="SECURITY", Name="Acme Security", Title="Security team",
        EmailAddress=ALERTS_EMAIL, PhoneNumber="+15555550100")
    expected["aws.account.security_contact"] = {root: PASSING}
    expected["aws.iam.identity_federation"] = {root: FAILING}
    macie = {}
    for index, region in enumerate(seeder.regions):
        if index == 1:
            seeder.client("macie2", region).disable_macie()
        macie[f"aws:account:{account_id}:region:{region}"] = FAILING if index == 1 else PASSING
    expected["aws.macie.enabled"] = macie
    return 1


def _credential_verdicts(spec: User, aged: bool) -> tuple[str, str, str]:
    """Initial access key (1.11), console password and access keys unused 45 days (1.12)."""
    def days(value: int | None) -> int | None:
        return value if aged else None  # without back-dating, everything happened today

    key_used = days(spec.key_used_days)
    initial = (FAILING if spec.console_password and spec.access_key
               and (key_used is None or spec.second_key) else PASSING)
    password_idle = (days(spec.password_used_days) if spec.password_used_days is not None
                     else days(spec.age_days)) or 0
    console = (FAILING if spec.console_password and password_idle >= CIS_UNUSED_DAYS
               else PASSING)
    key_idle = (key_used if key_used is not None else days(spec.key_age_days)) or 0
    keys = FAILING if spec.access_key and key_idle >= CIS_UNUSED_DAYS else PASSING
    return initial, console, keys


def _seed_credentials(seeder: Seeder, account_id: str, expected: Expected,
                      users: Sequence[User], aged: bool) -> int:
    """One more console user, created today with an access key it never used."""
    iam = seeder.client("iam")
    iam.create_user(UserName=SETUP_KEY_USER, Tags=[{"Key": "team", "Value": "acme"}])
    iam.create_login_profile(UserName=SETUP_KEY_USER, Password=CONSOLE_PASSWORD)
    iam.create_access_key(UserName=SETUP_KEY_USER)
    henry = f"arn:aws:iam::{account_id}:user/{SETUP_KEY_USER}"
    # the older user checks judge henry too: no MFA, a fresh key, nothing idle
    for check_id, verdict in (("aws.iam.console_users_mfa", FAILING),
                              ("aws.iam.access_key_rotation", PASSING),
                              ("aws.iam.unused_credentials", PASSING),
                              ("aws.iam.single_active_access_key", PASSING)):
        expected[check_id][henry] = verdict
    initial, console, keys = {henry: FAILING}, {henry: PASSING}, {henry: PASSING}
    for spec in users:
        arn = f"arn:aws:iam::{account_id}:user/{spec.name}"
        initial[arn], console[arn], keys[arn] = _credential_verdicts(spec, aged)
    expected["aws.iam.no_initial_access_keys"] = initial
    expected["aws.iam.console_password_unused_45_days"] = console
    expected["aws.iam.access_keys_unused_45_days"] = keys
    return 2


def _seed_account_block(seeder: Seeder, account_id: str, root: str,
                        expected: Expected) -> int:
    s3control = seeder.client("s3control")

    def strip_account_prefix(request: Any, **_: Any) -> None:
        request.url = request.url.replace(f"//{account_id}.", "//", 1)

    s3control.meta.events.register("before-sign.s3-control", strip_account_prefix)
    s3control.put_public_access_block(AccountId=account_id,
                                      PublicAccessBlockConfiguration=ACCOUNT_BLOCK)
    expected["aws.s3.account_public_access_block"] = {root: FAILING}
    # moto keeps no MFADelete state (versioning answers never carry it), so every bucket
    # fails MFA delete here; its passing case is tested on plain data.
    buckets = [b["Name"] for b in seeder.client("s3").list_buckets()["Buckets"]]
    expected["aws.s3.bucket_mfa_delete"] = {f"arn:aws:s3:::{name}": FAILING for name in buckets}
    return 0


def _certificate(days: int) -> tuple[str, str]:
    """A self-signed certificate that expired `days` ago, and its private key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.acme.example.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=2 * days)).not_valid_after(now - timedelta(
                days=days)).sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private


def _seed_iam(seeder: Seeder, account_id: str, root: str, expected: Expected) -> int:
    iam = seeder.client("iam")
    user, policy = DIRECT_POLICY
    iam.attach_user_policy(UserName=user,
                           PolicyArn=f"arn:aws:iam::{account_id}:policy/{policy}")
    users = [u["UserName"] for page in iam.get_paginator("list_users").paginate()
             for u in page["Users"]]
    expected["aws.iam.user_permissions_via_groups"] = {
        f"arn:aws:iam::{account_id}:user/{name}": FAILING if name == user else PASSING
        for name in users}
    # moto serves AWS managed policies only when told to load them all at start, so no role
    # can hold AWSSupportAccess here; the check's passing case is tested on plain data.
    expected["aws.iam.support_role"] = {root: FAILING}
    expected["aws.iam.cloudshell_full_access_restricted"] = {
        "arn:aws:iam::aws:policy/AWSCloudShellFullAccess": PASSING}
    # moto answers every server certificate's expiry as 2012, so the one seeded has expired
    # whatever its body says (a certificate that expired a year ago).
    body, private_key = _certificate(365)
    arn = iam.upload_server_certificate(
        ServerCertificateName="acme-legacy-elb", CertificateBody=body, PrivateKey=private_key,
    )["ServerCertificateMetadata"]["Arn"]
    expected["aws.iam.expired_server_certificates"] = {arn: FAILING}
    # moto has no root access keys and no root MFA: both root rows are fixed.
    expected["aws.iam.no_root_access_keys"] = {root: PASSING}
    expected["aws.iam.root_hardware_mfa"] = {root: FAILING}
    # moto's credential report has no <root_account> row: the root's last use is unknown.
    expected["aws.iam.root_not_used"] = {root: NOT_APPLICABLE}
    return 1


def _seed_file_systems(seeder: Seeder, expected: Expected) -> int:
    verdicts = {}
    for spec in FILE_SYSTEMS:
        fs = seeder.client("efs", seeder.region(spec.region)).create_file_system(
            CreationToken=spec.token, Encrypted=spec.encrypted,
            Tags=[{"Key": "Name", "Value": spec.token}])
        verdicts[fs["FileSystemArn"]] = PASSING if spec.encrypted else FAILING
    expected["aws.efs.encryption_at_rest"] = verdicts
    return len(FILE_SYSTEMS)


def _seed_security_hub(seeder: Seeder, account_id: str, expected: Expected) -> int:
    """Enabled in the first region only."""
    seeder.client("securityhub", seeder.region(0)).enable_security_hub(
        EnableDefaultStandards=True)
    # moto serves no IAM Access Analyzer: each region is an error result naming the service
    expected["aws.accessanalyzer.enabled"] = {
        f"aws:account:{account_id}:region:{region}": ERROR for region in seeder.regions}
    expected["aws.securityhub.enabled"] = {
        f"aws:account:{account_id}:region:{region}": PASSING if index == 0 else FAILING
        for index, region in enumerate(seeder.regions)}
    return 1


def _seed_trails(seeder: Seeder, account_id: str, root: str, expected: Expected) -> int:
    """The org trail's bucket logs access and it records S3 object writes (not reads); an
    archive trail delivers to a bucket without access logging."""
    s3 = seeder.client("s3")
    owner = s3.list_buckets()["Owner"]["ID"]
    s3.put_bucket_acl(Bucket=ACCESS_LOG_BUCKET, GrantFullControl=f'id="{owner}"',
                      GrantWrite=LOG_DELIVERY, GrantReadACP=LOG_DELIVERY)
    s3.put_bucket_logging(Bucket="acme-cloudtrail-logs", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": ACCESS_LOG_BUCKET, "TargetPrefix": "cloudtrail/"}})
    home = seeder.client("cloudtrail", seeder.region(0))
    home.put_event_selectors(TrailName="acme-org-trail", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True},
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": False,
         "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])
    archive = home.create_trail(Name=ARCHIVE_TRAIL, S3BucketName=ARCHIVE_BUCKET,
                                IsMultiRegionTrail=False)["TrailARN"]
    region0, region1 = seeder.region(0), seeder.region(1)
    org = f"arn:aws:cloudtrail:{region0}:{account_id}:trail/acme-org-trail"
    poc = f"arn:aws:cloudtrail:{region1}:{account_id}:trail/acme-poc-trail"
    expected["aws.cloudtrail.bucket_access_logging"] = {org: PASSING, poc: PASSING,
                                                        archive: FAILING}
    expected["aws.cloudtrail.s3_object_write_logging"] = {root: PASSING}
    expected["aws.cloudtrail.s3_object_read_logging"] = {root: FAILING}
    # the archive trail is one more trail for the older trail checks: stopped, unvalidated
    expected["aws.cloudtrail.log_file_validation"][archive] = FAILING
    expected["aws.cloudtrail.kms_encryption"][archive] = FAILING
    return 1


_PATTERNS = {
    "unauthorized_api_calls_alarm": '{ ($.errorCode = "*UnauthorizedOperation") || '
                                    '($.errorCode = "AccessDenied*") }',
    "root_usage_alarm": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT '
                        'EXISTS && $.eventType != "AwsServiceEvent" }',
    "console_signin_without_mfa_alarm": '{ ($.eventName = "ConsoleLogin") && '
                                        '($.additionalEventData.MFAUsed != "Yes") }',
    "console_auth_failures_alarm": '{ ($.eventName = ConsoleLogin) && '
                                   '($.errorMessage = "Failed authentication") }',
}


def _pattern(key: str, drop_last: bool = False) -> str:
    if key in _PATTERNS:
        return _PATTERNS[key]
    terms = WATCHES[key].terms[:-1] if drop_last else WATCHES[key].terms
    source = [t for t in terms if t[0] == "eventSource"]
    names = " || ".join(f"($.eventName = {v})" for f, _, v in terms if f == "eventName")
    return ("{ " + (f"($.eventSource = {source[0][2]}) && (" if source else "") + names
            + (")" if source else "") + " }")


def _seed_monitoring(seeder: Seeder, account_id: str, root: str,
                     expected: Expected) -> int:
    region = seeder.region(0)
    logs, cloudwatch = seeder.client("logs", region), seeder.client("cloudwatch", region)
    sns = seeder.client("sns", region)
    logs.create_log_group(logGroupName=LOG_GROUP)
    role = seeder.client("iam").create_role(
        RoleName="acme-cloudtrail-to-logs", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    seeder.client("cloudtrail", region).update_trail(
        Name="acme-org-trail", CloudWatchLogsRoleArn=role,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{region}:{account_id}:log-group:{LOG_GROUP}:*")
    alerts = sns.create_topic(Name=ALERTS_TOPIC)["TopicArn"]
    sns.subscribe(TopicArn=alerts, Protocol="email", Endpoint=ALERTS_EMAIL)
    unwatched = sns.create_topic(Name=UNWATCHED_TOPIC)["TopicArn"]
    seeded = {spec.check: spec.mode for spec in WATCH_SEEDS}
    for key, mode in seeded.items():
        metric = "".join(part.title() for part in key.split("_"))
        logs.put_metric_filter(
            logGroupName=LOG_GROUP, filterName=key.replace("_", "-"),
            filterPattern=_pattern(key, drop_last=mode == "partial_pattern"),
            metricTransformations=[{"metricName": metric, "metricNamespace": "CISBenchmark",
                                    "metricValue": "1"}])
        if mode != "no_alarm":
            cloudwatch.put_metric_alarm(
                AlarmName=f"cis-{key.replace('_', '-')}", MetricName=metric,
                Namespace="CISBenchmark", Statistic="Sum", Period=300, EvaluationPeriods=1,
                Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                AlarmActions=[unwatched if mode == "no_subscriber" else alerts])
    for key in WATCHES:
        expected[f"aws.cloudwatch.{key}"] = {
            root: PASSING if seeded.get(key) == "full" else FAILING}
    return 4 + len(seeded)


def _seed_network(seeder: Seeder, account_id: str, expected: Expected) -> int:
    """Network ACLs: every VPC's default ACL lets everything in (failing); three of acme's own,
    one open to SSH and two that keep it out. The default security group of the production
    VPC has its rules removed; every other default group keeps AWS's allow-all egress."""
    region = seeder.region(0)
    ec2 = seeder.client("ec2", region)
    prod = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["acme-prod-vpc"]}],
                             )["Vpcs"][0]["VpcId"]
    acls: dict[str, str] = {}
    for name, entries, verdict in (
            ("acme-prod-private", [(100, "6", 443, "allow", "0.0.0.0/0"),
                                   (110, "6", 22, "allow", "10.0.0.0/8")], PASSING),
            ("acme-prod-dmz", [(50, "6", 22, "deny", "0.0.0.0/0"),
                               (60, "6", 3389, "deny", "0.0.0.0/0"),
                               (100, "-1", None, "allow", "0.0.0.0/0")], PASSING),
            ("acme-prod-bastion", [(100, "6", 22, "allow", "0.0.0.0/0")], FAILING)):
        acl = ec2.create_network_acl(VpcId=prod, TagSpecifications=[{
            "ResourceType": "network-acl", "Tags": [{"Key": "Name", "Value": name}]}],
        )["NetworkAcl"]["NetworkAclId"]
        for number, protocol, port, action, cidr in entries:
            entry: dict[str, Any] = {"NetworkAclId": acl, "RuleNumber": number,
                                     "Protocol": protocol, "RuleAction": action,
                                     "Egress": False, "CidrBlock": cidr}
            if port is not None:
                entry["PortRange"] = {"From": port, "To": port}
            ec2.create_network_acl_entry(**entry)
        acls[f"arn:aws:ec2:{region}:{account_id}:network-acl/{acl}"] = verdict
    default_group = ec2.describe_security_groups(Filters=[
        {"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [prod]}],
    )["SecurityGroups"][0]
    ec2.revoke_security_group_egress(GroupId=default_group["GroupId"],
                                     IpPermissions=default_group["IpPermissionsEgress"])
    groups: dict[str, str] = {}
    for r in seeder.regions:
        client = seeder.client("ec2", r)
        for acl in client.describe_network_acls()["NetworkAcls"]:
            arn = f"arn:aws:ec2:{r}:{account_id}:network-acl/{acl['NetworkAclId']}"
            acls.setdefault(arn, FAILING)  # the defaults: allow all traffic in
        for group in client.describe_security_groups(Filters=[
                {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]:
            arn = f"arn:aws:ec2:{r}:{account_id}:security-group/{group['GroupId']}"
            groups[arn] = PASSING if group["GroupId"] == default_group["GroupId"] else FAILING
    expected["aws.ec2.network_acl_admin_ports"] = acls
    expected["aws.ec2.default_security_group_restricted"] = groups
    return 3
