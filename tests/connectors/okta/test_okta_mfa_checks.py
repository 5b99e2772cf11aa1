"""The checks of issue #13 as pure functions on plain snapshots: factors per person, MFA per
global session rule, the org-level verdict, and the password policy split one property a check."""

from __future__ import annotations

from typing import Any

from connectors.base import Status
from connectors.okta import OktaConnector, factors, passwords, policies
from connectors.okta.factors import Factor, FactorRoster, Person
from connectors.okta.policies import PolicyType
from tests.connectors.okta.test_okta_checks import (
    ORG,
    judged,
    password_settings,
    policy,
    policy_set,
)


def person(uid: str, *enrolled: tuple[str, str]) -> Person:
    return Person(id=uid, login=f"{uid}@acme.com", factors=[
        Factor(id=f"f-{uid}-{i}", type=kind, provider="OKTA", status=status, vendor="OKTA")
        for i, (kind, status) in enumerate(enrolled)])


def roster(*people: Person, required: bool = True) -> FactorRoster:
    return FactorRoster(org_host=ORG, people=list(people), require_phishing_resistant=required)


PEOPLE = (
    person("push", ("push", "ACTIVE")),
    person("key", ("webauthn", "ACTIVE")),
    person("fastpass", ("signed_nonce", "ACTIVE")),
    person("totp-and-email", ("token:software:totp", "ACTIVE"), ("email", "ACTIVE")),
    person("sms", ("sms", "ACTIVE")),
    person("email-and-question", ("email", "ACTIVE"), ("question", "ACTIVE")),
    person("pending-push", ("push", "PENDING_ACTIVATION")),
    person("retired-key", ("u2f", "INACTIVE"), ("call", "ACTIVE")),
    person("none"),
)


# --- factors per person ----------------------------------------------------------------------

def test_mfa_enrolled_counts_active_possession_factors_not_email_or_questions():
    assert judged(factors.mfa_enrolled, roster(*PEOPLE)) == {
        "push": "passing", "key": "passing", "fastpass": "passing",
        "totp-and-email": "passing", "sms": "passing", "email-and-question": "failing",
        "pending-push": "failing", "retired-key": "passing", "none": "failing"}


def test_mfa_enrolled_evidence_lists_every_factor_and_those_counted():
    [result] = factors.mfa_enrolled.judge(roster(PEOPLE[3]))
    assert result.data["secondFactors"] == ["token:software:totp"]
    assert [f["factorType"] for f in result.data["factors"]] == ["token:software:totp", "email"]
    assert result.resource_id == "okta:acme.okta.com:user:totp-and-email"


def test_phishing_resistant_mfa_passes_webauthn_u2f_and_fastpass_only():
    assert judged(factors.phishing_resistant_mfa, roster(*PEOPLE)) == {
        "push": "failing", "key": "passing", "fastpass": "passing",
        "totp-and-email": "failing", "sms": "failing", "email-and-question": "failing",
        "pending-push": "failing", "retired-key": "failing", "none": "failing"}


def test_phishing_resistance_not_required_makes_the_others_not_applicable():
    got = judged(factors.phishing_resistant_mfa, roster(*PEOPLE[:2], required=False))
    assert got == {"push": "not_applicable", "key": "passing"}
    [result] = factors.phishing_resistant_mfa.judge(roster(PEOPLE[0], required=False))
    assert result.data["required"] is False and "not required" in result.title


# --- global session rules --------------------------------------------------------------------

def gsp_rule(name: str, require: bool, *, access: str = "ALLOW",
             status: str = "ACTIVE") -> dict[str, Any]:
    signon: dict[str, Any] = {"access": access, "requireFactor": require,
                              "primaryFactor": "PASSWORD_IDP_ANY_FACTOR"}
    if require:
        signon |= {"factorPromptMode": "ALWAYS", "factorLifetime": 15}
    return {"id": name, "name": name, "status": status, "actions": {"signon": signon}}


GSP = policy_set(
    PolicyType.OKTA_SIGN_ON,
    policy("everyone", rules=[gsp_rule("mfa", True), gsp_rule("password-only", False),
                              gsp_rule("deny", False, access="DENY"),
                              gsp_rule("old", False, status="INACTIVE")]),
    policy("off", status="INACTIVE", rules=[gsp_rule("off-rule", False)]))


def test_signon_requires_mfa_judges_each_allowing_rule_of_active_policies():
    assert judged(policies.signon_requires_mfa, GSP) == {
        "mfa": "passing", "password-only": "failing", "deny": "not_applicable",
        "old": "not_applicable", "off-rule": "not_applicable"}


def test_signon_rule_evidence_carries_the_rule_and_its_policy():
    results = {r.resource_id: r for r in policies.signon_requires_mfa.judge(GSP)}
    judged_rule = results["okta:acme.okta.com:policy_rule:mfa"]
    assert judged_rule.data["requireFactor"] is True
    assert judged_rule.data["factorPromptMode"] == "ALWAYS"
    assert judged_rule.data["policy"]["name"] == "everyone"


# --- the org ---------------------------------------------------------------------------------

def test_mfa_for_everyone_passes_only_when_every_person_and_rule_does():
    good_rules = policy_set(PolicyType.OKTA_SIGN_ON,
                            policy("p", rules=[gsp_rule("mfa", True),
                                               gsp_rule("deny", False, access="DENY")]))
    [ok] = factors.mfa_for_everyone.judge(roster(*PEOPLE[:3]), good_rules)
    [people_fail] = factors.mfa_for_everyone.judge(roster(*PEOPLE), good_rules)
    [rule_fail] = factors.mfa_for_everyone.judge(roster(*PEOPLE[:3]), GSP)
    assert (ok.status, people_fail.status, rule_fail.status) == (
        Status.PASSING, Status.FAILING, Status.FAILING)
    assert ok.resource_id == "okta:acme.okta.com:org"
    assert people_fail.data["usersWithoutSecondFactor"] == [
        "email-and-question@acme.com", "pending-push@acme.com", "none@acme.com"]
    assert rule_fail.data["rulesWithoutMfa"] == ["everyone / password-only"]


# --- password policies, one property a check -------------------------------------------------

THRESHOLDS = {"minLength": 14, "minHistory": 5, "maxLockoutAttempts": 10}


def password_policies(**variants: dict[str, Any]) -> Any:
    return policy_set(PolicyType.PASSWORD, *(policy(name, settings=password_settings(**kw))
                                             for name, kw in variants.items()), **THRESHOLDS)


def test_password_min_length_passes_at_the_threshold_and_fails_below():
    snapshot = password_policies(ok={"length": 14}, short={"length": 12})
    assert judged(passwords.password_min_length, snapshot) == {"ok": "passing",
                                                               "short": "failing"}
    [_, short] = passwords.password_min_length.judge(snapshot)
    assert short.data["complexity"]["minLength"] == 12 and short.data["thresholds"] == THRESHOLDS


def test_password_complexity_fails_on_a_missing_class():
    snapshot = password_policies(ok={}, no_symbol={"symbol": 0})
    assert judged(passwords.password_complexity, snapshot) == {"ok": "passing",
                                                               "no_symbol": "failing"}
    [_, weak] = passwords.password_complexity.judge(snapshot)
    assert weak.title.endswith("does not demand a symbol")


def test_password_history_fails_below_the_threshold():
    snapshot = password_policies(ok={"history": 5}, short={"history": 4})
    assert judged(passwords.password_history, snapshot) == {"ok": "passing",
                                                            "short": "failing"}


def test_password_lockout_fails_when_off_or_too_late():
    snapshot = password_policies(ok={"lockout": 10}, off={"lockout": 0}, late={"lockout": 11})
    assert judged(passwords.password_lockout, snapshot) == {
        "ok": "passing", "off": "failing", "late": "failing"}
    assert judged(passwords.password_lockout, policy_set(
        PolicyType.PASSWORD, policy("strict", settings=password_settings(lockout=3)),
        maxLockoutAttempts=3)) == {"strict": "passing"}


def test_the_split_checks_skip_inactive_and_directory_mastered_policies():
    snapshot = policy_set(
        PolicyType.PASSWORD, policy("inactive", status="INACTIVE"),
        policy("ad", settings=password_settings(length=6),
               conditions={"authProvider": {"provider": "ACTIVE_DIRECTORY"}}), **THRESHOLDS)
    for chk in (passwords.password_min_length, passwords.password_complexity,
                passwords.password_history, passwords.password_lockout):
        assert judged(chk, snapshot) == {"inactive": "not_applicable", "ad": "not_applicable"}


def test_the_split_checks_replace_the_old_id_which_stays_declared():
    split = [passwords.password_min_length, passwords.password_complexity,
             passwords.password_history, passwords.password_lockout]
    assert all(c.replaces == ("okta.policy.password_strength",) for c in split)
    declared = {c.id for c in OktaConnector.checks}
    assert "okta.policy.password_strength" in declared  # a deprecated alias for one release
    assert len(declared) >= 12
