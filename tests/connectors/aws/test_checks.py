"""The AWS checks as pure functions on plain snapshots: no network, no boto3."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from connectors.aws import (
    AwsConnector,
    cloudtrail,
    config,
    ec2,
    elb,
    guardduty,
    iam,
    iam_password,
    kms,
    lambda_,
    rds,
    s3,
)
from connectors.aws.cloudtrail import Trail, TrailInventory
from connectors.aws.config import Recorder, RegionRecorders
from connectors.aws.ec2 import EbsDefaultEncryption, Instance, SecurityGroup, Vpc
from connectors.aws.elb import Listener
from connectors.aws.guardduty import Detector, RegionDetectors
from connectors.aws.iam import (
    AccessKeySlot,
    AccountSummary,
    CredentialReport,
    CredentialUser,
    ManagedPolicy,
    PasswordPolicy,
    User,
)
from connectors.aws.kms import KmsKey
from connectors.aws.lambda_ import Function
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


def test_connector_lists_the_first_twenty_seven_checks_then_the_cis_ones():
    assert [c.id for c in AwsConnector.checks][:27] == [
        "aws.s3.bucket_default_encryption", "aws.s3.bucket_public_access_block",
        "aws.s3.bucket_versioning", "aws.iam.root_account_mfa", "aws.iam.console_users_mfa",
        "aws.iam.password_policy_strength", "aws.cloudtrail.multi_region_trail",
        "aws.ec2.ebs_encryption_by_default", "aws.ec2.security_group_admin_ports",
        "aws.rds.storage_encrypted", "aws.s3.bucket_tls_only", "aws.iam.access_key_rotation",
        "aws.iam.unused_credentials", "aws.iam.single_active_access_key",
        "aws.iam.no_full_admin_policies", "aws.cloudtrail.log_file_validation",
        "aws.cloudtrail.kms_encryption", "aws.guardduty.enabled",
        "aws.config.recorder_enabled", "aws.kms.key_rotation", "aws.ec2.vpc_flow_logs",
        "aws.ec2.instance_imdsv2", "aws.rds.not_publicly_accessible",
        "aws.rds.automated_backups", "aws.rds.auto_minor_version_upgrade",
        "aws.elbv2.https_listeners", "aws.lambda.function_url_auth",
    ]
    assert len(AwsConnector.checks) == 76
    mapped = yaml.safe_load(AwsConnector.control_mappings.read_text())
    for chk in AwsConnector.checks:  # every check declares its CIS numbers
        assert list(chk.benchmarks.get("cis_aws", ())) == mapped[chk.id].get("cis_aws", []), \
            chk.id
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


def test_console_users_need_mfa_and_users_without_a_password_pass():
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
                                 arn + "ci-bot": Status.PASSING}  # as Prowler: no password
    t = titles(results)
    assert "has MFA" in t[arn + "alice"]
    assert "bob has no MFA device" in t[arn + "bob"]
    assert t[arn + "ci-bot"] == "User ci-bot has no console password, so needs no MFA"


STRONG_POLICY = {"MinimumPasswordLength": 14, "RequireUppercaseCharacters": True,
                 "RequireLowercaseCharacters": True, "RequireNumbers": True,
                 "RequireSymbols": True, "ExpirePasswords": True, "MaxPasswordAge": 90,
                 "PasswordReusePrevention": 24}


def judge_policy(policy):
    [result] = iam_password.password_policy_strength.judge(
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


# --- S3 TLS-only bucket policy ---------------------------------------------------------------

def deny_http(resource, *, principal="*", action="s3:*", operator="Bool", value="false"):
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": principal, "Action": action, "Resource": resource,
        "Condition": {operator: {"aws:SecureTransport": value}}}]}


@pytest.mark.parametrize("policy", [
    deny_http(["arn:aws:s3:::acme", "arn:aws:s3:::acme/*"]),
    deny_http("arn:aws:s3:::acme/*", principal={"AWS": "*"}, action=["s3:*"]),
    deny_http("*", action="*", operator="BoolIfExists", value=False),
])
def test_bucket_policy_denying_plain_http_passes(policy):
    [result] = s3.bucket_tls_only.judge([bucket("acme", policy=policy)])
    assert result.status is Status.PASSING
    assert "denies requests without TLS" in result.title
    assert result.data["tls_statements"] == policy["Statement"]


@pytest.mark.parametrize(("policy", "words"), [
    (None, "has no bucket policy"),
    (deny_http("arn:aws:s3:::acme"), "does not deny"),  # objects are left out
    (deny_http("arn:aws:s3:::acme/*", action="s3:GetObject"), "does not deny"),
    (deny_http("arn:aws:s3:::acme/*", principal={"AWS": "arn:aws:iam::1:root"}), "does not deny"),
    (deny_http("arn:aws:s3:::acme/*", value="true"), "does not deny"),
    (deny_http("arn:aws:s3:::other-bucket/*"), "does not deny"),
    ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                     "Resource": "arn:aws:s3:::acme/*",
                     "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}, "does not deny"),
])
def test_bucket_accepting_plain_http_fails(policy, words):
    [result] = s3.bucket_tls_only.judge([bucket("acme", policy=policy)])
    assert result.status is Status.FAILING
    assert words in result.title


def test_bucket_policy_that_cannot_be_read_is_an_error():
    denied = bucket("acme", read_errors={"policy": "missing permission s3:GetBucketPolicy"})
    [result] = s3.bucket_tls_only.judge([denied])
    assert result.status is Status.ERROR and "s3:GetBucketPolicy" in result.title


# --- IAM credential report ------------------------------------------------------------------

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ago(days):
    return (NOW - timedelta(days=days)).isoformat() if days is not None else None


def key(slot, *, active=True, age=None, used=None):
    return AccessKeySlot(slot=slot, active=active, last_rotated=ago(age), last_used=ago(used))


def report_user(name, *, password=False, created=400, password_used=None, keys=()):
    return CredentialUser(name=name, arn=f"arn:aws:iam::{ACCOUNT}:user/{name}",
                          created=ago(created), password_enabled=password,
                          password_last_used=ago(password_used),
                          password_last_changed=ago(created) if password else None,
                          mfa_active=False, access_keys=list(keys))


NO_ROOT_KEYS = AccountSummary(account_id=ACCOUNT, root_arn=ROOT, root_mfa_enabled=True,
                              root_access_keys_present=False)


def judge_report(chk, *users, root=None, summary=NO_ROOT_KEYS):
    report = CredentialReport(account_id=ACCOUNT, collected_at=NOW, users=list(users), root=root)
    return chk.judge(report, summary) if len(chk.needs) == 2 else chk.judge(report)


def by_user(results):
    return {r.resource_id.rsplit("/", 1)[-1]: r for r in results}


def test_access_keys_older_than_90_days_fail_and_younger_ones_pass():
    results = by_user(judge_report(
        iam.access_key_rotation,
        report_user("fresh", keys=[key(1, age=10), key(2, active=False, age=400)]),
        report_user("edge", keys=[key(1, age=90)]),
        report_user("stale", keys=[key(1, age=30), key(2, age=91)]),
        report_user("person", password=True),
    ))
    assert {u: r.status for u, r in results.items()} == {
        ROOT: Status.PASSING, "fresh": Status.PASSING, "edge": Status.PASSING,
        "stale": Status.FAILING, "person": Status.PASSING}  # no key to rotate: a pass
    assert "key 2 is 91 days old" in results["stale"].title
    assert "key 1" not in results["stale"].title
    assert results["fresh"].data["active_access_keys"] == [
        {"key": 1, "last_rotated": ago(10), "age_days": 10}]
    assert "no active access key" in results["person"].title


def test_credentials_unused_for_90_days_fail():
    results = by_user(judge_report(
        iam.unused_credentials,
        report_user("active", password=True, password_used=3, keys=[key(1, age=200, used=1)]),
        report_user("new-hire", password=True, created=20),
        report_user("idle-password", password=True, password_used=90),
        report_user("never-logged-in", password=True, created=120),
        report_user("idle-key", keys=[key(1, age=300, used=100)]),
        report_user("unused-key", keys=[key(1, age=95)]),
        report_user("inactive-only", keys=[key(1, active=False, age=500)]),
    ))
    assert {u: r.status for u, r in results.items()} == {
        "active": Status.PASSING, "new-hire": Status.PASSING,
        "idle-password": Status.FAILING, "never-logged-in": Status.FAILING,
        "idle-key": Status.FAILING, "unused-key": Status.FAILING,
        "inactive-only": Status.PASSING}  # nothing that could sit unused
    assert "console password (last used 90 days ago)" in results["idle-password"].title
    assert "console password (never used, enabled 120 days ago)" in \
        results["never-logged-in"].title
    assert "access key 1 (last used 100 days ago)" in results["idle-key"].title
    assert "access key 1 (never used, enabled 95 days ago)" in results["unused-key"].title
    assert "within 90 days" in results["active"].title


def test_a_second_active_access_key_fails():
    results = by_user(judge_report(
        iam.single_active_access_key,
        report_user("one", keys=[key(1, age=1), key(2, active=False, age=100)]),
        report_user("two", keys=[key(1, age=1), key(2, age=2)]),
        report_user("none", password=True),
    ))
    assert {u: r.status for u, r in results.items()} == {
        ROOT: Status.PASSING, "one": Status.PASSING, "two": Status.FAILING,
        "none": Status.PASSING}
    assert results["none"].title == "User none has no active access key"
    assert "2 active access keys" in results["two"].title


def test_credential_report_rows_parse_dates_and_placeholders():
    row = {"user": "bob", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob",
           "user_creation_time": "2025-01-02T03:04:05+00:00", "password_enabled": "true",
           "password_last_used": "no_information", "password_last_changed": "N/A",
           "mfa_active": "false", "access_key_1_active": "true",
           "access_key_1_last_rotated": "2025-02-01T00:00:00+00:00",
           "access_key_1_last_used_date": "N/A", "access_key_2_active": "false",
           "access_key_2_last_rotated": "N/A", "access_key_2_last_used_date": "N/A"}
    user = iam._credential_user(row)
    assert user.created == "2025-01-02T03:04:05+00:00"
    assert user.password_enabled and user.password_last_used is None
    assert user.password_last_changed is None
    assert user.active_keys == [AccessKeySlot(1, True, "2025-02-01T00:00:00+00:00", None)]


def managed(name, *statements, attached=0):
    return ManagedPolicy(name=name, arn=f"arn:aws:iam::{ACCOUNT}:policy/{name}",
                         default_version="v1", attachment_count=attached,
                         document={"Version": "2012-10-17", "Statement": list(statements)})


def test_policies_allowing_every_action_on_every_resource_fail():
    admin = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    results = by_user(iam.no_full_admin_policies.judge([
        managed("admin", admin, attached=2),
        managed("colon", {"Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]}),
        managed("single", {**admin}),
        managed("ec2", {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}),
        managed("scoped", {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::x/*"}),
        managed("deny", {"Effect": "Deny", "Action": "*", "Resource": "*"}),
    ]))
    assert {name: r.status for name, r in results.items()} == {
        "admin": Status.FAILING, "colon": Status.FAILING, "single": Status.FAILING,
        "ec2": Status.PASSING, "scoped": Status.PASSING, "deny": Status.PASSING}
    assert "(*:*), attached 2 times" in results["admin"].title
    assert "not attached" in results["colon"].title
    assert results["admin"].data["full_admin_statements"] == [admin]


def test_a_lone_statement_object_is_read_like_a_list():
    policy = ManagedPolicy(name="lone", arn=f"arn:aws:iam::{ACCOUNT}:policy/lone",
                           default_version="v3", attachment_count=0,
                           document={"Statement": {"Effect": "Allow", "Action": "*",
                                                   "Resource": "*"}})
    [result] = iam.no_full_admin_policies.judge([policy])
    assert result.status is Status.FAILING


# --- CloudTrail trails, one by one ----------------------------------------------------------

def configured_trail(name, *, validation, kms_key):
    return Trail(name=name, arn=f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/{name}",
                 home_region="eu-west-1", is_multi_region=False, is_logging=True,
                 s3_bucket="acme-trail-logs", is_organization_trail=False,
                 log_file_validation=validation, kms_key_id=kms_key)


def test_trail_log_file_validation_is_judged_per_trail():
    results = cloudtrail.log_file_validation.judge([
        configured_trail("validated", validation=True, kms_key=None),
        configured_trail("plain", validation=False, kms_key=None)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]
    assert "validation off" in results[1].title
    assert results[1].data["LogFileValidationEnabled"] is False


def test_trail_kms_encryption_is_judged_per_trail():
    key_arn = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234"
    results = cloudtrail.kms_encryption.judge([
        configured_trail("sealed", validation=True, kms_key=key_arn),
        configured_trail("sse-s3", validation=True, kms_key=None)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]
    assert key_arn in results[0].title
    assert "does not encrypt" in results[1].title


# --- GuardDuty and AWS Config, per region ---------------------------------------------------

def region_id(region):
    return f"aws:account:{ACCOUNT}:region:{region}"


def test_guardduty_must_have_an_enabled_detector_in_each_region():
    results = guardduty.guardduty_enabled.judge([
        RegionDetectors(ACCOUNT, "us-east-1", [Detector("d1", "ENABLED", "SIX_HOURS")]),
        RegionDetectors(ACCOUNT, "eu-west-1", [Detector("d2", "DISABLED", None)]),
        RegionDetectors(ACCOUNT, "ap-south-1", []),
    ])
    assert statuses(results) == {region_id("us-east-1"): Status.PASSING,
                                 region_id("eu-west-1"): Status.FAILING,
                                 region_id("ap-south-1"): Status.FAILING}
    t = titles(results)
    assert "suspended" in t[region_id("eu-west-1")]
    assert "not enabled in ap-south-1" in t[region_id("ap-south-1")]


def recorder(name="default", *, recording=True, all_supported=True):
    return Recorder(name=name, recording=recording, all_supported=all_supported,
                    include_global_resource_types=all_supported, last_status="SUCCESS")


def test_config_recorder_must_record_all_resource_types_in_each_region():
    results = config.recorder_enabled.judge([
        RegionRecorders(ACCOUNT, "us-east-1", [recorder()]),
        RegionRecorders(ACCOUNT, "eu-west-1", [recorder(recording=False)]),
        RegionRecorders(ACCOUNT, "eu-central-1", [recorder(all_supported=False)]),
        RegionRecorders(ACCOUNT, "ap-south-1", []),
    ])
    assert statuses(results) == {
        region_id("us-east-1"): Status.PASSING, region_id("eu-west-1"): Status.FAILING,
        region_id("eu-central-1"): Status.FAILING, region_id("ap-south-1"): Status.FAILING}
    t = titles(results)
    assert "is not recording" in t[region_id("eu-west-1")]
    assert "only some resource types" in t[region_id("eu-central-1")]
    assert "no configuration recorder" in t[region_id("ap-south-1")]


# --- KMS ------------------------------------------------------------------------------------

def kms_key(key_id, *, rotation, spec="SYMMETRIC_DEFAULT", state="Enabled", origin="AWS_KMS"):
    return KmsKey(key_id=key_id, arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key_id}",
                  region="us-east-1", description="", key_state=state, key_spec=spec,
                  origin=origin, rotation_enabled=rotation)


def test_customer_keys_must_rotate_where_rotation_applies():
    results = kms.key_rotation.judge([
        kms_key("rotating", rotation=True), kms_key("static", rotation=False),
        kms_key("signing", rotation=None, spec="RSA_2048"),
        kms_key("retired", rotation=None, state="Disabled"),
        kms_key("imported", rotation=None, origin="EXTERNAL"),
    ])
    got = {r.resource_id.rsplit("/", 1)[-1]: r for r in results}
    assert {k: r.status for k, r in got.items()} == {
        "rotating": Status.PASSING, "static": Status.FAILING,
        "signing": Status.NOT_APPLICABLE, "retired": Status.NOT_APPLICABLE,
        "imported": Status.NOT_APPLICABLE}
    assert "does not rotate" in got["static"].title
    assert "RSA_2048" in got["signing"].title and "disabled" in got["retired"].title


# --- VPC flow logs and IMDSv2 ---------------------------------------------------------------

def vpc(vpc_id, *logs):
    return Vpc(vpc_id=vpc_id, arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{vpc_id}",
               region="us-east-1", is_default=False, cidr_block="10.0.0.0/16",
               flow_logs=list(logs))


def flow_log(traffic, status="ACTIVE"):
    return {"FlowLogId": f"fl-{traffic.lower()}", "FlowLogStatus": status,
            "TrafficType": traffic}


def test_vpcs_need_an_active_flow_log_of_rejected_traffic():
    results = ec2.vpc_flow_logs.judge([
        vpc("vpc-all", flow_log("ALL")), vpc("vpc-reject", flow_log("REJECT")),
        vpc("vpc-accept", flow_log("ACCEPT")), vpc("vpc-broken", flow_log("ALL", "FAILED")),
        vpc("vpc-none"),
    ])
    got = {r.resource_id.rsplit("/", 1)[-1]: r for r in results}
    assert {v: r.status for v, r in got.items()} == {
        "vpc-all": Status.PASSING, "vpc-reject": Status.PASSING, "vpc-accept": Status.FAILING,
        "vpc-broken": Status.FAILING, "vpc-none": Status.FAILING}
    assert "accepted traffic only" in got["vpc-accept"].title
    assert "no active flow log" in got["vpc-none"].title


def instance(instance_id, **options):
    return Instance(instance_id=instance_id, region="us-east-1", state="running", name=None,
                    arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance_id}",
                    metadata_options=options)


def test_instances_must_require_imdsv2_or_turn_metadata_off():
    results = ec2.instance_imdsv2.judge([
        instance("i-v2", HttpTokens="required", HttpEndpoint="enabled"),
        instance("i-off", HttpTokens="optional", HttpEndpoint="disabled"),
        instance("i-v1", HttpTokens="optional", HttpEndpoint="enabled"),
    ])
    got = {r.resource_id.rsplit("/", 1)[-1]: r for r in results}
    assert {i: r.status for i, r in got.items()} == {
        "i-v2": Status.PASSING, "i-off": Status.PASSING, "i-v1": Status.FAILING}
    assert "accepts IMDSv1" in got["i-v1"].title
    assert got["i-v1"].data["MetadataOptions"]["HttpTokens"] == "optional"


# --- RDS exposure, backups and patching -----------------------------------------------------

def database(name, **settings):
    return DbInstance(identifier=name, arn=f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}",
                      region="us-east-1", engine="postgres", storage_encrypted=True,
                      kms_key_id=None, cluster=None, **settings)


def test_publicly_accessible_databases_fail():
    results = rds.not_publicly_accessible.judge([
        database("private", publicly_accessible=False),
        database("public", publicly_accessible=True)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]
    assert "publicly accessible" in results[1].title


@pytest.mark.parametrize(("days", "status", "words"), [
    (0, Status.FAILING, "turned off"), (1, Status.FAILING, "only 1 day"),
    (6, Status.FAILING, "only 6 days"), (7, Status.PASSING, "for 7 days"),
    (35, Status.PASSING, "for 35 days"),
])
def test_databases_keep_automated_backups_for_a_week(days, status, words):
    [result] = rds.automated_backups.judge([database("db", backup_retention_period=days)])
    assert result.status is status and words in result.title
    assert result.data["BackupRetentionPeriod"] == days


def test_databases_without_automatic_minor_upgrades_fail():
    results = rds.auto_minor_version_upgrade.judge([
        database("patched", auto_minor_version_upgrade=True),
        database("frozen", auto_minor_version_upgrade=False)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]


# --- load balancer listeners ----------------------------------------------------------------

def listener(protocol, port, *actions, kind="application"):
    return Listener(arn=f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:listener/{port}",
                    region="us-east-1", load_balancer="web", load_balancer_type=kind,
                    scheme="internet-facing", protocol=protocol, port=port,
                    ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06"
                    if protocol in ("HTTPS", "TLS") else None,
                    default_actions=list(actions) or [{"Type": "forward"}])


def redirect(protocol):
    return {"Type": "redirect", "RedirectConfig": {"Protocol": protocol, "Port": "443"}}


def test_listeners_must_use_tls_or_redirect_http_to_https():
    results = elb.https_listeners.judge([
        listener("HTTPS", 443), listener("HTTP", 80, redirect("HTTPS")),
        listener("TLS", 8883, kind="network"), listener("HTTP", 8080),
        listener("HTTP", 81, redirect("HTTP")), listener("TCP", 1883, kind="network"),
    ])
    got = {int(r.resource_id.rsplit("/", 1)[-1]): r for r in results}
    assert {port: r.status for port, r in got.items()} == {
        443: Status.PASSING, 80: Status.PASSING, 8883: Status.PASSING, 8080: Status.FAILING,
        81: Status.FAILING, 1883: Status.NOT_APPLICABLE}
    assert "serves plain HTTP" in got[8080].title
    assert "redirects every request to HTTPS" in got[80].title
    assert got[443].data["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"


# --- Lambda function URLs -------------------------------------------------------------------

def function(name, *auth_types):
    return Function(name=name, arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}",
                    region="us-east-1", runtime="python3.12",
                    urls=[{"FunctionUrl": f"https://{name}-{i}.lambda-url.on.aws",
                           "AuthType": auth, "qualifier": None}
                          for i, auth in enumerate(auth_types)])


def test_public_function_urls_fail():
    results = lambda_.function_url_auth.judge([
        function("open", "NONE"), function("signed", "AWS_IAM"), function("plain"),
        function("mixed", "AWS_IAM", "NONE"),
    ])
    got = {r.resource_id.rsplit(":", 1)[-1]: r for r in results}
    assert {f: r.status for f, r in got.items()} == {
        "open": Status.FAILING, "signed": Status.PASSING, "plain": Status.PASSING,
        "mixed": Status.FAILING}
    assert "public function URL" in got["open"].title
    assert "no function URL" in got["plain"].title


def test_control_mappings_cover_every_check_with_well_formed_control_ids():
    path = AwsConnector.control_mappings
    mappings = yaml.safe_load(path.read_text())
    assert set(mappings) == {c.id for c in AwsConnector.checks}
    for controls in mappings.values():
        assert controls["soc2"] and all(re.fullmatch(r"CC[1-9]\.\d", c) for c in controls["soc2"])
        assert controls["iso27001"] and all(
            re.fullmatch(r"A\.(5\.([1-9]|[1-3]\d)|8\.([1-9]|[12]\d|3[0-4]))", c)
            for c in controls["iso27001"])
        assert all(re.fullmatch(r"\d+(\.\d+)+", c) for c in controls.get("cis_aws", []))
