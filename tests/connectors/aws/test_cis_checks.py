"""The CIS AWS Foundations Benchmark v3.0 checks as pure functions on plain snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from connectors.aws import (
    AwsConnector,
    accessanalyzer,
    cloudtrail,
    ec2,
    efs,
    iam_access,
    iam_credentials,
    iam_root,
    s3,
    securityhub,
)
from connectors.aws.accessanalyzer import RegionAnalyzers
from connectors.aws.cloudtrail import TrailSetup, TrailSetups
from connectors.aws.ec2 import NetworkAcl, SecurityGroup
from connectors.aws.efs import FileSystem
from connectors.aws.iam import AccessKeySlot, AccountSummary, CredentialReport, CredentialUser
from connectors.aws.iam_access import (
    Authorization,
    Principal,
    ServerCertificate,
    ServerCertificates,
)
from connectors.aws.iam_root import VirtualMfaDevices
from connectors.aws.s3 import AccountPublicAccessBlock, Bucket
from connectors.aws.securityhub import RegionHub
from connectors.base import Status
from engine.checklist import check_catalog, render_markdown

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
ALL_ON = dict.fromkeys(s3.PUBLIC_ACCESS_FLAGS, True)
ACLS_ONLY = {**ALL_ON, "BlockPublicPolicy": False, "RestrictPublicBuckets": False}


def statuses(results):
    return {r.resource_id: r.status for r in results}


def only(results):
    [result] = results
    return result


# --- metadata ------------------------------------------------------------------------------

def test_every_cis_number_a_check_declares_is_the_one_its_mapping_names():
    mappings = yaml.safe_load(AwsConnector.control_mappings.read_text())
    for chk in AwsConnector.checks:
        if chk.benchmarks:
            assert tuple(mappings[chk.id]["cis_aws"]) == chk.benchmarks["cis_aws"], chk.id


def test_the_check_catalog_shows_a_declared_cis_number():
    [aws] = check_catalog({"aws": AwsConnector})
    entry = next(e for e in aws.checks if e.id == "aws.iam.root_hardware_mfa")
    assert entry.controls["cis_aws"] == ("1.6",)
    assert "| 1.6 |" in render_markdown([aws])


# --- IAM: the root user --------------------------------------------------------------------

def summary(mfa=True, keys=False):
    return AccountSummary(account_id=ACCOUNT, root_arn=ROOT, root_mfa_enabled=mfa,
                          root_access_keys_present=keys)


def root_row(*active):
    return CredentialUser(name="<root_account>", arn=ROOT, created=None, password_enabled=True,
                          password_last_used=None, password_last_changed=None, mfa_active=True,
                          access_keys=[AccessKeySlot(slot, slot in active, None, None)
                                       for slot in (1, 2)])


def report(root=None):
    return CredentialReport(account_id=ACCOUNT, collected_at=NOW, users=[], root=root)


def test_root_access_keys_are_judged_from_the_credential_report_root_row():
    passing = only(iam_root.no_root_access_keys.judge(report(root_row()), summary(keys=True)))
    failing = only(iam_root.no_root_access_keys.judge(report(root_row(2)), summary()))
    assert (passing.resource_id, passing.status) == (ROOT, Status.PASSING)
    assert failing.status is Status.FAILING and "1 active access key" in failing.title
    assert failing.data["active_root_access_keys"] == [2]


def test_root_access_keys_fall_back_to_the_account_summary_without_a_root_row():
    assert only(iam_root.no_root_access_keys.judge(report(), summary(keys=True))).status \
        is Status.FAILING
    result = only(iam_root.no_root_access_keys.judge(report(), summary(keys=False)))
    assert result.status is Status.PASSING and result.data["source"] == "account summary"


def test_root_used_within_a_day_fails_and_older_or_no_use_passes():
    def root_used(password_days=None, key_days=None):
        def ago(days):
            return (NOW - timedelta(days=days)).isoformat() if days is not None else None

        return CredentialUser(
            name="<root_account>", arn=ROOT, created=None, password_enabled=True,
            password_last_used=ago(password_days), password_last_changed=None,
            mfa_active=True, access_keys=[AccessKeySlot(1, False, None, ago(key_days))])

    def verdict(root):
        return only(iam_root.root_not_used.judge(report(root), summary())).status

    assert verdict(root_used(password_days=0)) is Status.FAILING
    assert verdict(root_used(password_days=30, key_days=1)) is Status.FAILING
    assert verdict(root_used(password_days=30)) is Status.PASSING
    assert verdict(root_used()) is Status.PASSING
    assert verdict(None) is Status.NOT_APPLICABLE


def test_root_with_a_virtual_mfa_device_fails_hardware_mfa():
    def devices(**assigned):
        return VirtualMfaDevices(account_id=ACCOUNT, root_arn=ROOT, assigned=assigned)

    virtual = devices(**{f"arn:aws:iam::{ACCOUNT}:mfa/root-account-mfa-device": ROOT})
    a_users = devices(**{f"arn:aws:iam::{ACCOUNT}:mfa/alice": f"arn:aws:iam::{ACCOUNT}:user/a"})
    hardware = only(iam_root.root_hardware_mfa.judge(summary(mfa=True), a_users))
    on_phone = only(iam_root.root_hardware_mfa.judge(summary(mfa=True), virtual))
    none = only(iam_root.root_hardware_mfa.judge(summary(mfa=False), devices()))
    assert hardware.status is Status.PASSING and "hardware" in hardware.title
    assert on_phone.status is Status.FAILING and "virtual" in on_phone.title
    assert none.status is Status.FAILING and "no MFA" in none.title


# --- IAM: the credential report's users (1.11, 1.12) -----------------------------------------

def cred_user(name, *, password=False, password_used=None, created=None, keys=()):
    """keys: (slot, last_rotated, last_used) of each active key; times in days before NOW."""
    def ago(days):
        return (NOW - timedelta(days=days)).isoformat() if days is not None else None

    return CredentialUser(
        name=name, arn=f"arn:aws:iam::{ACCOUNT}:user/{name}", created=ago(created),
        password_enabled=password, password_last_used=ago(password_used),
        password_last_changed=None, mfa_active=False,
        access_keys=[AccessKeySlot(slot, True, ago(rotated), ago(used))
                     for slot, rotated, used in keys])


def users_report(*users):
    return CredentialReport(account_id=ACCOUNT, collected_at=NOW, users=list(users))


def by_name(results):
    return {r.resource_id.rsplit("/", 1)[-1]: r.status for r in results}


def test_console_users_with_a_never_used_access_key_fail_initial_keys():
    results = iam_credentials.no_initial_access_keys.judge(users_report(
        cred_user("fresh", password=True, created=1, keys=[(1, 1, None)]),
        cred_user("working", password=True, created=99, keys=[(1, 99, 2)]),
        cred_user("ci", keys=[(1, 10, None)]),
    ))
    assert by_name(results) == {"fresh": Status.FAILING, "working": Status.PASSING,
                                "ci": Status.PASSING}


def test_console_passwords_unused_for_45_days_fail_and_users_without_one_pass():
    results = iam_credentials.console_password_unused_45_days.judge(users_report(
        cred_user("recent", password=True, created=400, password_used=44),
        cred_user("stale", password=True, created=400, password_used=45),
        cred_user("never", password=True, created=60),
        cred_user("bot", keys=[(1, 1, 1)]),
    ))
    assert by_name(results) == {"recent": Status.PASSING, "stale": Status.FAILING,
                                "never": Status.FAILING, "bot": Status.PASSING}


def test_access_keys_unused_for_45_days_fail_and_users_without_keys_pass():
    results = iam_credentials.access_keys_unused_45_days.judge(users_report(
        cred_user("busy", keys=[(1, 300, 1)]),
        cred_user("idle", keys=[(1, 300, 1), (2, 100, 50)]),
        cred_user("unused", keys=[(1, 46, None)]),
        cred_user("person", password=True, created=5),
    ))
    assert by_name(results) == {"busy": Status.PASSING, "idle": Status.FAILING,
                                "unused": Status.FAILING, "person": Status.PASSING}
    assert "access key 2 unused for 50 days" in next(
        r.title for r in results if r.resource_id.endswith("/idle"))


# --- IAM: who holds which policy -----------------------------------------------------------

def principal(kind, name, attached=(), inline=(), groups=()):
    return Principal(kind=kind, name=name, arn=f"arn:aws:iam::{ACCOUNT}:{kind}/{name}",
                     attached=list(attached), inline=list(inline), groups=list(groups))


def authorization(*principals):
    return Authorization(account_id=ACCOUNT, root_arn=ROOT, partition="aws",
                         principals=list(principals))


SUPPORT = "arn:aws:iam::aws:policy/AWSSupportAccess"
CLOUDSHELL = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess"


def test_users_pass_with_group_permissions_and_fail_with_their_own_policies():
    results = iam_access.user_permissions_via_groups.judge(authorization(
        principal("user", "alice", groups=["developers"]),
        principal("user", "bob", attached=[f"arn:aws:iam::{ACCOUNT}:policy/deploy"]),
        principal("user", "carol", inline=["s3-access"]),
        principal("group", "developers", attached=[f"arn:aws:iam::{ACCOUNT}:policy/dev"]),
    ))
    user = f"arn:aws:iam::{ACCOUNT}:user/"
    assert statuses(results) == {user + "alice": Status.PASSING, user + "bob": Status.FAILING,
                                 user + "carol": Status.FAILING}
    assert "deploy" in {r.resource_id: r.title for r in results}[user + "bob"]


def test_support_role_needs_a_role_holding_aws_support_access():
    passing = only(iam_access.support_role.judge(
        authorization(principal("role", "aws-support", attached=[SUPPORT]))))
    failing = only(iam_access.support_role.judge(
        authorization(principal("user", "alice", attached=[SUPPORT]))))  # a user is no role
    assert (passing.resource_id, passing.status) == (ROOT, Status.PASSING)
    assert passing.data["support_roles"] == ["aws-support"]
    assert failing.status is Status.FAILING


def test_cloudshell_full_access_fails_when_anyone_holds_it():
    passing = only(iam_access.cloudshell_full_access_restricted.judge(authorization(
        principal("role", "ops"))))
    failing = only(iam_access.cloudshell_full_access_restricted.judge(authorization(
        principal("group", "admins", attached=[CLOUDSHELL]))))
    assert (passing.resource_id, passing.status) == (CLOUDSHELL, Status.PASSING)
    assert failing.status is Status.FAILING and "group admins" in failing.title


def test_expired_server_certificates_fail_and_current_ones_pass():
    def cert(name, days):
        return ServerCertificate(name=name, arn=f"arn:aws:iam::{ACCOUNT}:server-certificate/"
                                 f"{name}", expiration=(NOW + timedelta(days=days)).isoformat())

    results = iam_access.expired_server_certificates.judge(ServerCertificates(
        collected_at=NOW, certificates=[cert("current", 30), cert("stale", -1)]))
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]
    assert "expired on 2026-05-31" in results[1].title


def test_a_server_certificate_that_ends_on_the_day_read_counts_as_expired():
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)  # as the collector dates it
    ends_today = ServerCertificate(name="today", arn=f"arn:aws:iam::{ACCOUNT}:server-certificate/"
                                   "today", expiration=(day + timedelta(hours=20)).isoformat())
    tomorrow = ServerCertificate(name="tomorrow", arn=f"arn:aws:iam::{ACCOUNT}:server-"
                                 "certificate/tomorrow",
                                 expiration=(day + timedelta(days=1, hours=1)).isoformat())
    results = list(iam_access.expired_server_certificates.judge(ServerCertificates(
        collected_at=day, certificates=[ends_today, tomorrow])))
    assert [r.status for r in results] == [Status.FAILING, Status.PASSING]
    assert "expires today" in results[0].title


# --- Access Analyzer, Security Hub, EFS ----------------------------------------------------

def region_id(region):
    return f"aws:account:{ACCOUNT}:region:{region}"


def test_access_analyzer_needs_an_active_analyzer_in_each_region():
    results = accessanalyzer.access_analyzer_enabled.judge([
        RegionAnalyzers(ACCOUNT, "us-east-1", [{"name": "acct", "type": "ACCOUNT",
                                                "status": "ACTIVE"}]),
        RegionAnalyzers(ACCOUNT, "eu-west-1", [{"name": "acct", "type": "ACCOUNT",
                                                "status": "FAILED"}]),
        RegionAnalyzers(ACCOUNT, "ap-south-1", []),
    ])
    assert statuses(results) == {region_id("us-east-1"): Status.PASSING,
                                 region_id("eu-west-1"): Status.FAILING,
                                 region_id("ap-south-1"): Status.FAILING}
    assert "acct is active in us-east-1" in results[0].title
    assert "not active (acct: FAILED)" in results[1].title
    assert results[2].title == "Access Analyzer has no analyzer in ap-south-1"
    assert results[0].data["analyzers"] == [{"name": "acct", "type": "ACCOUNT",
                                             "status": "ACTIVE"}]


def test_access_analyzer_a_region_that_cannot_be_read_is_an_error_naming_why():
    [result] = accessanalyzer.access_analyzer_enabled.judge([
        RegionAnalyzers(ACCOUNT, "us-east-1", read_error="the endpoint does not serve AWS "
                        "accessanalyzer ListAnalyzers")])
    assert result.status is Status.ERROR and result.resource_id == region_id("us-east-1")
    assert "Access Analyzer in us-east-1" in result.title
    assert "does not serve" in result.title


def test_security_hub_is_judged_per_region():
    results = securityhub.securityhub_enabled.judge([
        RegionHub(ACCOUNT, "us-east-1", f"arn:aws:securityhub:us-east-1:{ACCOUNT}:hub/default",
                  "2026-01-01T00:00:00Z"),
        RegionHub(ACCOUNT, "eu-west-1", None, None),
    ])
    assert statuses(results) == {region_id("us-east-1"): Status.PASSING,
                                 region_id("eu-west-1"): Status.FAILING}


def test_efs_file_systems_must_be_encrypted():
    def fs(fs_id, encrypted):
        return FileSystem(fs_id, f"arn:aws:elasticfilesystem:us-east-1:{ACCOUNT}:file-system/"
                          f"{fs_id}", "us-east-1", None, encrypted, None)

    results = efs.encryption_at_rest.judge([fs("fs-1", True), fs("fs-2", False)])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]


# --- S3: the account's Block Public Access, MFA delete -------------------------------------

def account_block(config, error=None):
    return AccountPublicAccessBlock(account_id=ACCOUNT, root_arn=ROOT, config=config,
                                    read_error=error)


def test_account_public_access_block_needs_all_four_settings():
    assert only(s3.account_public_access_block.judge(account_block(ALL_ON))).status \
        is Status.PASSING
    partial = only(s3.account_public_access_block.judge(account_block(ACLS_ONLY)))
    assert partial.status is Status.FAILING
    assert "BlockPublicPolicy, RestrictPublicBuckets off" in partial.title
    assert only(s3.account_public_access_block.judge(account_block(None))).status \
        is Status.FAILING
    denied = only(s3.account_public_access_block.judge(
        account_block(None, "missing permission s3:GetAccountPublicAccessBlock")))
    assert denied.status is Status.ERROR and "s3:GetAccountPublicAccessBlock" in denied.title


def bucket(name, **settings):
    return Bucket(name=name, arn=f"arn:aws:s3:::{name}", region="us-east-1", **settings)


def test_bucket_public_access_counts_the_account_level_block():
    results = s3.bucket_public_access_block.judge([
        bucket("covered-by-account", account_public_access_block=ALL_ON),
        bucket("half-and-half", public_access_block={**ALL_ON, "BlockPublicAcls": False,
                                                     "IgnorePublicAcls": False},
               account_public_access_block=ACLS_ONLY),
        bucket("gap-left", public_access_block=None, account_public_access_block=ACLS_ONLY),
    ])
    assert statuses(results) == {"arn:aws:s3:::covered-by-account": Status.PASSING,
                                 "arn:aws:s3:::half-and-half": Status.PASSING,
                                 "arn:aws:s3:::gap-left": Status.FAILING}
    assert "the account blocks it" in results[0].title
    assert results[0].data["account_public_access_block"] == ALL_ON


def test_an_unreadable_account_block_leaves_each_bucket_judged_on_its_own_settings():
    error = "missing permission s3:GetAccountPublicAccessBlock"
    results = s3.bucket_public_access_block.judge([
        bucket("own-block", public_access_block=ALL_ON,
               read_errors={"account_public_access_block": error}),
        bucket("none", read_errors={"account_public_access_block": error}),
    ])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING]
    assert results[0].data["account_public_access_block_error"] == error


def test_bucket_mfa_delete_passes_only_when_enabled():
    results = s3.bucket_mfa_delete.judge([
        bucket("vault", versioning={"Status": "Enabled", "MFADelete": "Enabled"}),
        bucket("plain", versioning={"Status": "Enabled", "MFADelete": "Disabled"}),
        bucket("locked", read_errors={"versioning": "missing permission s3:GetBucketVersioning"}),
    ])
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING, Status.ERROR]


# --- CloudTrail: bucket access logging, S3 object-level events ------------------------------

def trail(name, **settings):
    base = {"home_region": "us-east-1", "is_multi_region": True, "is_logging": True,
            "s3_bucket": "trail-bucket", "log_group_arn": None}
    return TrailSetup(name=name, arn=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{name}",
                      **{**base, **settings})


def setups(*trails):
    return [TrailSetups(account_id=ACCOUNT, root_arn=ROOT, region="us-east-1",
                        trails=list(trails))]


def test_trail_bucket_access_logging_passes_fails_and_skips_foreign_buckets():
    results = cloudtrail.bucket_access_logging.judge(setups(
        trail("logged", bucket_logging={"TargetBucket": "logs", "TargetPrefix": "ct/"}),
        trail("unlogged"),
        trail("central", bucket_read="not_found"),
        trail("denied", bucket_read="missing permission s3:GetBucketLogging"),
    ))
    assert [r.status for r in results] == [Status.PASSING, Status.FAILING,
                                           Status.NOT_APPLICABLE, Status.ERROR]


S3_ALL = [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]


def test_s3_object_logging_reads_basic_and_advanced_selectors():
    write_only = trail("writes", event_selectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True,
         "DataResources": S3_ALL}])
    advanced_reads = trail("reads", advanced_event_selectors=[{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "readOnly", "Equals": ["true"]}]}])
    one_bucket = trail("one", event_selectors=[{"ReadWriteType": "All", "DataResources": [
        {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}]}])
    puts_only = trail("puts", advanced_event_selectors=[{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "eventName", "Equals": ["PutObject"]}]}])
    stopped = trail("stopped", is_logging=False, event_selectors=[
        {"ReadWriteType": "All", "DataResources": S3_ALL}])

    def verdict(chk, *trails):
        return only(chk.judge(setups(*trails))).status

    assert verdict(cloudtrail.s3_object_write_logging, write_only) is Status.PASSING
    assert verdict(cloudtrail.s3_object_read_logging, write_only) is Status.FAILING
    assert verdict(cloudtrail.s3_object_read_logging, advanced_reads) is Status.PASSING
    assert verdict(cloudtrail.s3_object_write_logging, advanced_reads) is Status.FAILING
    assert verdict(cloudtrail.s3_object_write_logging, one_bucket) is Status.FAILING
    assert verdict(cloudtrail.s3_object_read_logging, stopped) is Status.FAILING
    assert verdict(cloudtrail.s3_object_write_logging, puts_only) is Status.FAILING


# --- EC2: network ACLs and default security groups ------------------------------------------

def entry(number, action, cidr="0.0.0.0/0", protocol="6", port=None, egress=False):
    e = {"RuleNumber": number, "RuleAction": action, "Protocol": protocol, "Egress": egress}
    e["Ipv6CidrBlock" if ":" in cidr else "CidrBlock"] = cidr
    if port is not None:
        e["PortRange"] = {"From": port[0], "To": port[1]}
    return e


def acl(acl_id, *entries):
    return NetworkAcl(acl_id=acl_id, arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:network-acl/"
                      f"{acl_id}", region="us-east-1", vpc_id="vpc-1", is_default=False,
                      entries=list(entries))


def test_network_acls_are_judged_in_rule_order_for_ssh_and_rdp():
    results = ec2.network_acl_admin_ports.judge([
        acl("acl-open", entry(100, "allow", protocol="-1"), entry(32767, "deny", protocol="-1")),
        acl("acl-guarded", entry(50, "deny", port=(22, 22)), entry(60, "deny", port=(3389, 3389)),
            entry(100, "allow", protocol="-1")),
        acl("acl-web", entry(100, "allow", port=(443, 443)),
            entry(110, "allow", "10.0.0.0/8", port=(22, 22))),
        acl("acl-v6-rdp", entry(100, "allow", "::/0", port=(3000, 4000))),
        acl("acl-egress", entry(100, "allow", protocol="-1", egress=True)),
    ])
    got = {r.resource_id.rsplit("/", 1)[-1]: r for r in results}
    assert {k: r.status for k, r in got.items()} == {
        "acl-open": Status.FAILING, "acl-guarded": Status.PASSING, "acl-web": Status.PASSING,
        "acl-v6-rdp": Status.FAILING, "acl-egress": Status.PASSING}
    assert got["acl-open"].data["open_admin_ports"] == [22, 3389]
    assert got["acl-v6-rdp"].data["open_admin_ports"] == [3389]


def test_default_security_groups_must_have_no_rules_and_other_groups_are_skipped():
    allow_all = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]

    def group(group_id, name, ingress=(), egress=()):
        return SecurityGroup(group_id=group_id, name=name, region="us-east-1", vpc_id="vpc-1",
                             arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{group_id}",
                             ingress=list(ingress), egress=list(egress))

    results = ec2.default_security_group_restricted.judge([
        group("sg-empty", "default"), group("sg-egress", "default", egress=allow_all),
        group("sg-web", "web", ingress=allow_all),
    ])
    assert [(r.resource_id.rsplit("/", 1)[-1], r.status) for r in results] == [
        ("sg-empty", Status.PASSING), ("sg-egress", Status.FAILING)]
    assert "outbound" in results[1].title
