"""Every Okta check as a pure function on plain snapshots: a passing and a failing resource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Status
from connectors.okta import admins, policies, users
from connectors.okta.admins import Admin, AdminRoster
from connectors.okta.policies import Policy, PolicySet, PolicyType
from connectors.okta.users import Directory, User, UserStatus

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ORG = "acme.okta.com"


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def user(uid: str, status: UserStatus = UserStatus.ACTIVE, *, last_login: float | None = None,
         activated: float | None = 400, status_changed: float = 400) -> User:
    return User(id=uid, login=f"{uid}@acme.com", status=status, created=days_ago(500),
                activated=days_ago(activated) if activated is not None else None,
                status_changed=days_ago(status_changed),
                last_login=days_ago(last_login) if last_login is not None else None)


def directory(*members: User, inactive_days: int = 90, stuck_after_days: int = 30) -> Directory:
    return Directory(org_host=ORG, read_at=NOW, users=list(members),
                     inactive_days=inactive_days, stuck_after_days=stuck_after_days)


def judged(check: Any, snapshot: Any) -> dict[str, str]:
    return {r.resource_id.rsplit(":", 1)[-1]: r.status.value for r in check.judge(snapshot)}


def policy(pid: str, *, status: str = "ACTIVE", settings: dict[str, Any] | None = None,
           conditions: dict[str, Any] | None = None,
           rules: list[dict[str, Any]] | None = None) -> Policy:
    return Policy(id=pid, name=pid, status=status, system=False, priority=1,
                  settings=settings or {}, conditions=conditions or {}, rules=rules or [])


def policy_set(kind: PolicyType, *members: Policy, **thresholds: int) -> PolicySet:
    return PolicySet(org_host=ORG, type=kind, policies=list(members), thresholds=thresholds)


# --- users -----------------------------------------------------------------------------------

def test_inactive_users_fail_after_the_window_and_pass_within_it():
    result = judged(users.inactive_users, directory(
        user("recent", last_login=3), user("stale", last_login=91),
        user("new-joiner", activated=10), user("never-used", activated=120),
        user("locked-but-recent", UserStatus.LOCKED_OUT, last_login=20),
        user("suspended", UserStatus.SUSPENDED, last_login=400),
        user("staged", UserStatus.STAGED, activated=None)))
    assert result == {"recent": "passing", "stale": "failing", "new-joiner": "passing",
                      "never-used": "failing", "locked-but-recent": "passing",
                      "suspended": "not_applicable", "staged": "not_applicable"}


def test_inactive_window_comes_from_the_snapshot():
    snapshot = directory(user("a", last_login=45), inactive_days=30)
    assert judged(users.inactive_users, snapshot) == {"a": "failing"}


def test_inactive_user_title_names_the_last_sign_in_date_not_a_moving_age():
    [result] = users.inactive_users.judge(directory(user("stale", last_login=100)))
    assert result.status == Status.FAILING
    assert days_ago(100).date().isoformat() in result.title
    assert result.data["lastLogin"] == days_ago(100).isoformat()
    assert "days ago" not in str(result.data)


def test_users_stuck_in_pending_or_blocked_states_fail_after_the_window():
    result = judged(users.stuck_users, directory(
        user("active"), user("fresh-staged", UserStatus.STAGED, status_changed=2),
        user("old-staged", UserStatus.STAGED, status_changed=60),
        user("pending-activation", UserStatus.PROVISIONED, status_changed=45),
        user("just-locked", UserStatus.LOCKED_OUT, status_changed=1),
        user("long-suspended", UserStatus.SUSPENDED, status_changed=31),
        user("expired-password", UserStatus.PASSWORD_EXPIRED, status_changed=5)))
    assert result == {"active": "passing", "fresh-staged": "passing", "old-staged": "failing",
                      "pending-activation": "failing", "just-locked": "passing",
                      "long-suspended": "failing", "expired-password": "passing"}


def test_user_resource_ids_name_the_org_and_the_user():
    [result] = users.stuck_users.judge(directory(user("00u1")))
    assert result.resource_id == "okta:acme.okta.com:user:00u1"


# --- admins ----------------------------------------------------------------------------------

def roster(supers: int, max_super_admins: int = 4) -> AdminRoster:
    people = [Admin(id=f"00u{i}", login=f"admin{i}@acme.com", roles={"SUPER_ADMIN": "USER"})
              for i in range(supers)]
    people.append(Admin(id="00uh", login="help@acme.com", roles={"HELP_DESK_ADMIN": "USER"}))
    return AdminRoster(org_host=ORG, admins=people, max_super_admins=max_super_admins)


def test_super_admins_pass_up_to_the_threshold_and_fail_above_it():
    [ok] = admins.super_admin_count.judge(roster(4))
    [too_many] = admins.super_admin_count.judge(roster(5))
    assert (ok.status, too_many.status) == (Status.PASSING, Status.FAILING)
    assert ok.resource_id == too_many.resource_id == "okta:acme.okta.com:org"
    assert too_many.data["superAdminCount"] == 5 and too_many.data["maxSuperAdmins"] == 4
    assert [a["login"] for a in too_many.data["superAdmins"]] == [
        f"admin{i}@acme.com" for i in range(5)]
    assert "help@acme.com" not in str(too_many.data)


def test_super_admin_threshold_comes_from_the_snapshot():
    [result] = admins.super_admin_count.judge(roster(5, max_super_admins=6))
    assert result.status == Status.PASSING


# --- password policies -----------------------------------------------------------------------

def password_settings(*, length: int = 14, symbol: int = 1, history: int = 5,
                      lockout: int = 10) -> dict[str, Any]:
    return {"password": {
        "complexity": {"minLength": length, "minLowerCase": 1, "minUpperCase": 1,
                       "minNumber": 1, "minSymbol": symbol},
        "age": {"historyCount": history}, "lockout": {"maxAttempts": lockout}}}


def test_password_policies_pass_when_strong_and_fail_on_each_gap():
    result = judged(policies.password_strength, policy_set(
        PolicyType.PASSWORD,
        policy("strong", settings=password_settings()),
        policy("short", settings=password_settings(length=11)),
        policy("no-symbol", settings=password_settings(symbol=0)),
        policy("short-history", settings=password_settings(history=4)),
        policy("no-lockout", settings=password_settings(lockout=0)),
        policy("late-lockout", settings=password_settings(lockout=11)),
        policy("inactive", status="INACTIVE", settings=password_settings(length=6)),
        policy("ad-mastered", settings=password_settings(length=6),
               conditions={"authProvider": {"provider": "ACTIVE_DIRECTORY"}})))
    assert result == {"strong": "passing", "short": "failing", "no-symbol": "failing",
                      "short-history": "failing", "no-lockout": "failing",
                      "late-lockout": "failing", "inactive": "not_applicable",
                      "ad-mastered": "not_applicable"}


def test_password_policy_failure_lists_what_is_missing():
    [result] = policies.password_strength.judge(policy_set(
        PolicyType.PASSWORD, policy("weak", settings=password_settings(length=8, symbol=0,
                                                                       lockout=0))))
    assert result.data["missing"] == ["minimum length 12 (is 8)", "symbols",
                                      "lockout after at most 10 failed attempts (lockout is off)"]


# --- authentication policies (MFA) -----------------------------------------------------------

def access_rule(name: str, mode: str | None, *, access: str = "ALLOW",
                status: str = "ACTIVE") -> dict[str, Any]:
    sign_on: dict[str, Any] = {"access": access}
    if mode:
        sign_on["verificationMethod"] = {"type": "ASSURANCE", "factorMode": mode}
    return {"id": f"rul-{name}", "name": name, "status": status,
            "actions": {"appSignOn": sign_on}}


def test_authentication_policies_fail_when_any_allowing_rule_takes_one_factor():
    result = judged(policies.mfa_required, policy_set(
        PolicyType.ACCESS_POLICY,
        policy("two-factors", rules=[access_rule("Catch-all Rule", "2FA")]),
        policy("one-factor", rules=[access_rule("Office", "1FA"),
                                    access_rule("Catch-all Rule", "2FA")]),
        policy("deny-and-2fa", rules=[access_rule("Block", None, access="DENY"),
                                      access_rule("Old", "1FA", status="INACTIVE"),
                                      access_rule("Catch-all Rule", "2FA")]),
        policy("off", status="INACTIVE", rules=[access_rule("Catch-all Rule", "1FA")])))
    assert result == {"two-factors": "passing", "one-factor": "failing",
                      "deny-and-2fa": "passing", "off": "not_applicable"}


# --- enrollment policies ---------------------------------------------------------------------

def enrollment(pid: str, *required: str, rule_enroll: str = "CHALLENGE",
               classic: bool = False) -> Policy:
    settings: dict[str, Any]
    if classic:
        settings = {"type": "FACTORS",
                    "factors": {key: {"enroll": {"self": "REQUIRED"}} for key in required}}
    else:
        settings = {"type": "AUTHENTICATORS", "authenticators": [
            {"key": key, "enroll": {"self": "REQUIRED"}} for key in required]
            + [{"key": "okta_sms", "enroll": {"self": "OPTIONAL"}}]}
    return policy(pid, settings=settings, rules=[
        {"id": f"0pr-{pid}", "name": "Default Rule", "status": "ACTIVE",
         "actions": {"enroll": {"self": rule_enroll}}}])


def test_enrollment_policies_pass_only_when_a_strong_factor_is_required_and_prompted():
    result = judged(policies.mfa_enrollment, policy_set(
        PolicyType.MFA_ENROLL,
        enrollment("verify", "okta_password", "okta_verify"),
        enrollment("email-only", "okta_password", "okta_email", "security_question"),
        enrollment("never-prompted", "okta_verify", rule_enroll="NEVER"),
        enrollment("classic-otp", "okta_otp", classic=True),
        enrollment("classic-question", "security_question", classic=True)))
    assert result == {"verify": "passing", "email-only": "failing",
                      "never-prompted": "failing", "classic-otp": "passing",
                      "classic-question": "failing"}


# --- global session policies -----------------------------------------------------------------

def session_rule(name: str, lifetime: int, idle: int, *, access: str = "ALLOW",
                 status: str = "ACTIVE") -> dict[str, Any]:
    signon: dict[str, Any] = {"access": access}
    if access == "ALLOW":
        signon["session"] = {"maxSessionLifetimeMinutes": lifetime,
                             "maxSessionIdleMinutes": idle, "usePersistentCookie": False}
    return {"id": f"0pr-{name}", "name": name, "status": status, "actions": {"signon": signon}}


def test_session_policies_fail_on_unlimited_or_too_long_sessions():
    result = judged(policies.session_lifetime, policy_set(
        PolicyType.OKTA_SIGN_ON,
        policy("short", rules=[session_rule("r", 720, 120)]),
        policy("unlimited", rules=[session_rule("Default Rule", 0, 120)]),
        policy("idle-too-long", rules=[session_rule("r", 600, 240)]),
        policy("deny-and-inactive", rules=[session_rule("block", 0, 0, access="DENY"),
                                           session_rule("old", 0, 0, status="INACTIVE"),
                                           session_rule("ok", 60, 15)]),
        policy("off", status="INACTIVE", rules=[session_rule("r", 0, 0)]),
        maxSessionLifetimeMinutes=720, maxSessionIdleMinutes=120))
    assert result == {"short": "passing", "unlimited": "failing", "idle-too-long": "failing",
                      "deny-and-inactive": "passing", "off": "not_applicable"}


def test_session_limits_come_from_the_snapshot():
    snapshot = policy_set(PolicyType.OKTA_SIGN_ON, policy("p", rules=[session_rule("r", 600, 60)]),
                          maxSessionLifetimeMinutes=480, maxSessionIdleMinutes=120)
    [result] = policies.session_lifetime.judge(snapshot)
    assert result.status == Status.FAILING
    assert "lifetime 600 min (max 480 min)" in result.title
