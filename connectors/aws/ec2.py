"""Amazon EC2: EBS encryption by default, and security groups open to the internet."""

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


@check(id="aws.ec2.security_group_admin_ports", severity=Severity.HIGH,
       resource_type="aws.ec2.security_group", needs=collect_security_groups,
       remediation="Remove ingress rules allowing 0.0.0.0/0 or ::/0 to port 22 (SSH) or 3389 "
                   "(RDP), including all-traffic and wide port-range rules; reach instances "
                   "through SSM Session Manager, or allow only your VPN's address range.")
def security_group_admin_ports(groups: list[SecurityGroup]) -> Iterator[Result]:
    """Security groups do not open SSH or RDP to the whole internet."""
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
