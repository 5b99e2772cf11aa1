"""The AWS account password policy, one property per check: length (CIS AWS v3.0 1.8), reuse
prevention (1.9), the four character classes and expiry (named separately by SOC 2, ISO 27001
and NIST SP 800-53 IA-5(1), not by CIS v3.0).

They replace `aws.iam.password_policy_strength` (which judged every property at once and stays
declared, deprecated, for one release). As Prowler judges them, an account without a password
policy fails each one; every result carries the whole policy it judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from connectors.aws.iam import (
    MAX_PASSWORD_AGE_DAYS,
    MIN_PASSWORD_LENGTH,
    MIN_PASSWORD_REUSE_PREVENTION,
    PasswordPolicy,
    collect_password_policy,
)
from connectors.base import Result, Severity, check

REPLACES = ("aws.iam.password_policy_strength",)
_KEEP = " (the call replaces the whole policy: pass every setting you keep)"

Judge = Callable[[dict[str, Any]], tuple[bool, str]]


def _number(policy: dict[str, Any], key: str) -> int:
    try:
        return int(policy.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def judge_policy(policy: PasswordPolicy, judge: Judge) -> Iterator[Result]:
    """One result for the account on one property: `judge(policy)` says whether it holds and
    completes the title "The password policy ..."."""
    data = {"account_id": policy.account_id, "password_policy": policy.policy}
    if policy.policy is None:
        yield Result.of(policy.root_arn, passing=False,
                        title="The account has no password policy", data=data)
        return
    passing, says = judge(policy.policy)
    yield Result.of(policy.root_arn, passing=passing, title=f"The password policy {says}",
                    data=data)


def _requires(key: str, words: str) -> Judge:
    def judge(policy: dict[str, Any]) -> tuple[bool, str]:
        required = bool(policy.get(key, False))
        return required, f"{'requires' if required else 'does not require'} {words}"
    return judge


@check(id="aws.iam.password_policy_min_length", severity=Severity.MEDIUM,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       benchmarks={"cis_aws": ["1.8"]},
       remediation="Set the account password policy's minimum length to 14 or more (IAM > "
                   "Account settings > Password policy), e.g. `aws iam "
                   "update-account-password-policy --minimum-password-length 14`" + _KEEP + ".")
def password_policy_min_length(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy requires at least 14 characters."""
    def judge(p: dict[str, Any]) -> tuple[bool, str]:
        length = _number(p, "MinimumPasswordLength")
        return length >= MIN_PASSWORD_LENGTH, f"requires at least {length} characters" + (
            "" if length >= MIN_PASSWORD_LENGTH else f" (fewer than {MIN_PASSWORD_LENGTH})")
    yield from judge_policy(policy, judge)


@check(id="aws.iam.password_policy_reuse_prevention", severity=Severity.MEDIUM,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       benchmarks={"cis_aws": ["1.9"]},
       remediation="Prevent reuse of the last 24 passwords (IAM > Account settings > Password "
                   "policy > Prevent password reuse), e.g. `aws iam "
                   "update-account-password-policy --password-reuse-prevention 24`" + _KEEP + ".")
def password_policy_reuse_prevention(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy prevents reuse of the last 24 passwords."""
    def judge(p: dict[str, Any]) -> tuple[bool, str]:
        reuse = _number(p, "PasswordReusePrevention")
        passing = reuse >= MIN_PASSWORD_REUSE_PREVENTION
        return passing, (f"prevents reuse of the last {reuse} passwords" if reuse
                         else "allows any earlier password again") + (
            "" if passing else f" (fewer than {MIN_PASSWORD_REUSE_PREVENTION})")
    yield from judge_policy(policy, judge)


@check(id="aws.iam.password_policy_uppercase", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       remediation="Require at least one uppercase letter (IAM > Account settings > Password "
                   "policy), e.g. `aws iam update-account-password-policy "
                   "--require-uppercase-characters`" + _KEEP + ".")
def password_policy_uppercase(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy requires an uppercase letter."""
    yield from judge_policy(policy, _requires("RequireUppercaseCharacters",
                                              "an uppercase letter"))


@check(id="aws.iam.password_policy_lowercase", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       remediation="Require at least one lowercase letter (IAM > Account settings > Password "
                   "policy), e.g. `aws iam update-account-password-policy "
                   "--require-lowercase-characters`" + _KEEP + ".")
def password_policy_lowercase(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy requires a lowercase letter."""
    yield from judge_policy(policy, _requires("RequireLowercaseCharacters",
                                              "a lowercase letter"))


@check(id="aws.iam.password_policy_number", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       remediation="Require at least one number (IAM > Account settings > Password policy), "
                   "e.g. `aws iam update-account-password-policy --require-numbers`"
                   + _KEEP + ".")
def password_policy_number(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy requires a number."""
    yield from judge_policy(policy, _requires("RequireNumbers", "a number"))


@check(id="aws.iam.password_policy_symbol", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       remediation="Require at least one symbol (IAM > Account settings > Password policy), "
                   "e.g. `aws iam update-account-password-policy --require-symbols`"
                   + _KEEP + ".")
def password_policy_symbol(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy requires a symbol."""
    yield from judge_policy(policy, _requires("RequireSymbols", "a symbol"))


@check(id="aws.iam.password_policy_expiry", severity=Severity.LOW,
       resource_type="aws.account", needs=collect_password_policy, replaces=REPLACES,
       remediation="Expire passwords within 90 days (IAM > Account settings > Password policy "
                   "> Turn on password expiration), e.g. `aws iam "
                   "update-account-password-policy --max-password-age 90`" + _KEEP + ".")
def password_policy_expiry(policy: PasswordPolicy) -> Iterator[Result]:
    """The account password policy expires passwords within 90 days."""
    def judge(p: dict[str, Any]) -> tuple[bool, str]:
        age = _number(p, "MaxPasswordAge")
        if not age:
            return False, "never expires passwords"
        return age <= MAX_PASSWORD_AGE_DAYS, f"expires passwords after {age} days" + (
            "" if age <= MAX_PASSWORD_AGE_DAYS else f" (more than {MAX_PASSWORD_AGE_DAYS})")
    yield from judge_policy(policy, judge)


def password_policy_gaps(policy: dict[str, Any] | None) -> list[str]:
    """The CIS password requirements the policy misses, in words; empty when it meets them."""
    if policy is None:
        return ["a password policy"]
    gaps = []
    length = int(policy.get("MinimumPasswordLength", 0))
    if length < MIN_PASSWORD_LENGTH:
        gaps.append(f"minimum length {MIN_PASSWORD_LENGTH} (is {length})")
    for key, words in (("RequireUppercaseCharacters", "uppercase letters"),
                       ("RequireLowercaseCharacters", "lowercase letters"),
                       ("RequireNumbers", "numbers"), ("RequireSymbols", "symbols")):
        if not policy.get(key, False):
            gaps.append(words)
    max_age = int(policy.get("MaxPasswordAge", 0) or 0)
    if not 0 < max_age <= MAX_PASSWORD_AGE_DAYS:
        gaps.append(f"expiry within {MAX_PASSWORD_AGE_DAYS} days"
                    + (f" (is {max_age})" if max_age else " (passwords never expire)"))
    reuse = int(policy.get("PasswordReusePrevention", 0) or 0)
    if reuse < MIN_PASSWORD_REUSE_PREVENTION:
        gaps.append(f"reuse prevention of {MIN_PASSWORD_REUSE_PREVENTION} (is {reuse})")
    return gaps


@check(id="aws.iam.password_policy_strength", severity=Severity.MEDIUM,
       resource_type="aws.account", needs=collect_password_policy,
       remediation="Deprecated alias, kept for one release: see "
                   "aws.iam.password_policy_min_length, _reuse_prevention, _uppercase, "
                   "_lowercase, _number, _symbol and _expiry.")
def password_policy_strength(policy: PasswordPolicy) -> Iterator[Result]:
    """Deprecated alias (one release): the password policy meets every strength property."""
    gaps = password_policy_gaps(policy.policy)
    if policy.policy is None:
        title = "The account has no password policy"
    elif gaps:
        title = "The password policy is missing " + "; ".join(gaps)
    else:
        title = "The password policy meets the CIS requirements"
    yield Result.of(policy.root_arn, passing=not gaps, title=title,
                    data={"account_id": policy.account_id, "password_policy": policy.policy,
                          "missing": gaps})


PASSWORD_CHECKS = (password_policy_min_length, password_policy_reuse_prevention,
                   password_policy_uppercase, password_policy_lowercase, password_policy_number,
                   password_policy_symbol, password_policy_expiry)
