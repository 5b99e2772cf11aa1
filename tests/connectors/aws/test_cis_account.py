"""The CIS AWS v3.0 recommendations added last (1.2, 1.18, 1.21, 2.1.3, 5.5), on plain
snapshots."""

from __future__ import annotations

from connectors.aws import account, ec2, iam_access, macie, vpc
from connectors.aws.account import SecurityContact
from connectors.aws.ec2 import Instance
from connectors.aws.iam_access import IdentityProviders
from connectors.aws.macie import RegionMacie
from connectors.aws.vpc import PeeringConnection
from connectors.base import Status

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
CONTACT = {"Name": "Acme Security", "Title": "Security team",
           "EmailAddress": "security@acme.example.com", "PhoneNumber": "+15555550100"}


def contact(value):
    [result] = account.security_contact.judge(SecurityContact(ACCOUNT, ROOT, value))
    assert result.resource_id == ROOT
    return result


def test_a_registered_security_contact_passes_and_none_fails():
    registered = contact(CONTACT)
    assert registered.status is Status.PASSING
    assert "Acme Security <security@acme.example.com>" in registered.title
    assert registered.data["security_contact"] == CONTACT
    missing = contact(None)
    assert missing.status is Status.FAILING
    assert missing.title == "The account has no security contact registered"
    assert contact({**CONTACT, "PhoneNumber": ""}).status is Status.FAILING


def instance(instance_id, profile):
    return Instance(instance_id=instance_id, region="us-east-1", state="running", name="web",
                    arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance_id}",
                    instance_profile=profile)


def test_instances_need_an_instance_profile():
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/app"
    results = ec2.instance_profile_attached.judge([instance("i-1", profile),
                                                   instance("i-2", None)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]
    assert "has instance profile app" in results[0].title
    assert "has no IAM instance profile" in results[1].title
    assert results[0].data["instance_profile"] == profile


def test_identity_federation_needs_a_saml_provider():
    saml = f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_1234_DO_NOT_DELETE"
    [federated] = iam_access.identity_federation.judge(IdentityProviders(ACCOUNT, ROOT, [saml]))
    assert federated.status is Status.PASSING and "AWSSSO_1234" in federated.title
    [alone] = iam_access.identity_federation.judge(IdentityProviders(ACCOUNT, ROOT, []))
    assert alone.status is Status.FAILING
    assert alone.title == "The account has no SAML identity provider"


def test_macie_must_be_enabled_in_each_region():
    results = macie.macie_enabled.judge([RegionMacie(ACCOUNT, "us-east-1", "ENABLED"),
                                         RegionMacie(ACCOUNT, "eu-west-1", "PAUSED"),
                                         RegionMacie(ACCOUNT, "ap-south-1", None)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING, Status.FAILING]
    assert [r.title for r in results] == ["Macie is enabled in us-east-1",
                                          "Macie is paused in eu-west-1",
                                          "Macie is not enabled in ap-south-1"]
    assert results[1].resource_id == f"aws:account:{ACCOUNT}:region:eu-west-1"


def peering(*destinations):
    return PeeringConnection(
        peering_id="pcx-1", arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc-peering-connection/pcx-1",
        region="us-east-1", status="active",
        requester={"vpc_id": "vpc-a", "owner_id": ACCOUNT, "cidr": "10.20.0.0/16"},
        accepter={"vpc_id": "vpc-b", "owner_id": ACCOUNT, "cidr": "10.30.0.0/16"},
        routes=[{"route_table_id": "rtb-1", "destination": d} for d in destinations])


def test_peering_routes_to_a_whole_vpc_or_everywhere_fail_and_subnets_pass():
    for destinations, status in ((["10.30.1.0/24"], Status.PASSING),
                                 ([], Status.PASSING),
                                 (["10.30.0.0/16"], Status.FAILING),  # the accepter's block
                                 (["10.20.0.0/16"], Status.FAILING),  # the requester's
                                 (["10.30.1.0/24", "0.0.0.0/0"], Status.FAILING)):
        [result] = vpc.vpc_peering_least_access.judge([peering(*destinations)])
        assert result.status is status, destinations
        assert result.data["routes"] == [{"route_table_id": "rtb-1", "destination": d}
                                         for d in destinations]
    [wide] = vpc.vpc_peering_least_access.judge([peering("10.30.0.0/16")])
    assert "routed to whole VPCs: 10.30.0.0/16 in rtb-1" in wide.title
