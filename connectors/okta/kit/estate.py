"""A realistic emulated Okta org for the kit, tests and demos: what the local Okta server serves.

`build_estate` lays out a small company's org ("acme") as the Okta API's own JSON: 25 users in
every lifecycle state, password, global session, authentication and enrollment policies with
their rules, and admin role assignments. Every specification below carries, written by hand, the
verdict each check must reach on it, so the tests compare the connector with an independent
reading of the same estate.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Status
from connectors.okta.kit.factors import FACTORS, factors_json
from connectors.okta.kit.shapes import (
    EVERYONE,
    ago,
    links,
    okta_id,
    policy_json,
    role_json,
    rule_json,
)

PASSING, FAILING, NOT_APPLICABLE = (Status.PASSING.value, Status.FAILING.value,
                                    Status.NOT_APPLICABLE.value)
P, F, NA = PASSING, FAILING, NOT_APPLICABLE
DOMAIN = "acme.example.com"
CLIENT_ID = "0oa8f2kq1xLsvZ3Tm5d7"
GRANTED_SCOPES = ("okta.users.read", "okta.policies.read", "okta.roles.read", "okta.groups.read")


# --- users -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _User:
    login: str
    status: str
    days_in_status: int  # statusChanged, days ago
    last_login: int | None  # days ago; None: never signed in
    created: int  # days ago
    inactive: str  # the verdict of okta.user.inactive (90 days)
    stuck: str  # the verdict of okta.user.stuck_lifecycle (30 days)
    roles: tuple[tuple[str, str], ...] = ()  # (role type, assignment type)


SUPER = (("SUPER_ADMIN", "USER"),)
USERS = (
    _User("alice.nguyen", "ACTIVE", 400, 2, 400, P, P, SUPER),
    _User("bob.martinez", "ACTIVE", 300, 120, 300, F, P),
    _User("carol.smith", "ACTIVE", 250, 85, 250, P, P),
    _User("dave.okafor", "ACTIVE", 250, 95, 250, F, P),
    _User("erin.kowalski", "ACTIVE", 10, None, 12, P, P),  # a new joiner, not signed in yet
    _User("frank.li", "ACTIVE", 200, None, 210, F, P),  # activated, never used
    _User("grace.hopper", "ACTIVE", 500, 1, 500, P, P, SUPER),
    _User("heidi.schmidt", "ACTIVE", 180, 30, 180, P, P, (("ORG_ADMIN", "USER"),)),
    _User("ivan.petrov", "ACTIVE", 160, 60, 160, P, P,
          (("READ_ONLY_ADMIN", "USER"), ("HELP_DESK_ADMIN", "GROUP"))),
    _User("judy.tanaka", "ACTIVE", 90, 5, 90, P, P, (("SUPER_ADMIN", "GROUP"),)),
    _User("ken.adams", "LOCKED_OUT", 2, 3, 300, P, P),
    _User("laura.chen", "LOCKED_OUT", 45, 46, 300, P, F),
    _User("mike.oconnor", "SUSPENDED", 100, 110, 700, NA, F, SUPER),
    _User("nina.rossi", "SUSPENDED", 5, 20, 300, NA, P),
    _User("oscar.diaz", "STAGED", 60, None, 60, NA, F),
    _User("paula.weber", "STAGED", 3, None, 3, NA, P),
    _User("quinn.baker", "PROVISIONED", 40, None, 41, NA, F),  # activation email never used
    _User("rachel.green", "PROVISIONED", 2, None, 2, NA, P),
    _User("sam.wilson", "PASSWORD_EXPIRED", 10, 95, 400, F, P),
    _User("tina.brown", "RECOVERY", 35, 100, 400, F, F),
    _User("uma.patel", "ACTIVE", 365, 0, 365, P, P, SUPER),
    _User("victor.hugo", "ACTIVE", 600, 200, 600, F, P, SUPER),
    _User("svc-backup", "ACTIVE", 700, 1, 700, P, P),
    _User("wendy.clark", "DEPROVISIONED", 300, 310, 900, "", ""),  # Okta does not list her
    _User("xavier.jones", "ACTIVE", 150, 15, 150, P, P, (("CUSTOM", "USER"),)),
)
SUPER_ADMINS = 6  # alice, grace, judy (through a group), mike, uma, victor


# --- policies --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _PasswordPolicy:
    name: str
    expect: str
    status: str = "ACTIVE"
    provider: str = "OKTA"
    min_length: int = 14
    complexity: tuple[int, int, int, int] = (1, 1, 1, 1)  # upper, lower, number, symbol
    history: int = 10
    lockout: int = 5
    system: bool = False
    # the verdicts of the per-property checks (14 characters, four classes, history 5, lockout
    # by 10); `expect` is the deprecated okta.policy.password_strength (12, classes, 5, 10)
    length_ok: str = P
    complexity_ok: str = P
    history_ok: str = P
    lockout_ok: str = P


PASSWORD_POLICIES = (
    # Okta's default, untouched: length 8, no symbol, history 4.
    _PasswordPolicy("Default Policy", F, min_length=8, complexity=(1, 1, 1, 0), history=4,
                    lockout=10, system=True, length_ok=F, complexity_ok=F, history_ok=F),
    _PasswordPolicy("Engineering Password Policy", P),
    _PasswordPolicy("Finance Password Policy", F, lockout=0, lockout_ok=F),  # never locks out
    _PasswordPolicy("Contractors (retired)", NA, status="INACTIVE", min_length=6, length_ok=NA,
                    complexity_ok=NA, history_ok=NA, lockout_ok=NA),
    _PasswordPolicy("Active Directory Users", NA, provider="ACTIVE_DIRECTORY", min_length=7,
                    length_ok=NA, complexity_ok=NA, history_ok=NA, lockout_ok=NA),
    _PasswordPolicy("Executives Password Policy", P, min_length=12, history=5, lockout=10,
                    length_ok=F),  # 12 was enough for the old check, not for 14
)


@dataclass(frozen=True)
class _SessionRule:
    name: str
    lifetime: int  # minutes, 0 = unlimited
    idle: int
    status: str = "ACTIVE"
    access: str = "ALLOW"
    require_factor: bool = True
    mfa: str = P  # the verdict of okta.policy.signon_requires_mfa on the rule


@dataclass(frozen=True)
class _SessionPolicy:
    name: str
    expect: str
    rules: tuple[_SessionRule, ...]
    status: str = "ACTIVE"
    system: bool = False


SIGN_ON_POLICIES = (
    _SessionPolicy("Admins Session Policy", P, (_SessionRule("Admins", 480, 30),)),
    _SessionPolicy("Engineering Sessions", F, (
        _SessionRule("Office network", 720, 120, require_factor=False, mfa=F),  # password only
        _SessionRule("Everywhere else", 1440, 60),  # a day-long session
    )),
    _SessionPolicy("Contractors Sessions", P, (
        _SessionRule("Block outside the VPN", 0, 0, access="DENY", require_factor=False,
                     mfa=NA),  # deny rules keep no session
        _SessionRule("VPN", 240, 60),
        _SessionRule("Old long sessions", 10_080, 600, status="INACTIVE", require_factor=False,
                     mfa=NA),
    )),
    _SessionPolicy("Legacy VPN Sessions", NA, (_SessionRule("Default", 0, 0, mfa=NA,
                                                            require_factor=False),),
                   status="INACTIVE"),
    # Okta's default rule: no lifetime limit, 2 idle hours, MFA not required.
    _SessionPolicy("Default Policy", F, (_SessionRule("Default Rule", 0, 120,
                                                      require_factor=False, mfa=F),),
                   system=True),
)


@dataclass(frozen=True)
class _AccessRule:
    name: str
    factor_mode: str | None  # "2FA", "1FA"; None for a deny rule
    status: str = "ACTIVE"
    access: str = "ALLOW"


@dataclass(frozen=True)
class _AccessPolicy:
    name: str
    expect: str
    rules: tuple[_AccessRule, ...]
    status: str = "ACTIVE"
    system: bool = False


ACCESS_POLICIES = (
    _AccessPolicy("Okta Dashboard", P, (_AccessRule("Catch-all Rule", "2FA"),), system=True),
    _AccessPolicy("Okta Admin Console", P, (_AccessRule("Catch-all Rule", "2FA"),), system=True),
    _AccessPolicy("Default Policy", F, (_AccessRule("Catch-all Rule", "1FA"),), system=True),
    _AccessPolicy("Salesforce", F, (
        _AccessRule("Office network", "1FA"),
        _AccessRule("Catch-all Rule", "2FA"),
    )),
    _AccessPolicy("GitHub Enterprise", P, (
        _AccessRule("Block unmanaged devices", None, access="DENY"),
        _AccessRule("Password only (disabled)", "1FA", status="INACTIVE"),
        _AccessRule("Catch-all Rule", "2FA"),
    )),
    _AccessPolicy("Legacy Intranet", NA, (_AccessRule("Catch-all Rule", "1FA"),),
                  status="INACTIVE"),
)


@dataclass(frozen=True)
class _EnrollmentPolicy:
    name: str
    expect: str
    authenticators: tuple[tuple[str, str], ...]  # (key, REQUIRED | OPTIONAL | NOT_ALLOWED)
    rule_enroll: str = "CHALLENGE"
    status: str = "ACTIVE"
    classic_factors: bool = False
    system: bool = False


ENROLLMENT_POLICIES = (
    _EnrollmentPolicy("Default Policy", P, (("okta_password", "REQUIRED"),
                                            ("okta_verify", "REQUIRED"),
                                            ("okta_email", "OPTIONAL")), system=True),
    _EnrollmentPolicy("Contractors Enrollment", F, (("okta_password", "REQUIRED"),
                                                    ("okta_email", "REQUIRED"),
                                                    ("okta_verify", "OPTIONAL"))),
    _EnrollmentPolicy("Service Accounts", F, (("okta_password", "REQUIRED"),
                                              ("okta_verify", "REQUIRED")), rule_enroll="NEVER"),
    _EnrollmentPolicy("Hardware Keys", P, (("okta_password", "REQUIRED"),
                                           ("webauthn", "REQUIRED"))),
    _EnrollmentPolicy("Classic MFA", P, (("okta_otp", "REQUIRED"), ("okta_sms", "OPTIONAL")),
                      classic_factors=True),
    _EnrollmentPolicy("Pilot (off)", NA, (("okta_email", "REQUIRED"),), status="INACTIVE"),
)


# --- the estate ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estate:
    """The org as the Okta API serves it, and the verdict each check must reach on it."""

    org_url: str
    now: datetime
    api_token: str
    client_id: str
    private_key_pem: str
    granted_scopes: tuple[str, ...]
    users: list[dict[str, Any]]  # every user, deprovisioned ones included
    policies: dict[str, list[dict[str, Any]]]  # policy type -> policies
    rules: dict[str, list[dict[str, Any]]]  # policy id -> rules
    roles: dict[str, list[dict[str, Any]]]  # user id -> role assignments
    expected: dict[str, dict[str, str]] = field(default_factory=dict)
    factors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user id -> factors

    @property
    def org_host(self) -> str:
        return urlsplit(self.org_url).netloc

    def credentials(self) -> dict[str, Any]:
        """Raw API-token credentials reaching this org (as a client would send them)."""
        return {"org_url": self.org_url, "api_token": self.api_token}

    def oauth_credentials(self, scopes: list[str] | None = None) -> dict[str, Any]:
        """Raw OAuth service app credentials reaching this org."""
        raw: dict[str, Any] = {"org_url": self.org_url, "client_id": self.client_id,
                               "private_key": self.private_key_pem}
        if scopes is not None:
            raw["scopes"] = scopes
        return raw

    def resource(self, kind: str, ident: str = "") -> str:
        return f"okta:{self.org_host}:{kind}:{ident}" if ident else f"okta:{self.org_host}:{kind}"



def _user_json(spec: _User, org_url: str, now: datetime) -> dict[str, Any]:
    uid = okta_id("00u", spec.login)
    first, _, last = spec.login.partition(".")
    activated = None if spec.status in ("STAGED", "PROVISIONED") else spec.created - 1
    return {
        "id": uid, "status": spec.status, "created": ago(now, spec.created),
        "activated": ago(now, activated), "statusChanged": ago(now, spec.days_in_status),
        "lastLogin": ago(now, spec.last_login), "lastUpdated": ago(now, spec.days_in_status),
        "passwordChanged": ago(now, spec.created), "type": {"id": okta_id("oty", "default")},
        "profile": {"firstName": first.capitalize(), "lastName": (last or "account").capitalize(),
                    "mobilePhone": None, "secondEmail": None,
                    "login": f"{spec.login}@{DOMAIN}", "email": f"{spec.login}@{DOMAIN}"},
        "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": links(org_url, f"/api/v1/users/{uid}"),
    }




def build_estate(org_url: str, now: datetime | None = None) -> Estate:
    """The acme org served at org_url, dated against `now`, with its expected verdicts."""
    now = now or datetime.now(UTC)
    org_url = org_url.rstrip("/")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    estate = Estate(org_url=org_url, now=now, api_token="00" + secrets.token_urlsafe(30),
                    client_id=CLIENT_ID, private_key_pem=pem, granted_scopes=GRANTED_SCOPES,
                    users=[], policies={}, rules={}, roles={})
    _lay_out_users(estate)
    _lay_out_password_policies(estate)
    _lay_out_sign_on_policies(estate)
    _lay_out_access_policies(estate)
    _lay_out_enrollment_policies(estate)
    _lay_out_factors(estate)
    return estate


def _lay_out_factors(estate: Estate) -> None:
    """Each user's factors; the factor checks judge the ACTIVE users only."""
    enrolled: dict[str, str] = {}
    resistant: dict[str, str] = {}
    for user in estate.users:
        login = user["profile"]["login"]
        estate.factors[user["id"]] = factors_json(user["id"], login, estate.org_url, estate.now)
        if user["status"] == "ACTIVE":
            _, enrolled_ok, resistant_ok = FACTORS[login.partition("@")[0]]
            enrolled[estate.resource("user", user["id"])] = enrolled_ok
            resistant[estate.resource("user", user["id"])] = resistant_ok
    estate.expected["okta.user.mfa_enrolled"] = enrolled
    estate.expected["okta.user.phishing_resistant_mfa"] = resistant
    # frank, erin, ivan and svc-backup have no second factor; two global session rules lack MFA
    estate.expected["okta.org.mfa_for_everyone"] = {estate.resource("org"): FAILING}


def _lay_out_users(estate: Estate) -> None:
    inactive: dict[str, str] = {}
    stuck: dict[str, str] = {}
    for spec in USERS:
        user = _user_json(spec, estate.org_url, estate.now)
        estate.users.append(user)
        if spec.roles:
            estate.roles[user["id"]] = [role_json(user["id"], role, how, estate.now,
                                                   estate.org_url) for role, how in spec.roles]
        if spec.status == "DEPROVISIONED":
            continue
        inactive[estate.resource("user", user["id"])] = spec.inactive
        stuck[estate.resource("user", user["id"])] = spec.stuck
    estate.expected["okta.user.inactive"] = inactive
    estate.expected["okta.user.stuck_lifecycle"] = stuck
    supers = sum(1 for spec in USERS for role, _ in spec.roles if role == "SUPER_ADMIN")
    if supers != SUPER_ADMINS:
        raise RuntimeError(f"the estate lists {supers} super admins, not {SUPER_ADMINS}")
    estate.expected["okta.admin.super_admin_count"] = {estate.resource("org"): FAILING}


def _lay_out_password_policies(estate: Estate) -> None:
    verdicts = {}
    policies = []
    for priority, spec in enumerate(PASSWORD_POLICIES, start=1):
        upper, lower, number, symbol = spec.complexity
        settings = {"password": {
            "complexity": {"minLength": spec.min_length, "minLowerCase": lower,
                           "minUpperCase": upper, "minNumber": number, "minSymbol": symbol,
                           "excludeUsername": True, "dictionary": {"common": {"exclude": True}},
                           "excludeAttributes": []},
            "age": {"maxAgeDays": 0, "expireWarnDays": 0, "minAgeMinutes": 0,
                    "historyCount": spec.history},
            "lockout": {"maxAttempts": spec.lockout, "autoUnlockMinutes": 0,
                        "userLockoutNotificationChannels": [], "showLockoutFailures": False},
        }, "recovery": {"factors": {"okta_email": {"status": "ACTIVE",
                                                    "properties": {"recoveryToken": {
                                                        "tokenLifetimeMinutes": 60}}}}},
            "delegation": {"options": {"skipUnlock": False}}}
        conditions = {**EVERYONE, "authProvider": {"provider": spec.provider}}
        policy = policy_json("PASSWORD", spec.name, spec.status, spec.system, priority,
                              estate.now, estate.org_url, settings, conditions)
        policies.append(policy)
        estate.rules[policy["id"]] = [rule_json(
            policy["id"], "PASSWORD", "Default Rule", 1, "ACTIVE",
            {"passwordChange": {"access": "ALLOW"},
             "selfServicePasswordReset": {"access": "ALLOW"},
             "selfServiceUnlock": {"access": "DENY"}},
            estate.now, estate.org_url,
            {"people": {"users": {"exclude": []}}, "network": {"connection": "ANYWHERE"}})]
        verdicts[estate.resource("policy", policy["id"])] = spec.expect
    estate.policies["PASSWORD"] = policies
    estate.expected["okta.policy.password_strength"] = verdicts
    for check_id, verdict in (("password_min_length", "length_ok"),
                              ("password_complexity", "complexity_ok"),
                              ("password_history", "history_ok"),
                              ("password_lockout", "lockout_ok")):
        estate.expected[f"okta.policy.{check_id}"] = {
            estate.resource("policy", policy["id"]): getattr(spec, verdict)
            for policy, spec in zip(policies, PASSWORD_POLICIES, strict=True)}


def _lay_out_sign_on_policies(estate: Estate) -> None:
    verdicts = {}
    signon_mfa: dict[str, str] = {}
    policies = []
    for priority, spec in enumerate(SIGN_ON_POLICIES, start=1):
        policy = policy_json("OKTA_SIGN_ON", spec.name, spec.status, spec.system, priority,
                              estate.now, estate.org_url, conditions=EVERYONE)
        policies.append(policy)
        rules = []
        for rule_priority, rule in enumerate(spec.rules, start=1):
            signon: dict[str, Any] = {"access": rule.access,
                                      "requireFactor": rule.require_factor,
                                      "primaryFactor": "PASSWORD_IDP_ANY_FACTOR",
                                      "rememberDeviceByDefault": False}
            if rule.require_factor:
                signon |= {"factorPromptMode": "ALWAYS", "factorLifetime": 15}
            if rule.access == "ALLOW":
                signon["session"] = {"usePersistentCookie": False,
                                     "maxSessionIdleMinutes": rule.idle,
                                     "maxSessionLifetimeMinutes": rule.lifetime}
            rules.append(rule_json(
                policy["id"], "SIGN_ON", rule.name, rule_priority, rule.status,
                {"signon": signon}, estate.now, estate.org_url,
                {"people": {"users": {"exclude": []}}, "network": {"connection": "ANYWHERE"},
                 "authContext": {"authType": "ANY"}}))
        estate.rules[policy["id"]] = rules
        verdicts[estate.resource("policy", policy["id"])] = spec.expect
        for written, rule in zip(rules, spec.rules, strict=True):
            signon_mfa[estate.resource("policy_rule", written["id"])] = rule.mfa
    estate.policies["OKTA_SIGN_ON"] = policies
    estate.expected["okta.policy.session_lifetime"] = verdicts
    estate.expected["okta.policy.signon_requires_mfa"] = signon_mfa


def _lay_out_access_policies(estate: Estate) -> None:
    verdicts = {}
    policies = []
    for priority, spec in enumerate(ACCESS_POLICIES, start=1):
        policy = policy_json("ACCESS_POLICY", spec.name, spec.status, spec.system, priority,
                              estate.now, estate.org_url)
        policies.append(policy)
        rules = []
        for rule_priority, rule in enumerate(spec.rules, start=1):
            app_sign_on: dict[str, Any] = {"access": rule.access}
            if rule.factor_mode is not None:
                constraints: list[dict[str, Any]] = [{"knowledge": {"types": ["password"]}}]
                if rule.factor_mode == "2FA":
                    constraints = [{"possession": {"deviceBound": "REQUIRED"}}]
                app_sign_on["verificationMethod"] = {
                    "factorMode": rule.factor_mode, "type": "ASSURANCE",
                    "reauthenticateIn": "PT2H", "constraints": constraints}
            rules.append(rule_json(policy["id"], "ACCESS_POLICY", rule.name,
                                    rule_priority if rule.name != "Catch-all Rule" else 99,
                                    rule.status, {"appSignOn": app_sign_on}, estate.now,
                                    estate.org_url))
        estate.rules[policy["id"]] = rules
        verdicts[estate.resource("policy", policy["id"])] = spec.expect
    estate.policies["ACCESS_POLICY"] = policies
    estate.expected["okta.policy.mfa_required"] = verdicts


def _lay_out_enrollment_policies(estate: Estate) -> None:
    verdicts = {}
    policies = []
    for priority, spec in enumerate(ENROLLMENT_POLICIES, start=1):
        settings: dict[str, Any]
        if spec.classic_factors:
            settings = {"type": "FACTORS", "factors": {
                key: {"enroll": {"self": enroll}, "consent": {"type": "NONE"}}
                for key, enroll in spec.authenticators}}
        else:
            settings = {"type": "AUTHENTICATORS", "authenticators": [
                {"key": key, "enroll": {"self": enroll}} for key, enroll in spec.authenticators]}
        policy = policy_json("MFA_ENROLL", spec.name, spec.status, spec.system, priority,
                              estate.now, estate.org_url, settings, EVERYONE)
        policies.append(policy)
        estate.rules[policy["id"]] = [rule_json(
            policy["id"], "MFA_ENROLL", "Default Rule", 1, "ACTIVE",
            {"enroll": {"self": spec.rule_enroll}}, estate.now, estate.org_url,
            {"people": {"users": {"exclude": []}}, "network": {"connection": "ANYWHERE"}})]
        verdicts[estate.resource("policy", policy["id"])] = spec.expect
    estate.policies["MFA_ENROLL"] = policies
    estate.expected["okta.policy.mfa_enrollment"] = verdicts
