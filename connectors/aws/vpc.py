"""Amazon VPC peering: routes to a peered VPC are as narrow as they can be (CIS AWS v3.0 5.5).

Judged as Prowler judges it: a peering connection fails when a route table sends 0.0.0.0/0, or
the whole CIDR block of either VPC, through it; routes to a subnet of the peer pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from connectors.aws.session import AwsSession
from connectors.base import Result, Severity, check, collector


@dataclass(frozen=True)
class PeeringConnection:
    """One VPC peering connection, its two VPCs' CIDR blocks, and the routes through it."""

    peering_id: str
    arn: str
    region: str
    status: str
    requester: dict[str, str | None]  # vpc_id, owner_id, cidr
    accepter: dict[str, str | None]
    routes: list[dict[str, str]] = field(default_factory=list)  # route_table_id, destination

    @property
    def whole_vpc_routes(self) -> list[dict[str, str]]:
        """Routes sending everything, or a whole peered VPC's block, through the connection."""
        wide = {"0.0.0.0/0", self.requester.get("cidr"), self.accepter.get("cidr")}
        return [r for r in self.routes if r["destination"] in wide]


def _side(info: dict[str, object]) -> dict[str, str | None]:
    return {"vpc_id": str(info.get("VpcId") or "") or None,
            "owner_id": str(info.get("OwnerId") or "") or None,
            "cidr": str(info.get("CidrBlock") or "") or None}


@collector(scoped=True)
def collect_peering_connections(session: AwsSession, region: str) -> list[PeeringConnection]:
    """The region's peering connections and every route table route through one of them."""
    partition = session.identity().partition
    account_id = session.identity().account_id
    with session.service("ec2", region) as ec2:
        peerings = [p for page in ec2.get_paginator(
            "describe_vpc_peering_connections").paginate()
            for p in page["VpcPeeringConnections"]]
        routes: dict[str, list[dict[str, str]]] = {}
        if peerings:
            for page in ec2.get_paginator("describe_route_tables").paginate():
                for table in page["RouteTables"]:
                    for route in table.get("Routes", []):
                        target = route.get("VpcPeeringConnectionId")
                        destination = route.get("DestinationCidrBlock") or route.get(
                            "DestinationIpv6CidrBlock")
                        if target and destination:
                            routes.setdefault(target, []).append({
                                "route_table_id": table["RouteTableId"],
                                "destination": destination})
    found = []
    for p in peerings:
        requester = _side(p.get("RequesterVpcInfo") or {})
        found.append(PeeringConnection(
            peering_id=p["VpcPeeringConnectionId"],
            arn=(f"arn:{partition}:ec2:{region}:{requester['owner_id'] or account_id}"
                 f":vpc-peering-connection/{p['VpcPeeringConnectionId']}"),
            region=region, status=str((p.get("Status") or {}).get("Code") or ""),
            requester=requester, accepter=_side(p.get("AccepterVpcInfo") or {}),
            routes=sorted(routes.get(p["VpcPeeringConnectionId"], []),
                          key=lambda r: (r["route_table_id"], r["destination"]))))
    return sorted(found, key=lambda p: p.arn)


@check(id="aws.ec2.vpc_peering_least_access", severity=Severity.MEDIUM,
       resource_type="aws.ec2.vpc_peering_connection", needs=collect_peering_connections,
       benchmarks={"cis_aws": ["5.5"]},
       remediation="Route only the subnets that must talk through the peering connection: "
                   "replace a route to the peer's whole VPC block (or 0.0.0.0/0) with routes "
                   "to the needed subnets, e.g. `aws ec2 delete-route --route-table-id RTB "
                   "--destination-cidr-block 10.30.0.0/16` then `aws ec2 create-route "
                   "--route-table-id RTB --destination-cidr-block 10.30.1.0/24 "
                   "--vpc-peering-connection-id PCX`.")
def vpc_peering_least_access(peerings: list[PeeringConnection]) -> Iterator[Result]:
    """VPC peering routes reach only the subnets that need the peer, not whole VPCs."""
    for p in peerings:
        wide = p.whole_vpc_routes
        label = (f"Peering {p.peering_id} ({p.requester['vpc_id']} to "
                 f"{p.accepter['vpc_id']}) in {p.region}")
        title = (f"{label} is routed to whole VPCs: " + ", ".join(
                     f"{r['destination']} in {r['route_table_id']}" for r in wide) if wide
                 else f"{label} is routed only to parts of the peered VPCs" if p.routes
                 else f"{label} has no routes")
        yield Result.of(p.arn, passing=not wide, title=title,
                        data={"peering_id": p.peering_id, "region": p.region,
                              "status": p.status, "requester": p.requester,
                              "accepter": p.accepter, "routes": p.routes,
                              "whole_vpc_routes": wide})
