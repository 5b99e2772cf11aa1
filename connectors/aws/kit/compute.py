"""The acme estate's network and compute: VPCs, security groups, instances, databases, load
balancers and functions, with the verdicts their checks must reach."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from connectors.aws.kit.spec import (
    DATABASES,
    DB_PASSWORD,
    FAILING,
    FUNCTIONS,
    GROUPS,
    INSTANCE_PROFILE,
    INSTANCES,
    LAMBDA_ROLE,
    LOAD_BALANCERS,
    PASSING,
    VPCS,
    Seeder,
)


def _default_vpc(seeder: Seeder, region: str) -> str:
    vpcs = seeder.client("ec2", region).describe_vpcs(
        Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return str(vpcs[0]["VpcId"])


def seed_network(seeder: Seeder, account_id: str,
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


def seed_security_groups(seeder: Seeder, account_id: str,
                          expected: dict[str, dict[str, str]]) -> int:
    verdicts: dict[str, str] = {}
    by_source: dict[str, dict[str, str]] = {"0.0.0.0/0": {}, "::/0": {}}
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
        for source, per_group in by_source.items():
            per_group[arn] = FAILING if source in spec.opens_to else PASSING
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
            for per_group in by_source.values():
                per_group[arn] = PASSING
    expected["aws.ec2.security_group_admin_ports"] = verdicts
    expected["aws.ec2.security_group_admin_ports_ipv4"] = by_source["0.0.0.0/0"]
    expected["aws.ec2.security_group_admin_ports_ipv6"] = by_source["::/0"]
    return len(GROUPS)


# An Amazon Linux image moto serves in every region.
IMAGE_ID = "ami-12c6146b"


def seed_instances(seeder: Seeder, account_id: str,
                    expected: dict[str, dict[str, str]]) -> int:
    verdicts, profiles = {}, {}
    iam = seeder.client("iam")
    iam.create_role(RoleName=INSTANCE_PROFILE, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}))
    iam.create_instance_profile(InstanceProfileName=INSTANCE_PROFILE)
    iam.add_role_to_instance_profile(InstanceProfileName=INSTANCE_PROFILE,
                                     RoleName=INSTANCE_PROFILE)
    for spec in INSTANCES:
        region = seeder.region(spec.region)
        profile = {"IamInstanceProfile": {"Name": INSTANCE_PROFILE}} if spec.profile else {}
        instance = seeder.client("ec2", region).run_instances(
            ImageId=IMAGE_ID, InstanceType="t3.micro", MinCount=1, MaxCount=1,
            MetadataOptions={"HttpTokens": spec.http_tokens, "HttpEndpoint": spec.http_endpoint},
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": spec.name}]}], **profile,
        )["Instances"][0]
        arn = f"arn:aws:ec2:{region}:{account_id}:instance/{instance['InstanceId']}"
        verdicts[arn] = (PASSING if spec.http_tokens == "required"
                         or spec.http_endpoint == "disabled" else FAILING)
        profiles[arn] = PASSING if spec.profile else FAILING
    expected["aws.ec2.instance_imdsv2"] = verdicts
    expected["aws.ec2.instance_profile_attached"] = profiles
    return len(INSTANCES) + 2


def seed_databases(seeder: Seeder, account_id: str,
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


def seed_load_balancers(seeder: Seeder, expected: dict[str, dict[str, str]]) -> int:
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


def seed_functions(seeder: Seeder, expected: dict[str, dict[str, str]]) -> int:
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
