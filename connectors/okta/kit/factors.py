"""The acme org's enrolled factors: what GET /api/v1/users/{id}/factors answers for each user,
and the verdicts of the factor checks on each ACTIVE user, written by hand from this table."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Status

P, F = Status.PASSING.value, Status.FAILING.value

# login -> ((factor type, status), ...), okta.user.mfa_enrolled, okta.user.phishing_resistant_mfa
FACTORS: dict[str, tuple[tuple[tuple[str, str], ...], str, str]] = {
    "alice.nguyen": ((("webauthn", "ACTIVE"), ("push", "ACTIVE")), P, P),
    "bob.martinez": ((("push", "ACTIVE"),), P, F),
    "carol.smith": ((("token:software:totp", "ACTIVE"), ("email", "ACTIVE")), P, F),
    "dave.okafor": ((("sms", "ACTIVE"),), P, F),
    # a new joiner: Okta Verify enrolled but never activated, and an email factor
    "erin.kowalski": ((("email", "ACTIVE"), ("push", "PENDING_ACTIVATION")), F, F),
    "frank.li": ((), F, F),
    "grace.hopper": ((("signed_nonce", "ACTIVE"), ("push", "ACTIVE")), P, P),
    "heidi.schmidt": ((("u2f", "ACTIVE"),), P, P),
    "ivan.petrov": ((("question", "ACTIVE"), ("email", "ACTIVE")), F, F),  # know, and inbox
    "judy.tanaka": ((("webauthn", "INACTIVE"), ("call", "ACTIVE")), P, F),  # key deactivated
    "ken.adams": ((("push", "ACTIVE"),), "", ""),  # LOCKED_OUT: not read, not judged
    "uma.patel": ((("webauthn", "ACTIVE"),), P, P),
    "victor.hugo": ((("token:hardware", "ACTIVE"),), P, F),
    "svc-backup": ((), F, F),  # a service account signing in with a password alone
    "xavier.jones": ((("web", "ACTIVE"),), P, F),  # Duo
}

_SHAPES: dict[str, tuple[str, str, str]] = {  # type -> id prefix, provider, vendorName
    "push": ("opf", "OKTA", "OKTA"), "signed_nonce": ("pfd", "OKTA", "OKTA"),
    "token:software:totp": ("ost", "OKTA", "OKTA"), "token:hardware": ("ykf", "YUBICO", "YUBICO"),
    "webauthn": ("fwf", "FIDO", "FIDO"), "u2f": ("fuf", "FIDO", "FIDO"),
    "sms": ("mbl", "OKTA", "OKTA"), "call": ("clf", "OKTA", "OKTA"),
    "email": ("emf", "OKTA", "OKTA"), "question": ("ufs", "OKTA", "OKTA"),
    "web": ("dsf", "DUO", "DUO"),
}


def _profile(factor_type: str, login: str) -> dict[str, Any]:
    device = {"credentialId": login, "deviceType": "SmartPhone_IPhone",
              "name": "iPhone 15", "platform": "IOS", "version": "17.4"}
    return {
        "push": device, "signed_nonce": device,
        "token:software:totp": {"credentialId": login},
        "token:hardware": {"credentialId": "cccccceukngdfgkukfctkcvfidnetljjiknckkcjulji"},
        "webauthn": {"credentialId": "l3Br0n-7H3g047NqESqJynFtIgf3Ix9OfaRoNwLoloso99Xl2zS_O7E"
                                     "XUkSqcc8I", "authenticatorName": "YubiKey 5 NFC"},
        "u2f": {"credentialId": "GAiiLsVab2m3-zL1Fi3bVtNrM9G6_MntUITHKjxkV24ktGKjLSCRnz72wCEdHC"},
        "sms": {"phoneNumber": "+15554151337"}, "call": {"phoneNumber": "+15554151338"},
        "email": {"email": login},
        "question": {"question": "disliked_food",
                     "questionText": "What is the food you least liked as a child?"},
        "web": {"credentialId": login},
    }[factor_type]


def factors_json(user_id: str, login: str, org_url: str,
                 now: datetime) -> list[dict[str, Any]]:
    """The user's factors as Okta lists them (an empty list for a user who enrolled none)."""
    spec = FACTORS.get(login.partition("@")[0])
    found = []
    for factor_type, status in spec[0] if spec else ():
        prefix, provider, vendor = _SHAPES[factor_type]
        fid = prefix + hashlib.sha256(f"{user_id}:{factor_type}".encode()).hexdigest()[:17]
        stamp = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        found.append({
            "id": fid, "factorType": factor_type, "provider": provider, "vendorName": vendor,
            "status": status, "created": stamp, "lastUpdated": stamp,
            "profile": _profile(factor_type, login),
            "_links": {"self": {"href": f"{org_url}/api/v1/users/{user_id}/factors/{fid}"},
                       "user": {"href": f"{org_url}/api/v1/users/{user_id}"}},
        })
    return found
