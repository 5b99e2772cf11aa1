"""The AWS checks as pure functions on plain snapshots: no network, no boto3."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from connectors.aws import AwsConnector, cloudtrail, ec2, iam, rds, s3
from connectors.aws.cloudtrail import Trail, TrailInventory
from connectors.aws.ec2 import EbsDefaultEncryption, SecurityGroup
from connectors.aws.iam import AccountSummary, PasswordPolicy, User
from connectors.aws.rds import DbInstance
from connectors.aws.s3 import Bucket
from connectors.base import Status

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALL_BLOCKED = dict.fromkeys(s3.PUBLIC_ACCESS_FLAGS, True)


def statuses(results):
    return {r.resource_id: r.status for r in results}


def titles(results):
    return {r.resource_id: r.title for r in results}


def bucket(name, **settings):
    return Bucket(name=name, arn=f"arn:aws:s3:::{name}", region="us-east-1", **settings)


def sse(algorithm):
    return [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]


def test_connector_lists_exactly_the_ten_checks():
    assert [c.id for c in AwsConnector.checks] == [
        "aws.s3.bucket_default_encryption", "aws.s3.bucket_public_access_block",
        "aws.s3.bucket_versioning", "aws.iam.root_account_mfa", "aws.iam.console_users_mfa",
        "aws.iam.password_policy_strength", "aws.cloudtrail.multi_region_trail",
        "aws.ec2.ebs_encryption_by_default", "aws.ec2.security_group_admin_ports",
        "aws.rds.storage_encrypted",
    ]
    for chk in AwsConnector.checks:
        assert chk.title and chk.remediation and chk.resource_type.startswith("aws.")


# --- S3 -------------------------------------------------------------------------------------

def test_bucket_default_encryption_passes_sse_s3_and_kms_and_fails_without_rules():
    results = s3.bucket_default_encryption.judge([
        bucket("acme-kms", encryption_rules=sse("aws:kms")),
        bucket("acme-s3", encryption_rules=sse("AES256")),
        bucket("acme-plain"),
    ])
    assert statuses(results) == {"arn:aws:s3:::acme-kms": Status.PASSING,
                                 "arn:aws:s3:::acme-s3": Status.PASSING,
                                 "arn:aws:s3:::acme-plain": Status.FAILING}
    t = titles(results)
    assert "SSE-KMS" in t["arn:aws:s3:::acme-kms"]
    assert "SSE-S3" in t["arn:aws:s3:::acme-s3"]
    assert "no default encryption" in t["arn:aws:s3:::acme-plain"]
    assert results[0].data["rules"] == sse("aws:kms")


def test_bucket_whose_setting_cannot_be_read_is_an_error_naming_the_permission():
    denied = bucket("acme-locked", read_errors={
        "encryption": "missing permission s3:GetEncryptionConfiguration"})
    [result] = s3.bucket_default_encryption.judge([denied])
    assert result.status is Status.ERROR
    assert "s3:GetEncryptionConfiguration" in result.title
    # the other settings of the same bucket are still judged
    [versioning] = s3.bucket_versioning.judge([denied])
    assert versioning.status is Status.FAILING


def test_bucket_public_access_block_needs_all_four_flags():
    partial = {**ALL_BLOCKED, "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
    results = s3.bucket_public_access_block.judge([
        bucket("acme-private", public_access_block=ALL_BLOCKED),
        bucket("acme-site", public_access_block=partial),
        bucket("acme-open", public_access_block=None),
    ])
    assert statuses(results) == {"arn:aws:s3:::acme-private": Status.PASSING,
                                 "arn:aws:s3:::acme-site": Status.FAILING,
                                 "arn:aws:s3:::acme-open": Status.FAILING}
    t = titles(results)
    assert "blocks all public access" in t["arn:aws:s3:::acme-private"]
    assert "BlockPublicPolicy, RestrictPublicBuckets off" in t["arn:aws:s3:::acme-site"]
    assert "no Block Public Access configuration" in t["arn:aws:s3:::acme-open"]


def test_bucket_versioning_passes_only_when_enabled():
    results = s3.bucket_versioning.judge([
        bucket("acme-on", versioning={"Status": "Enabled"}),
        bucket("acme-paused", versioning={"Status": "Suspended"}),
        bucket("acme-never"),
    ])
    assert statuses(results) == {"arn:aws:s3:::acme-on": Status.PASSING,
                                 "arn:aws:s3:::acme-paused": Status.FAILING,
                                 "arn:aws:s3:::acme-never": Status.FAILING}
    t = titles(results)
    assert "suspended" in t["arn:aws:s3:::acme-paused"]
    assert "never" in t["arn:aws:s3:::acme-never"]


# --- IAM ------------------------------------------------------------------------------------

def test_root_account_mfa_is_judged_from_the_account_summary():
    def summary(enabled):
        return AccountSummary(account_id=ACCOUNT, root_arn=ROOT, root_mfa_enabled=enabled,
                              root_access_keys_present=False)

    [passing] = iam.root_account_mfa.judge(summary(True))
    [failing] = iam.root_account_mfa.judge(summary(False))
    assert (passing.resource_id, passing.status) == (ROOT, Status.PASSING)
    assert (failing.resource_id, failing.status) == (ROOT, Status.FAILING)
    assert "no MFA" in failing.title
    assert failing.data["AccountMFAEnabled"] == 0


def test_console_users_need_mfa_and_programmatic_users_are_not_applicable():
    def user(name, console, devices=()):
        return User(name=name, arn=f"arn:aws:iam::{ACCOUNT}:user/{name}", created=None,
                    console_password=console, password_last_used=None,
                    mfa_devices=list(devices))

    results = iam.console_users_mfa.judge([
        user("alice", True, [f"arn:aws:iam::{ACCOUNT}:mfa/alice"]),
        user("bob", True),
        user("ci-bot", False),
    ])
    arn = f"arn:aws:iam::{ACCOUNT}:user/"
    assert statuses(results) == {arn + "alice": Status.PASSING, arn + "bob": Status.FAILING,
                                 arn + "ci-bot": Status.NOT_APPLICABLE}
    t = titles(results)
    assert "has MFA" in t[arn + "alice"]
    assert "bob has no MFA device" in t[arn + "bob"]
    assert "no console password" in t[arn + "ci-bot"]


STRONG_POLICY = {"MinimumPasswordLength": 14, "RequireUppercaseCharacters": True,
                 "RequireLowercaseCharacters": True, "RequireNumbers": True,
                 "RequireSymbols": True, "ExpirePasswords": True, "MaxPasswordAge": 90,
                 "PasswordReusePrevention": 24}


def judge_policy(policy):
    [result] = iam.password_policy_strength.judge(
        PasswordPolicy(account_id=ACCOUNT, root_arn=ROOT, policy=policy))
    assert result.resource_id == ROOT
    return result


def test_password_policy_meeting_cis_passes():
    result = judge_policy(STRONG_POLICY)
    assert result.status is Status.PASSING
    assert "meets" in result.title
    assert result.data["missing"] == []


def test_weak_password_policy_fails_naming_every_missing_requirement():
    weak = {**STRONG_POLICY, "MinimumPasswordLength": 8, "RequireSymbols": False,
            "ExpirePasswords": False, "MaxPasswordAge": 0, "PasswordReusePrevention": 5}
    result = judge_policy(weak)
    assert result.status is Status.FAILING
    for words in ("minimum length 14 (is 8)", "symbols", "expiry within 90 days",
                  "reuse prevention of 24 (is 5)"):
        assert words in result.title
    assert "uppercase" not in result.title


@pytest.mark.parametrize("age", [0, 91, 365])
def test_password_policy_expiry_must_be_between_1_and_90_days(age):
    assert judge_policy({**STRONG_POLICY, "MaxPasswordAge": age}).status is Status.FAILING


def test_missing_password_policy_fails():
    result = judge_policy(None)
    assert result.status is Status.FAILING
    assert "no password policy" in result.title


# --- CloudTrail -----------------------------------------------------------------------------

def trail(name, *, multi_region, logging):
    return Trail(name=name, arn=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{name}",
                 home_region="us-east-1", is_multi_region=multi_region, is_logging=logging,
                 s3_bucket="acme-trail-logs", is_organization_trail=False,
                 log_file_validation=True, kms_key_id=None)


def judge_trails(*trails):
    [result] = cloudtrail.multi_region_trail.judge(
        TrailInventory(account_id=ACCOUNT, root_arn=ROOT, region="us-east-1",
                       trails=list(trails)))
    assert result.resource_id == ROOT
    return result


def test_a_logging_multi_region_trail_passes():
    result = judge_trails(trail("org", multi_region=True, logging=True),
                          trail("local", multi_region=False, logging=True))
    assert result.status is Status.PASSING
    assert "org is logging" in result.title
    assert [t["name"] for t in result.data["trails"]] == ["org", "local"]


def test_stopped_or_single_region_trails_fail():
    stopped = judge_trails(trail("org", multi_region=True, logging=False),
                           trail("local", multi_region=False, logging=True))
    assert stopped.status is Status.FAILING
    assert "org stopped" in stopped.title
    single = judge_trails(trail("local", multi_region=False, logging=True))
    assert single.status is Status.FAILING
    assert "single-region" in single.title
    none = judge_trails()
    assert none.status is Status.FAILING
    assert "no CloudTrail trail" in none.title


# --- EC2 ------------------------------------------------------------------------------------

def test_ebs_encryption_by_default_is_judged_per_region():
    results = ec2.ebs_encryption_by_default.judge([
        EbsDefaultEncryption(account_id=ACCOUNT, region="us-east-1", enabled=True),
        EbsDefaultEncryption(account_id=ACCOUNT, region="eu-west-1", enabled=False),
    ])
    on, off = f"aws:account:{ACCOUNT}:region:us-east-1", f"aws:account:{ACCOUNT}:region:eu-west-1"
    assert statuses(results) == {on: Status.PASSING, off: Status.FAILING}
    assert "off in eu-west-1" in titles(results)[off]


def group(group_id, *rules):
    return SecurityGroup(group_id=group_id, name=group_id, vpc_id="vpc-1", region="us-east-1",
                         arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{group_id}",
                         ingress=list(rules))


def rule(protocol, low, high, cidr="0.0.0.0/0"):
    ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {
        "IpRanges": [{"CidrIp": cidr}]}
    ports = {} if protocol == "-1" else {"FromPort": low, "ToPort": high}
    return {"IpProtocol": protocol, **ports, **ranges}


@pytest.mark.parametrize(("rules", "ports"), [
    ([rule("tcp", 22, 22)], [22]),
    ([rule("tcp", 3389, 3389, "::/0")], [3389]),
    ([rule("-1", None, None)], [22, 3389]),
    ([rule("tcp", 0, 1024)], [22]),
    ([rule("tcp", 20, 4000, "::/0")], [22, 3389]),
    ([rule("udp", 3389, 3389)], [3389]),
    ([rule("6", 22, 22)], [22]),
])
def test_security_group_open_to_the_internet_on_admin_ports_fails(rules, ports):
    [result] = ec2.security_group_admin_ports.judge([group("sg-open", *rules)])
    assert result.status is Status.FAILING
    assert result.data["open_admin_ports"] == ports
    for port in ports:
        assert f"({port})" in result.title
    assert "from the internet" in result.title


@pytest.mark.parametrize("rules", [
    [],
    [rule("tcp", 443, 443), rule("tcp", 80, 80, "::/0")],
    [rule("tcp", 22, 22, "10.0.0.0/8"), rule("tcp", 3389, 3389, "203.0.113.0/24")],
    [rule("-1", None, None, "10.0.0.0/16")],
    [rule("icmp", -1, -1)],
    [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "UserIdGroupPairs": [{"GroupId": "sg-bastion"}]}],
])
def test_security_group_without_internet_admin_access_passes(rules):
    [result] = ec2.security_group_admin_ports.judge([group("sg-closed", *rules)])
    assert result.status is Status.PASSING
    assert "allows no SSH or RDP" in result.title
    assert result.resource_id == f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-closed"


# --- RDS ------------------------------------------------------------------------------------

def test_rds_storage_encryption_is_judged_per_instance():
    def db(name, encrypted):
        return DbInstance(identifier=name, arn=f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}",
                          region="us-east-1", engine="postgres", storage_encrypted=encrypted,
                          kms_key_id="alias/aws/rds" if encrypted else None, cluster=None)

    results = rds.storage_encrypted.judge([db("orders", True), db("analytics", False)])
    arn = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:"
    assert statuses(results) == {arn + "orders": Status.PASSING,
                                 arn + "analytics": Status.FAILING}
    assert "unencrypted" in titles(results)[arn + "analytics"]
    assert results[1].data["StorageEncrypted"] is False


def test_control_mappings_cover_every_check_with_well_formed_control_ids():
    path = Path(__file__).parents[2] / "engine/frameworks/mappings/aws.yaml"
    mappings = yaml.safe_load(path.read_text())
    assert set(mappings) == {c.id for c in AwsConnector.checks}
    for controls in mappings.values():
        assert controls["soc2"] and all(re.fullmatch(r"CC[1-9]\.\d", c) for c in controls["soc2"])
        assert controls["iso27001"] and all(
            re.fullmatch(r"A\.(5\.([1-9]|[1-3]\d)|8\.([1-9]|[12]\d|3[0-4]))", c)
            for c in controls["iso27001"])
        assert all(re.fullmatch(r"\d+(\.\d+)+", c) for c in controls.get("cis_aws", []))
