"""One property a check: the password policy and the admin ports, split out of the checks that
judged several at once (issue #13), on plain snapshots; the old ids stay as aliases."""

from __future__ import annotations

import pytest

from connectors.aws import AwsConnector, ec2, iam_password
from connectors.aws.ec2 import SecurityGroup
from connectors.aws.iam import PasswordPolicy
from connectors.base import Status

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
STRONG = {"MinimumPasswordLength": 14, "RequireUppercaseCharacters": True,
          "RequireLowercaseCharacters": True, "RequireNumbers": True, "RequireSymbols": True,
          "ExpirePasswords": True, "MaxPasswordAge": 90, "PasswordReusePrevention": 24}
# each property's check and a policy change that breaks only it
BROKEN = {
    "aws.iam.password_policy_min_length": {"MinimumPasswordLength": 13},
    "aws.iam.password_policy_reuse_prevention": {"PasswordReusePrevention": 23},
    "aws.iam.password_policy_uppercase": {"RequireUppercaseCharacters": False},
    "aws.iam.password_policy_lowercase": {"RequireLowercaseCharacters": False},
    "aws.iam.password_policy_number": {"RequireNumbers": False},
    "aws.iam.password_policy_symbol": {"RequireSymbols": False},
    "aws.iam.password_policy_expiry": {"MaxPasswordAge": 91},
}
BY_ID = {c.id: c for c in AwsConnector.checks}


def judge(check, policy):
    [result] = check.judge(PasswordPolicy(account_id=ACCOUNT, root_arn=ROOT, policy=policy))
    assert result.resource_id == ROOT
    return result


def test_the_password_checks_replace_the_old_one_which_stays_declared():
    assert [c.id for c in iam_password.PASSWORD_CHECKS] == list(BROKEN)
    assert all(c.replaces == ("aws.iam.password_policy_strength",)
               for c in iam_password.PASSWORD_CHECKS)
    assert "aws.iam.password_policy_strength" in BY_ID
    assert BY_ID["aws.iam.password_policy_min_length"].benchmarks == {"cis_aws": ("1.8",)}
    assert BY_ID["aws.iam.password_policy_reuse_prevention"].benchmarks == {"cis_aws": ("1.9",)}
    for check_id in ("aws.ec2.security_group_admin_ports_ipv4",
                     "aws.ec2.security_group_admin_ports_ipv6"):
        assert BY_ID[check_id].replaces == ("aws.ec2.security_group_admin_ports",)
    assert "aws.ec2.security_group_admin_ports" in BY_ID


@pytest.mark.parametrize("check_id", list(BROKEN))
def test_each_password_check_fails_on_its_own_property_only(check_id):
    weakened = {**STRONG, **BROKEN[check_id]}
    for other_id in BROKEN:
        result = judge(BY_ID[other_id], weakened)
        assert result.status is (Status.FAILING if other_id == check_id else Status.PASSING), \
            other_id
        assert result.data["password_policy"] == weakened  # the whole policy it judged
    assert judge(BY_ID[check_id], STRONG).status is Status.PASSING


@pytest.mark.parametrize("check_id", list(BROKEN))
def test_an_account_without_a_password_policy_fails_every_property(check_id):
    result = judge(BY_ID[check_id], None)
    assert result.status is Status.FAILING
    assert result.title == "The account has no password policy"
    assert result.data == {"account_id": ACCOUNT, "password_policy": None}


def test_password_titles_say_the_value_judged():
    assert "requires at least 8 characters (fewer than 14)" in judge(
        iam_password.password_policy_min_length, {**STRONG, "MinimumPasswordLength": 8}).title
    assert "never expires passwords" in judge(
        iam_password.password_policy_expiry, {k: v for k, v in STRONG.items()
                                              if k != "MaxPasswordAge"}).title
    assert "allows any earlier password again" in judge(
        iam_password.password_policy_reuse_prevention,
        {**STRONG, "PasswordReusePrevention": 0}).title
    assert "does not require a symbol" in judge(
        iam_password.password_policy_symbol, {**STRONG, "RequireSymbols": False}).title


def test_the_deprecated_password_alias_still_judges_every_property_at_once():
    [weak] = iam_password.password_policy_strength.judge(
        PasswordPolicy(account_id=ACCOUNT, root_arn=ROOT, policy={**STRONG, "RequireNumbers":
                                                                  False}))
    assert weak.status is Status.FAILING and weak.data["missing"] == ["numbers"]


# --- security groups: CIS 5.2 (0.0.0.0/0) and 5.3 (::/0) --------------------------------------

def rule(protocol, low, high, *cidrs):
    ports = {} if low is None else {"FromPort": low, "ToPort": high}
    return {"IpProtocol": protocol, **ports,
            "IpRanges": [{"CidrIp": c} for c in cidrs if ":" not in c],
            "Ipv6Ranges": [{"CidrIpv6": c} for c in cidrs if ":" in c]}


def group(*rules):
    return SecurityGroup(group_id="sg-1", name="web", region="us-east-1", vpc_id="vpc-1",
                         arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-1",
                         ingress=list(rules))


V4, V6 = "0.0.0.0/0", "::/0"


@pytest.mark.parametrize(("rules", "ipv4", "ipv6"), [
    ([rule("tcp", 22, 22, V4)], [22], []),
    ([rule("tcp", 3389, 3389, V6)], [], [3389]),
    ([rule("-1", None, None, V4)], [22, 3389], []),  # all traffic, no ports
    ([rule("-1", None, None, V6)], [], [22, 3389]),
    ([rule("tcp", 0, 1024, V4, V6)], [22], [22]),  # a range covering 22
    ([rule("tcp", 20, 4000, V6)], [], [22, 3389]),
    ([rule("tcp", 0, 65535, V4)], [22, 3389], []),
    ([rule("6", 22, 22, V4)], [22], []),  # protocol number for TCP
    ([rule("udp", 3389, 3389, V4, V6)], [], []),  # as Prowler: TCP or all traffic only
    ([rule("udp", 0, 65535, V4)], [], []),
    ([rule("icmp", -1, -1, V4)], [], []),
    ([rule("tcp", 22, 22, "10.0.0.0/8", "2001:db8::/32")], [], []),
    ([rule("tcp", 443, 443, V4, V6)], [], []),
    ([rule("tcp", 23, 3388, V4)], [], []),  # a range between the two ports
    ([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
       "UserIdGroupPairs": [{"GroupId": "sg-bastion"}]}], [], []),
])
def test_admin_ports_are_judged_per_address_family_as_prowler_counts_them(rules, ipv4, ipv6):
    for chk, source, ports in ((ec2.security_group_admin_ports_ipv4, V4, ipv4),
                               (ec2.security_group_admin_ports_ipv6, V6, ipv6)):
        [result] = chk.judge([group(*rules)])
        assert result.status is (Status.FAILING if ports else Status.PASSING), chk.id
        assert result.data["open_admin_ports"] == ports
        assert result.data["source"] == source and result.data["ingress"] == rules
        if ports:
            assert all(f"({p})" in result.title for p in ports)
            assert f"from {source}" in result.title
        else:
            assert f"allows no SSH or RDP from {source}" in result.title


def test_the_deprecated_admin_ports_alias_keeps_its_verdict_on_udp():
    [result] = ec2.security_group_admin_ports.judge([group(rule("udp", 3389, 3389, V4))])
    assert result.status is Status.FAILING
