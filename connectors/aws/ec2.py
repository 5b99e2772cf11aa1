"""Amazon EC2: EBS encryption by default, security groups and network ACLs open to the internet,
default security groups, VPC flow logs and instances that require IMDSv2."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})
# CIS counts TCP, UDP and "all protocols" rules; ICMP and others carry no admin service.
_PORT_PROTOCOLS = frozenset({"tcp", "udp", "6", "17"})


@dataclass(frozen=True)
class EbsDefaultEncryption:
    """Whether new EBS volumes in one region are encrypted by default."""

    account_id: str
    region: str
    enabled: bool

    @property
    def resource_id(self) -> str:
        return f"aws:account:{self.account_id}:region:{self.region}"


@dataclass(frozen=True)
class SecurityGroup:
    """One security group and its ingress rules."""

    group_id: str
    name: str
    arn: str
    region: str
    vpc_id: str | None
    ingress: list[dict[str, Any]] = field(default_factory=list)
    egress: list[dict[str, Any]] = field(default_factory=list)


@collector(scoped=True)
def collect_ebs_encryption(session: AwsSession, region: str) -> list[EbsDefaultEncryption]:
    """The region's EBS encryption-by-default setting."""
    account_id = session.identity().account_id
    with session.service("ec2", region) as ec2:
        enabled = bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
    return [EbsDefaultEncryption(account_id=account_id, region=region, enabled=enabled)]


@collector(scoped=True)
def collect_security_groups(session: AwsSession, region: str) -> list[SecurityGroup]:
    """Every security group in the region with its ingress rules."""
    groups = []
    with session.service("ec2", region) as ec2:
        for page in ec2.get_paginator("describe_security_groups").paginate():
            for group in page["SecurityGroups"]:
                arn = group.get("SecurityGroupArn") or (
                    f"arn:{session.identity().partition}:ec2:{region}:{group['OwnerId']}"
                    f":security-group/{group['GroupId']}")
                groups.append(SecurityGroup(
                    group_id=group["GroupId"], name=group.get("GroupName", ""), arn=arn,
                    region=region, vpc_id=group.get("VpcId"),
                    ingress=list(group.get("IpPermissions", [])),
                    egress=list(group.get("IpPermissionsEgress", [])),
                ))
    return groups


def open_admin_ports(rules: Sequence[Mapping[str, Any]]) -> list[int]:
    """The admin ports (22, 3389) that some ingress rule opens to 0.0.0.0/0 or ::/0."""
    opened: set[int] = set()
    for rule in rules:
        protocol = str(rule.get("IpProtocol", ""))
        sources = {r.get("CidrIp") for r in rule.get("IpRanges", [])}
        sources |= {r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])}
        if not sources & ANYWHERE:
            continue
        if protocol == "-1":
            opened.update(ADMIN_PORTS)
        elif protocol in _PORT_PROTOCOLS:
            low, high = int(rule.get("FromPort", 0)), int(rule.get("ToPort", 65535))
            if low == -1:  # a port-less rule on a port protocol means every port
                low, high = 0, 65535
            opened.update(port for port in ADMIN_PORTS if low <= port <= high)
    return sorted(opened)


@check(id="aws.ec2.ebs_encryption_by_default", severity=Severity.MEDIUM,
       resource_type="aws.account.region", needs=collect_ebs_encryption,
       benchmarks={"cis_aws": ["2.2.1"]},
       remediation="Turn on EBS encryption by default in every region (EC2 > Settings > Data "
                   "protection and security > EBS encryption), e.g. `aws ec2 "
                   "enable-ebs-encryption-by-default --region REGION`; existing volumes need a "
                   "snapshot-copy with encryption to be re-created.")
def ebs_encryption_by_default(settings: list[EbsDefaultEncryption]) -> Iterator[Result]:
    """New EBS volumes are encrypted by default in every region."""
    for s in settings:
        title = (f"EBS encryption by default is on in {s.region}" if s.enabled
                 else f"EBS encryption by default is off in {s.region}")
        yield Result.of(s.resource_id, passing=s.enabled, title=title,
                        data={"account_id": s.account_id, "region": s.region,
                              "EbsEncryptionByDefault": s.enabled})


ADMIN_PORTS_REPLACES = ("aws.ec2.security_group_admin_ports",)


def admin_ports_open_from(rules: Sequence[Mapping[str, Any]], anywhere: str) -> list[int]:
    """The admin ports (22, 3389) some ingress rule opens to `anywhere` (0.0.0.0/0 or ::/0), as
    Prowler and the CIS audit count them: an all-traffic rule (protocol -1) opens both, a TCP
    rule opens those its port range covers; UDP, ICMP and narrower sources open none."""
    ranges, key = ("Ipv6Ranges", "CidrIpv6") if ":" in anywhere else ("IpRanges", "CidrIp")
    opened: set[int] = set()
    for rule in rules:
        if not any(r.get(key) == anywhere for r in rule.get(ranges, [])):
            continue
        protocol = str(rule.get("IpProtocol", ""))
        if protocol == "-1":
            opened.update(ADMIN_PORTS)
        elif protocol in ("tcp", "6"):
            low, high = int(rule.get("FromPort", 0)), int(rule.get("ToPort", 65535))
            opened.update(port for port in ADMIN_PORTS if low <= port <= high)
    return sorted(opened)


def _judge_admin_ports(groups: list[SecurityGroup], anywhere: str) -> Iterator[Result]:
    for g in groups:
        ports = admin_ports_open_from(g.ingress, anywhere)
        label = f"Security group {g.group_id} ({g.name}) in {g.region}"
        title = (f"{label} allows " + ", ".join(f"{ADMIN_PORTS[p]} ({p})" for p in ports)
                 + f" from {anywhere}" if ports
                 else f"{label} allows no SSH or RDP from {anywhere}")
        yield Result.of(g.arn, passing=not ports, title=title,
                        data={"group_id": g.group_id, "name": g.name, "region": g.region,
                              "vpc_id": g.vpc_id, "source": anywhere, "ingress": g.ingress,
                              "open_admin_ports": ports})


@check(id="aws.ec2.security_group_admin_ports_ipv4", severity=Severity.HIGH,
       resource_type="aws.ec2.security_group", needs=collect_security_groups,
       replaces=ADMIN_PORTS_REPLACES, benchmarks={"cis_aws": ["5.2"]},
       remediation="Remove ingress rules allowing 0.0.0.0/0 to TCP 22 (SSH) or 3389 (RDP), "
                   "including all-traffic and port-range rules that cover them (`aws ec2 "
                   "revoke-security-group-ingress`); reach instances through SSM Session "
                   "Manager, or allow only your VPN's address range.")
def security_group_admin_ports_ipv4(groups: list[SecurityGroup]) -> Iterator[Result]:
    """Security groups do not open SSH or RDP to 0.0.0.0/0."""
    yield from _judge_admin_ports(groups, "0.0.0.0/0")


@check(id="aws.ec2.security_group_admin_ports_ipv6", severity=Severity.HIGH,
       resource_type="aws.ec2.security_group", needs=collect_security_groups,
       replaces=ADMIN_PORTS_REPLACES, benchmarks={"cis_aws": ["5.3"]},
       remediation="Remove ingress rules allowing ::/0 to TCP 22 (SSH) or 3389 (RDP), "
                   "including all-traffic and port-range rules that cover them (`aws ec2 "
                   "revoke-security-group-ingress`); reach instances through SSM Session "
                   "Manager, or allow only your VPN's IPv6 range.")
def security_group_admin_ports_ipv6(groups: list[SecurityGroup]) -> Iterator[Result]:
    """Security groups do not open SSH or RDP to ::/0."""
    yield from _judge_admin_ports(groups, "::/0")


@check(id="aws.ec2.security_group_admin_ports", severity=Severity.HIGH,
       resource_type="aws.ec2.security_group", needs=collect_security_groups,
       remediation="Deprecated alias, kept for one release: see "
                   "aws.ec2.security_group_admin_ports_ipv4 and "
                   "aws.ec2.security_group_admin_ports_ipv6.")
def security_group_admin_ports(groups: list[SecurityGroup]) -> Iterator[Result]:
    """Deprecated alias (one release): no SSH or RDP open to 0.0.0.0/0 or ::/0 (TCP or UDP)."""
    for g in groups:
        ports = open_admin_ports(g.ingress)
        label = f"Security group {g.group_id} ({g.name}) in {g.region}"
        title = (f"{label} allows "
                 + ", ".join(f"{ADMIN_PORTS[p]} ({p})" for p in ports) + " from the internet"
                 if ports else f"{label} allows no SSH or RDP from the internet")
        yield Result.of(g.arn, passing=not ports, title=title,
                        data={"group_id": g.group_id, "name": g.name, "region": g.region,
                              "vpc_id": g.vpc_id, "ingress": g.ingress,
                              "open_admin_ports": ports})


@check(id="aws.ec2.default_security_group_restricted", severity=Severity.MEDIUM,
       resource_type="aws.ec2.security_group", needs=collect_security_groups,
       benchmarks={"cis_aws": ["5.4"]},
       remediation="Remove every inbound and outbound rule from each VPC's default security "
                   "group (`aws ec2 revoke-security-group-ingress` / `revoke-security-group-"
                   "egress`) and give resources purpose-made groups instead.")
def default_security_group_restricted(groups: list[SecurityGroup]) -> Iterator[Result]:
    """The default security group of every VPC allows no inbound or outbound traffic."""
    for g in groups:
        if g.name != "default":
            continue
        label = f"Default security group {g.group_id} of {g.vpc_id} in {g.region}"
        rules = [*(["inbound"] if g.ingress else []), *(["outbound"] if g.egress else [])]
        title = (f"{label} has {' and '.join(rules)} rules" if rules
                 else f"{label} allows no traffic")
        yield Result.of(g.arn, passing=not rules, title=title,
                        data={"group_id": g.group_id, "region": g.region, "vpc_id": g.vpc_id,
                              "ingress": g.ingress, "egress": g.egress})


# --- network ACLs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkAcl:
    """One network ACL and its entries."""

    acl_id: str
    arn: str
    region: str
    vpc_id: str | None
    is_default: bool
    entries: list[dict[str, Any]] = field(default_factory=list)


@collector(scoped=True)
def collect_network_acls(session: AwsSession, region: str) -> list[NetworkAcl]:
    """Every network ACL in the region with its entries."""
    partition = session.identity().partition
    acls = []
    with session.service("ec2", region) as ec2:
        for page in ec2.get_paginator("describe_network_acls").paginate():
            for acl in page["NetworkAcls"]:
                acls.append(NetworkAcl(
                    acl_id=acl["NetworkAclId"],
                    arn=(f"arn:{partition}:ec2:{region}:{acl['OwnerId']}"
                         f":network-acl/{acl['NetworkAclId']}"),
                    region=region, vpc_id=acl.get("VpcId"),
                    is_default=bool(acl.get("IsDefault", False)),
                    entries=sorted((dict(e) for e in acl.get("Entries", [])),
                                   key=lambda e: (bool(e.get("Egress")), e.get("RuleNumber", 0))),
                ))
    return sorted(acls, key=lambda a: a.arn)


def _entry_covers(entry: Mapping[str, Any], port: int) -> bool:
    """Whether a NACL entry's protocol and port range include the TCP port."""
    protocol = str(entry.get("Protocol", ""))
    if protocol == "-1":
        return True
    if protocol not in ("6", "tcp"):
        return False
    ports = entry.get("PortRange") or {}
    return int(ports.get("From", 0)) <= port <= int(ports.get("To", 65535))


def nacl_open_admin_ports(entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """The admin ports a NACL lets in from anywhere: per port and per source (0.0.0.0/0,
    ::/0), the lowest-numbered inbound entry that matches decides, as AWS evaluates them."""
    inbound = sorted((e for e in entries if not e.get("Egress")),
                     key=lambda e: int(e.get("RuleNumber", 0)))
    opened = set()
    for port in ADMIN_PORTS:
        for cidr_key, anywhere in (("CidrBlock", "0.0.0.0/0"), ("Ipv6CidrBlock", "::/0")):
            for entry in inbound:
                if entry.get(cidr_key) == anywhere and _entry_covers(entry, port):
                    if entry.get("RuleAction") == "allow":
                        opened.add(port)
                    break
    return sorted(opened)


@check(id="aws.ec2.network_acl_admin_ports", severity=Severity.MEDIUM,
       resource_type="aws.ec2.network_acl", needs=collect_network_acls,
       benchmarks={"cis_aws": ["5.1"]},
       remediation="Add inbound deny entries for TCP 22 and 3389 from 0.0.0.0/0 and ::/0 ahead "
                   "of the allow-all entry (a lower rule number), or replace the allow-all "
                   "entry with the ports and sources each subnet needs, e.g. `aws ec2 "
                   "create-network-acl-entry --network-acl-id ACL --ingress --rule-number 50 "
                   "--protocol tcp --port-range From=22,To=22 --cidr-block 0.0.0.0/0 "
                   "--rule-action deny`.")
def network_acl_admin_ports(acls: list[NetworkAcl]) -> Iterator[Result]:
    """Network ACLs do not let SSH or RDP in from the whole internet."""
    for a in acls:
        ports = nacl_open_admin_ports(a.entries)
        label = f"Network ACL {a.acl_id}{' (default)' if a.is_default else ''} in {a.region}"
        title = (f"{label} allows " + ", ".join(f"{ADMIN_PORTS[p]} ({p})" for p in ports)
                 + " from the internet" if ports
                 else f"{label} allows no SSH or RDP from the internet")
        yield Result.of(a.arn, passing=not ports, title=title,
                        data={"acl_id": a.acl_id, "region": a.region, "vpc_id": a.vpc_id,
                              "is_default": a.is_default,
                              "inbound_entries": [e for e in a.entries if not e.get("Egress")],
                              "open_admin_ports": ports})


# --- VPC flow logs ---------------------------------------------------------------------------

# CIS asks for flow logs that capture at least rejected traffic.
_FLOW_TRAFFIC_LOGGING_REJECTS = frozenset({"ALL", "REJECT"})


@dataclass(frozen=True)
class Vpc:
    """One VPC and the flow logs attached to it."""

    vpc_id: str
    arn: str
    region: str
    is_default: bool
    cidr_block: str | None
    flow_logs: list[dict[str, Any]] = field(default_factory=list)


@collector(scoped=True)
def collect_vpcs(session: AwsSession, region: str) -> list[Vpc]:
    """Every VPC in the region with its flow logs."""
    partition = session.identity().partition
    with session.service("ec2", region) as ec2:
        vpcs = [v for page in ec2.get_paginator("describe_vpcs").paginate() for v in page["Vpcs"]]
        flow_logs: dict[str, list[dict[str, Any]]] = {}
        for page in ec2.get_paginator("describe_flow_logs").paginate():
            for log in page["FlowLogs"]:
                flow_logs.setdefault(log.get("ResourceId", ""), []).append({
                    key: log.get(key) for key in (
                        "FlowLogId", "FlowLogStatus", "TrafficType", "LogDestinationType",
                        "LogDestination", "LogGroupName", "DeliverLogsStatus")})
    return sorted((Vpc(
        vpc_id=v["VpcId"],
        arn=f"arn:{partition}:ec2:{region}:{v['OwnerId']}:vpc/{v['VpcId']}",
        region=region, is_default=bool(v.get("IsDefault", False)),
        cidr_block=v.get("CidrBlock"),
        flow_logs=sorted(flow_logs.get(v["VpcId"], []), key=lambda f: str(f["FlowLogId"])),
    ) for v in vpcs), key=lambda v: v.arn)


@check(id="aws.ec2.vpc_flow_logs", severity=Severity.MEDIUM,
       resource_type="aws.ec2.vpc", needs=collect_vpcs,
       benchmarks={"cis_aws": ["3.7"]},
       remediation="Create an active flow log on the VPC capturing at least rejected traffic, "
                   "e.g. `aws ec2 create-flow-logs --resource-type VPC --resource-ids VPC_ID "
                   "--traffic-type ALL --log-destination-type s3 --log-destination "
                   "arn:aws:s3:::BUCKET`.")
def vpc_flow_logs(vpcs: list[Vpc]) -> Iterator[Result]:
    """VPCs have an active flow log that records rejected traffic."""
    for v in vpcs:
        label = f"VPC {v.vpc_id}{' (default)' if v.is_default else ''} in {v.region}"
        active = [f for f in v.flow_logs if f.get("FlowLogStatus") == "ACTIVE"]
        logging = [f for f in active if f.get("TrafficType") in _FLOW_TRAFFIC_LOGGING_REJECTS]
        if logging:
            title = f"{label} has flow log {logging[0]['FlowLogId']} recording " + (
                "all traffic" if logging[0].get("TrafficType") == "ALL" else "rejected traffic")
        elif active:
            title = f"{label} has flow logs of accepted traffic only"
        else:
            title = f"{label} has no active flow log"
        yield Result.of(v.arn, passing=bool(logging), title=title,
                        data={"vpc_id": v.vpc_id, "region": v.region, "is_default": v.is_default,
                              "cidr_block": v.cidr_block, "flow_logs": v.flow_logs})


# --- instance metadata service ---------------------------------------------------------------

@dataclass(frozen=True)
class Instance:
    """One EC2 instance and its instance metadata service options."""

    instance_id: str
    arn: str
    region: str
    state: str
    name: str | None
    metadata_options: dict[str, Any] = field(default_factory=dict)
    instance_profile: str | None = None  # the ARN of its IAM instance profile

    @property
    def requires_imdsv2(self) -> bool:
        """Session tokens are required, or the metadata endpoint is off altogether."""
        return (self.metadata_options.get("HttpTokens") == "required"
                or self.metadata_options.get("HttpEndpoint") == "disabled")


@collector(scoped=True)
def collect_instances(session: AwsSession, region: str) -> list[Instance]:
    """Every EC2 instance in the region that is not terminated."""
    partition = session.identity().partition
    instances = []
    with session.service("ec2", region) as ec2:
        for page in ec2.get_paginator("describe_instances").paginate():
            for reservation in page["Reservations"]:
                for i in reservation["Instances"]:
                    state = i.get("State", {}).get("Name", "")
                    if state in ("terminated", "shutting-down"):
                        continue
                    tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                    instances.append(Instance(
                        instance_id=i["InstanceId"],
                        arn=(f"arn:{partition}:ec2:{region}:{reservation['OwnerId']}"
                             f":instance/{i['InstanceId']}"),
                        region=region, state=state, name=tags.get("Name"),
                        metadata_options={k: v for k, v in i.get("MetadataOptions", {}).items()
                                          if k in ("HttpTokens", "HttpEndpoint",
                                                   "HttpPutResponseHopLimit")},
                        instance_profile=(i.get("IamInstanceProfile") or {}).get("Arn"),
                    ))
    return sorted(instances, key=lambda i: i.arn)


@check(id="aws.ec2.instance_imdsv2", severity=Severity.HIGH,
       resource_type="aws.ec2.instance", needs=collect_instances,
       benchmarks={"cis_aws": ["5.6"]},
       remediation="Require IMDSv2 session tokens on the instance: `aws ec2 "
                   "modify-instance-metadata-options --instance-id ID --http-tokens required "
                   "--http-endpoint enabled`; set it in launch templates and as the account "
                   "default (`aws ec2 modify-instance-metadata-defaults --http-tokens required`).")
def instance_imdsv2(instances: list[Instance]) -> Iterator[Result]:
    """EC2 instances require IMDSv2, so SSRF cannot read instance role credentials via IMDSv1."""
    for i in instances:
        label = f"Instance {i.instance_id}{f' ({i.name})' if i.name else ''} in {i.region}"
        if i.metadata_options.get("HttpEndpoint") == "disabled":
            title = f"{label} has the instance metadata service turned off"
        elif i.requires_imdsv2:
            title = f"{label} requires IMDSv2 session tokens"
        else:
            title = f"{label} accepts IMDSv1 requests without a session token"
        yield Result.of(i.arn, passing=i.requires_imdsv2, title=title,
                        data={"instance_id": i.instance_id, "region": i.region,
                              "state": i.state, "name": i.name,
                              "MetadataOptions": i.metadata_options})


@check(id="aws.ec2.instance_profile_attached", severity=Severity.MEDIUM,
       resource_type="aws.ec2.instance", needs=collect_instances,
       benchmarks={"cis_aws": ["1.18"]},
       remediation="Give the instance an IAM role through an instance profile instead of "
                   "access keys on disk, e.g. `aws ec2 associate-iam-instance-profile "
                   "--instance-id ID --iam-instance-profile Name=PROFILE`, then delete any "
                   "keys stored on it.")
def instance_profile_attached(instances: list[Instance]) -> Iterator[Result]:
    """EC2 instances reach AWS through an IAM instance role, not stored access keys."""
    for i in instances:
        label = f"Instance {i.instance_id}{f' ({i.name})' if i.name else ''} in {i.region}"
        title = (f"{label} has instance profile {i.instance_profile.rsplit('/', 1)[-1]}"
                 if i.instance_profile else f"{label} has no IAM instance profile")
        yield Result.of(i.arn, passing=bool(i.instance_profile), title=title,
                        data={"instance_id": i.instance_id, "region": i.region,
                              "state": i.state, "name": i.name,
                              "instance_profile": i.instance_profile})
