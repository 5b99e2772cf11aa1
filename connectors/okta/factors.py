"""Okta users' enrolled factors: a second factor per active person, phishing-resistant ones
counted apart, and an org-level verdict over every person and every global session rule.

The collector lists the ACTIVE users, then reads each one's factors (GET
/api/v1/users/{id}/factors) with at most FACTOR_READS calls in flight on the session's event loop;
every call goes through the session's one retry policy, and the session paces itself on Okta's
X-Rate-Limit-Remaining / X-Rate-Limit-Reset headers, so a large org is read within its limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from connectors.base import Result, Severity, Status, check, collector
from connectors.okta.policies import PolicySet, collect_sign_on_policies, sign_on_rule
from connectors.okta.session import (
    PAGE_SIZE,
    OktaApi,
    OktaSession,
    OktaSettings,
    Scope,
    resource_id,
)

FACTOR_READS = 8
"""Factor reads in flight at once: Okta's concurrent-request limit is per org and shared."""

SECOND_FACTORS = frozenset({
    "push",  # Okta Verify push
    "signed_nonce",  # Okta FastPass
    "token:software:totp",  # Okta Verify / Google Authenticator codes
    "token:hardware", "token:hotp", "token",  # YubiKey OTP, RSA SecurID, Symantec VIP
    "webauthn", "u2f",  # FIDO2 / security keys and platform authenticators
    "sms", "call",  # phone: a second factor, though not phishing-resistant
    "web",  # Duo
})
"""Factor types that count as a second factor. Not counted: `email` (an inbox, usually reached
with the same password: NIST SP 800-63B does not accept email as an out-of-band authenticator)
and `question` (a second thing the person knows)."""

PHISHING_RESISTANT = frozenset({"webauthn", "u2f", "signed_nonce"})
"""Bound to the origin or the device: FIDO2 / WebAuthn, U2F and Okta FastPass."""


@dataclass(frozen=True)
class Factor:
    id: str
    type: str
    provider: str
    status: str
    vendor: str | None

    def evidence(self) -> dict[str, Any]:
        return {"id": self.id, "factorType": self.type, "provider": self.provider,
                "status": self.status, "vendorName": self.vendor}


@dataclass(frozen=True)
class Person:
    """An ACTIVE user and the factors they have enrolled."""

    id: str
    login: str
    factors: list[Factor]

    def active_of(self, types: frozenset[str]) -> list[Factor]:
        return [f for f in self.factors if f.status == "ACTIVE" and f.type in types]

    def evidence(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login,
                "factors": [f.evidence() for f in self.factors]}


@dataclass(frozen=True)
class FactorRoster:
    """Every ACTIVE user with their factors, and whether phishing resistance is required."""

    org_host: str
    people: list[Person]
    require_phishing_resistant: bool

    def resource(self, person: Person) -> str:
        return resource_id(self.org_host, "user", person.id)


def _factor(raw: dict[str, Any]) -> Factor:
    return Factor(id=str(raw.get("id")), type=str(raw.get("factorType")),
                  provider=str(raw.get("provider") or ""), status=str(raw.get("status") or ""),
                  vendor=raw.get("vendorName"))


def _person(raw: dict[str, Any], factors: list[dict[str, Any]]) -> Person:
    login = str((raw.get("profile") or {}).get("login") or raw["id"])
    return Person(id=str(raw["id"]), login=login,
                  factors=sorted(map(_factor, factors), key=lambda f: (f.type, f.id)))


@collector()
def collect_user_factors(session: OktaSession, *, config: OktaSettings) -> FactorRoster:
    """Every ACTIVE user and their enrolled factors (FACTOR_READS reads in flight at most)."""

    async def read(api: OktaApi) -> list[Person]:
        users = await api.pages(
            "list active users", Scope.USERS_READ,
            lambda after: api.client.list_users(filter='status eq "ACTIVE"', limit=PAGE_SIZE,
                                                after=after))
        gate = asyncio.Semaphore(FACTOR_READS)

        async def person(raw: dict[str, Any]) -> Person:
            async with gate:
                factors = await api.call("list a user's factors", Scope.USERS_READ,
                                         partial(api.client.list_factors, str(raw["id"])))
            return _person(raw, list(factors or []))

        return list(await asyncio.gather(*(person(raw) for raw in users)))

    people = sorted(session.read(read), key=lambda p: (p.login, p.id))
    return FactorRoster(org_host=session.org_host, people=people,
                        require_phishing_resistant=config.require_phishing_resistant_mfa)


def _counted(factors: list[Factor]) -> list[str]:
    return sorted({f.type for f in factors})


@check(id="okta.user.mfa_enrolled", severity=Severity.HIGH, resource_type="okta.user",
       needs=collect_user_factors,
       remediation="Have the person enroll Okta Verify, FastPass or a security key (an "
                   "authenticator enrollment policy that requires one, Security > "
                   "Authenticators > Enrollment), or reset their factors so they enroll at the "
                   "next sign-in; deactivate accounts nobody uses.")
def mfa_enrolled(roster: FactorRoster) -> Iterator[Result]:
    """Every active user has an active second factor (not email or a security question)."""
    for person in roster.people:
        strong = person.active_of(SECOND_FACTORS)
        data = {**person.evidence(), "secondFactors": _counted(strong)}
        title = (f"User {person.login} has an active second factor "
                 f"({', '.join(_counted(strong))})" if strong else
                 f"User {person.login} has no active second factor")
        yield Result.of(roster.resource(person), passing=bool(strong), title=title, data=data)


@check(id="okta.user.phishing_resistant_mfa", severity=Severity.MEDIUM,
       resource_type="okta.user", needs=collect_user_factors,
       remediation="Roll out a phishing-resistant authenticator (FIDO2 / WebAuthn security keys "
                   "or platform authenticators, or Okta FastPass) and require it in the "
                   "enrollment policy; set require_phishing_resistant_mfa off where it is not "
                   "required yet.")
def phishing_resistant_mfa(roster: FactorRoster) -> Iterator[Result]:
    """Every active user has an active phishing-resistant factor (WebAuthn, U2F or FastPass)."""
    for person in roster.people:
        resistant = person.active_of(PHISHING_RESISTANT)
        data = {**person.evidence(), "phishingResistant": _counted(resistant),
                "required": roster.require_phishing_resistant}
        rid = roster.resource(person)
        if resistant:
            yield Result.of(rid, passing=True, data=data,
                            title=f"User {person.login} has a phishing-resistant factor "
                                  f"({', '.join(_counted(resistant))})")
        elif roster.require_phishing_resistant:
            yield Result.of(rid, passing=False, data=data,
                            title=f"User {person.login} has no phishing-resistant factor")
        else:
            yield Result.not_applicable(
                rid, f"User {person.login} has no phishing-resistant factor (not required: "
                     "require_phishing_resistant_mfa is off)", data)


@check(id="okta.org.mfa_for_everyone", severity=Severity.HIGH, resource_type="okta.org",
       needs=(collect_user_factors, collect_sign_on_policies),
       remediation="Fix each person and rule this result lists: enroll a second factor for "
                   "every active user (okta.user.mfa_enrolled) and require MFA in every allowing "
                   "global session policy rule (okta.policy.signon_requires_mfa).")
def mfa_for_everyone(roster: FactorRoster, policies: PolicySet) -> Iterator[Result]:
    """Every active person has a second factor and every global session rule requires one."""
    people = [p.login for p in roster.people if not p.active_of(SECOND_FACTORS)]
    rules = [f"{r.data['policy']['name']} / {r.data['name']}"
             for policy in policies.policies for r in (sign_on_rule(policies, policy, rule)
                                                       for rule in policy.rules)
             if r.status is Status.FAILING]
    judged = len(roster.people)
    gaps = ([f"{len(people)} of {judged} active users without a second factor"] if people
            else []) + ([f"{len(rules)} global session rule{'s' if len(rules) != 1 else ''} not "
                      "requiring MFA"] if rules else [])
    title = ("MFA is not enforced for everyone: " + "; ".join(gaps) if gaps else
             f"All {judged} active users have a second factor and every global session rule "
             "requires MFA")
    yield Result.of(resource_id(roster.org_host, "org", ""), passing=not gaps, title=title,
                    data={"activeUsers": judged, "usersWithoutSecondFactor": people,
                          "rulesWithoutMfa": rules, "secondFactorTypes": sorted(SECOND_FACTORS)})
