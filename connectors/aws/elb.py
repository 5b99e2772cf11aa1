"""Elastic Load Balancing (v2): listeners accept clients over HTTPS or TLS only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector

_ENCRYPTED = frozenset({"HTTPS", "TLS"})
_PLAIN_HTTP = "HTTP"


@dataclass(frozen=True)
class Listener:
    """One listener of an application, network or gateway load balancer."""

    arn: str
    region: str
    load_balancer: str
    load_balancer_type: str
    scheme: str
    protocol: str
    port: int
    ssl_policy: str | None
    certificates: list[str] = field(default_factory=list)
    default_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def redirects_to_https(self) -> bool:
        """An HTTP listener whose default action sends every client to HTTPS."""
        return bool(self.default_actions) and all(
            a.get("Type") == "redirect"
            and (a.get("RedirectConfig") or {}).get("Protocol") == "HTTPS"
            for a in self.default_actions)


@collector(scoped=True)
def collect_listeners(session: AwsSession, region: str) -> list[Listener]:
    """Every listener of every v2 load balancer (ALB, NLB, GWLB) in the region."""
    with session.service("elbv2", region) as elbv2:
        balancers = [lb for page in elbv2.get_paginator("describe_load_balancers").paginate()
                     for lb in page["LoadBalancers"]]
    per_balancer = session.fan_out(lambda lb: _read_listeners(session, region, lb), balancers)
    return sorted((listener for found in per_balancer for listener in found),
                  key=lambda listener: listener.arn)


def _read_listeners(session: AwsSession, region: str, lb: dict[str, Any]) -> list[Listener]:
    with session.service("elbv2", region) as elbv2:
        pages = elbv2.get_paginator("describe_listeners").paginate(
            LoadBalancerArn=lb["LoadBalancerArn"])
        listed = [listener for page in pages for listener in page["Listeners"]]
    return [Listener(
        arn=listener["ListenerArn"], region=region, load_balancer=lb["LoadBalancerName"],
        load_balancer_type=str(lb.get("Type", "")), scheme=str(lb.get("Scheme", "")),
        protocol=str(listener.get("Protocol", "")), port=int(listener.get("Port", 0)),
        ssl_policy=listener.get("SslPolicy") if listener.get("Protocol") in _ENCRYPTED else None,
        certificates=sorted(c["CertificateArn"] for c in listener.get("Certificates", [])),
        default_actions=[{k: v for k, v in action.items()
                          if k in ("Type", "RedirectConfig", "TargetGroupArn")}
                         for action in listener.get("DefaultActions", [])],
    ) for listener in listed]


@check(id="aws.elbv2.https_listeners", severity=Severity.HIGH,
       resource_type="aws.elbv2.listener", needs=collect_listeners,
       remediation="Serve clients over HTTPS (ALB) or TLS (NLB) with an ACM certificate and a "
                   "current security policy (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06); turn a "
                   "plain HTTP listener into a redirect: `aws elbv2 modify-listener "
                   "--listener-arn ARN --default-actions "
                   "'Type=redirect,RedirectConfig={Protocol=HTTPS,Port=443,"
                   "StatusCode=HTTP_301}'`.")
def https_listeners(listeners: list[Listener]) -> Iterator[Result]:
    """Load balancer listeners accept clients over HTTPS or TLS, or redirect HTTP to HTTPS."""
    for lis in listeners:
        label = (f"Listener {lis.protocol}:{lis.port} of {lis.load_balancer_type} load "
                 f"balancer {lis.load_balancer} ({lis.region})")
        data = {"load_balancer": lis.load_balancer, "type": lis.load_balancer_type,
                "scheme": lis.scheme, "region": lis.region, "protocol": lis.protocol,
                "port": lis.port, "ssl_policy": lis.ssl_policy,
                "certificates": lis.certificates, "default_actions": lis.default_actions}
        if lis.protocol in _ENCRYPTED:
            yield Result.of(lis.arn, passing=True, data=data,
                            title=f"{label} terminates {lis.protocol} ({lis.ssl_policy})")
        elif lis.protocol == _PLAIN_HTTP:
            redirects = lis.redirects_to_https
            title = (f"{label} redirects every request to HTTPS" if redirects
                     else f"{label} serves plain HTTP")
            yield Result.of(lis.arn, passing=redirects, title=title, data=data)
        else:
            yield Result.not_applicable(
                lis.arn, f"{label} passes {lis.protocol} through: encryption is up to the "
                "targets", data)
