"""Okta password policies, one property per check: length, complexity, history and lockout.

They replace `okta.policy.password_strength` (which judged all four at once and stays declared,
deprecated, for one release). Each judges every password policy Okta masters; the thresholds come
from the connection's configuration through the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from connectors.base import Result, Severity, check
from connectors.okta.policies import Policy, PolicySet, collect_password_policies

REPLACES = ("okta.policy.password_strength",)
COMPLEXITY = (("minUpperCase", "an uppercase letter"), ("minLowerCase", "a lowercase letter"),
              ("minNumber", "a number"), ("minSymbol", "a symbol"))

Judge = Callable[[dict[str, Any], dict[str, int]], tuple[bool, str]]


def _password(policy: Policy) -> dict[str, Any]:
    return dict(policy.settings.get("password") or {})


def _judge_each(policies: PolicySet, section: str, judge: Judge) -> Iterator[Result]:
    """One result per password policy on one property: `judge(settings, thresholds)` says
    whether it holds and completes the title "Password policy <name> ..."."""
    for policy in policies.policies:
        rid = policies.resource(policy)
        provider = str((policy.conditions.get("authProvider") or {}).get("provider") or "OKTA")
        settings = dict(_password(policy).get(section) or {})
        data = {**policy.summary(), "authProvider": provider, section: settings,
                "thresholds": dict(policies.thresholds)}
        if not policy.is_active:
            yield Result.not_applicable(rid, f"Password policy {policy.name} is inactive", data)
            continue
        if provider != "OKTA":
            yield Result.not_applicable(
                rid, f"Password policy {policy.name} applies to {provider} users, whose "
                     "passwords the directory masters", data)
            continue
        passing, says = judge(settings, policies.thresholds)
        yield Result.of(rid, passing=passing, title=f"Password policy {policy.name} {says}",
                        data=data)


def _number(settings: dict[str, Any], key: str) -> int:
    try:
        return int(settings.get(key) or 0)
    except (TypeError, ValueError):
        return 0


@check(id="okta.policy.password_min_length", severity=Severity.MEDIUM,
       resource_type="okta.policy.password", needs=collect_password_policies,
       replaces=REPLACES,
       remediation="Edit the password policy (Security > Authenticators > Password > Edit) and "
                   "set 'Minimum length' to at least 14 characters (min_password_length).")
def password_min_length(policies: PolicySet) -> Iterator[Result]:
    """Password policies demand passwords of at least 14 characters."""
    def judge(complexity: dict[str, Any], thresholds: dict[str, int]) -> tuple[bool, str]:
        length, least = _number(complexity, "minLength"), thresholds.get("minLength", 14)
        return length >= least, (f"demands at least {length} characters (minimum {least})")

    yield from _judge_each(policies, "complexity", judge)


@check(id="okta.policy.password_complexity", severity=Severity.LOW,
       resource_type="okta.policy.password", needs=collect_password_policies,
       replaces=REPLACES,
       remediation="Edit the password policy (Security > Authenticators > Password > Edit) and "
                   "require a lowercase letter, an uppercase letter, a number and a symbol.")
def password_complexity(policies: PolicySet) -> Iterator[Result]:
    """Password policies demand an uppercase and a lowercase letter, a number and a symbol."""
    def judge(complexity: dict[str, Any], thresholds: dict[str, int]) -> tuple[bool, str]:
        missing = [words for key, words in COMPLEXITY if _number(complexity, key) < 1]
        return (not missing, "does not demand " + ", ".join(missing) if missing
                else "demands all four character classes")

    yield from _judge_each(policies, "complexity", judge)


@check(id="okta.policy.password_history", severity=Severity.LOW,
       resource_type="okta.policy.password", needs=collect_password_policies,
       replaces=REPLACES,
       remediation="Edit the password policy (Security > Authenticators > Password > Edit) and "
                   "set 'Enforce password history for last' to at least 5 passwords.")
def password_history(policies: PolicySet) -> Iterator[Result]:
    """Password policies refuse the last 5 passwords again."""
    def judge(age: dict[str, Any], thresholds: dict[str, int]) -> tuple[bool, str]:
        history, least = _number(age, "historyCount"), thresholds.get("minHistory", 5)
        return history >= least, (f"remembers {history} previous password"
                                  f"{'s' if history != 1 else ''} (minimum {least})")

    yield from _judge_each(policies, "age", judge)


@check(id="okta.policy.password_lockout", severity=Severity.MEDIUM,
       resource_type="okta.policy.password", needs=collect_password_policies,
       replaces=REPLACES,
       remediation="Edit the password policy (Security > Authenticators > Password > Edit) and "
                   "lock the user out after at most 10 unsuccessful attempts.")
def password_lockout(policies: PolicySet) -> Iterator[Result]:
    """Password policies lock the account out after at most 10 failed attempts."""
    def judge(lockout: dict[str, Any], thresholds: dict[str, int]) -> tuple[bool, str]:
        attempts, most = _number(lockout, "maxAttempts"), thresholds.get("maxLockoutAttempts", 10)
        if not attempts:
            return False, f"never locks an account out (at most {most} attempts)"
        return attempts <= most, f"locks out after {attempts} failed attempts (at most {most})"

    yield from _judge_each(policies, "lockout", judge)
