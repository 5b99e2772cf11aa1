"""Console sign-in through the deployment's OpenID Connect provider (EVIDENCE_OIDC_*).

The authorization code flow with PKCE (S256), a state and a nonce, through authlib's OAuth2
client: `begin_sign_in` makes the provider's URL and what the browser must bring back (kept in
the console's signed, HttpOnly session cookie and popped on the callback, so a callback works
once and only in the browser that started it); `finish_sign_in` trades the code for tokens over
the back channel and validates the ID token (signature by the provider's JWKS, iss, aud, azp,
exp, iat, nonce). The account is the ID token's claim that names it for the API
(EVIDENCE_JWT_ACCOUNT_CLAIM); the session it opens is the login link's
(engine.console_sessions.start_session). No token is kept or put in a URL; only the code and
the state travel in the callback's query, as the protocol has them.

The issuer is operator configuration, not tenant input, so it is not held to the custom
endpoint gate's public-addresses-only rule (an identity provider often lives on the company's
network); what the gate's switch does decide is the scheme: the issuer and every endpoint its
discovery document names must be https unless EVIDENCE_ALLOW_CUSTOM_ENDPOINTS is on (a local
provider in development and tests).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError as AuthlibOAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import redirect, request
from flask import session as cookie_session
from flask.typing import ResponseReturnValue

from console.views import _now, _page, _settings, bp, signed_in
from engine.console_sessions import start_session
from engine.db import unit_of_work
from engine.errors import EngineError, NotFound, Unauthorized
from engine.settings import Settings
from engine.tokens import ACCOUNT_ID, LEEWAY_SECONDS

DISCOVERY_PATH = "/.well-known/openid-configuration"
CALLBACK_PATH = "/console/login/oidc/callback"
HTTP_TIMEOUT = 10
CACHE_SECONDS = 300
PENDING = "oidc_sign_in"
"""The signed session cookie's key for the sign-in under way (state, nonce, PKCE verifier)."""
MAX_PARAM = 2048
ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA"}
"""ID token algorithms accepted: signed by the provider's private key, never HS* or none."""


class IdentityProviderUnavailable(EngineError):
    """The identity provider cannot be reached or describes itself wrongly: not the person's
    fault; the page says to try again or tell the operator."""

    status = 503
    code = "idp_unavailable"


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: frozenset[str]
    token_auth_method: str


@dataclass(frozen=True)
class Identity:
    account_id: str
    subject: str


@dataclass
class _Cached:
    value: Any
    fetched: float


_cache: dict[tuple[str, str], _Cached] = {}
_cache_lock = threading.Lock()


def _checked_url(url: object, settings: Settings, what: str) -> str:
    """An absolute https URL (http too when EVIDENCE_ALLOW_CUSTOM_ENDPOINTS is on)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    schemes = ("https", "http") if settings.allow_custom_endpoints else ("https",)
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        raise IdentityProviderUnavailable(
            f"the identity provider's {what} ({str(url)[:200]!r}) is not an https URL; an "
            "operator must fix EVIDENCE_OIDC_ISSUER or the provider")
    return str(url)


def _fetch_json(url: str, what: str) -> dict[str, Any]:
    try:
        answer = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False,
                              headers={"Accept": "application/json"})
        answer.raise_for_status()
        body = answer.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdentityProviderUnavailable(
            f"the identity provider's {what} could not be read ({exc.__class__.__name__}); "
            "try again in a moment") from None
    if not isinstance(body, dict):
        raise IdentityProviderUnavailable(f"the identity provider's {what} is not a JSON object")
    return body


def _cached(key: tuple[str, str], fetch: Any, *, fresh: bool = False) -> Any:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and not fresh and now - hit.fetched < CACHE_SECONDS:
            return hit.value
    value = fetch()
    with _cache_lock:
        _cache[key] = _Cached(value, now)
    return value


def provider_metadata(settings: Settings) -> ProviderMetadata:
    """The provider's discovery document (cached for a few minutes), checked: it names the
    configured issuer exactly and https endpoints."""
    issuer = _checked_url(settings.oidc_issuer, settings, "issuer").rstrip("/")

    def fetch() -> ProviderMetadata:
        doc = _fetch_json(issuer + DISCOVERY_PATH, "discovery document")
        if str(doc.get("issuer", "")).rstrip("/") != issuer:
            raise IdentityProviderUnavailable(
                f"the identity provider's discovery document names the issuer "
                f"{str(doc.get('issuer'))[:200]!r}, not {issuer!r}")
        algorithms = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return ProviderMetadata(
            str(doc["issuer"]),
            _checked_url(doc.get("authorization_endpoint"), settings, "authorization endpoint"),
            _checked_url(doc.get("token_endpoint"), settings, "token endpoint"),
            _checked_url(doc.get("jwks_uri"), settings, "JWKS URI"),
            frozenset(a for a in algorithms if a in ASYMMETRIC),
            "client_secret_basic" if "client_secret_basic" in methods  # noqa: S106
            else "client_secret_post")

    value: ProviderMetadata = _cached(("metadata", issuer), fetch)
    return value


def _signing_keys(metadata: ProviderMetadata, *, fresh: bool = False) -> jwt.PyJWKSet:
    def fetch() -> jwt.PyJWKSet:
        try:
            return jwt.PyJWKSet.from_dict(_fetch_json(metadata.jwks_uri, "signing keys"))
        except jwt.PyJWTError:
            raise IdentityProviderUnavailable("the identity provider publishes no usable "
                                              "signing key") from None

    keys: jwt.PyJWKSet = _cached(("jwks", metadata.jwks_uri), fetch, fresh=fresh)
    return keys


def _client(settings: Settings, metadata: ProviderMetadata) -> OAuth2Session:
    secret = settings.oidc_client_secret
    return OAuth2Session(settings.oidc_client_id,
                         secret.get_secret_value() if secret is not None else None,
                         scope=settings.oidc_scopes, redirect_uri=redirect_uri(settings),
                         code_challenge_method="S256",
                         token_endpoint_auth_method=metadata.token_auth_method)


def redirect_uri(settings: Settings) -> str:
    """The callback registered with the provider: EVIDENCE_PUBLIC_BASE_URL + CALLBACK_PATH."""
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def begin_sign_in(settings: Settings, now: float) -> tuple[str, dict[str, Any]]:
    """The provider's authorization URL, and what the callback must match (for the session
    cookie): a fresh state, nonce and PKCE verifier, and when the sign-in began."""
    metadata = provider_metadata(settings)
    state, nonce, verifier = (secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                              generate_token(64))
    url, _ = _client(settings, metadata).create_authorization_url(
        metadata.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier)
    return url, {"state": state, "nonce": nonce, "verifier": verifier, "at": now}


def finish_sign_in(settings: Settings, pending: Mapping[str, Any] | None,
                   args: Mapping[str, str], now: float) -> Identity:
    """The person the provider vouches for, from the callback's query; any mismatch, a replay,
    a refusal by the provider or a bad ID token is a 401 whose message says which."""
    if not isinstance(pending, Mapping) or not isinstance(pending.get("state"), str):
        raise Unauthorized("This sign-in has already been used or was not started in this "
                           "browser. Start again from the sign-in page.", code="oidc_no_sign_in")
    state = args.get("state", "")
    matches = hmac.compare_digest(state.encode()[:MAX_PARAM], pending["state"].encode())
    if args.get("error"):
        # Some providers leave the state out of an error; its description is shown only with
        # the state this browser expects (a forged link cannot put words on the page).
        error = re.sub(r"[^a-z_]", "", args["error"][:60])
        words = args.get("error_description", "")[:300] if matches else ""
        raise Unauthorized(f"Your identity provider did not sign you in ({error}). {words}"
                           .strip(), code="oidc_refused")
    if not matches:
        raise Unauthorized("This sign-in does not match the one this browser started. Start "
                           "again from the sign-in page.", code="oidc_state_mismatch")
    if now - float(pending.get("at", 0)) > settings.oauth_state_ttl_seconds:
        raise Unauthorized("This sign-in took too long. Start again from the sign-in page.",
                           code="oidc_expired")
    code = args.get("code", "")
    if not code or len(code) > MAX_PARAM:
        raise Unauthorized("Your identity provider sent no sign-in code. Start again from the "
                           "sign-in page.", code="oidc_no_code")
    metadata = provider_metadata(settings)
    try:
        token = _client(settings, metadata).fetch_token(
            metadata.token_endpoint, grant_type="authorization_code", code=code,
            code_verifier=pending.get("verifier"), timeout=HTTP_TIMEOUT)
    except AuthlibOAuthError as exc:
        raise Unauthorized(f"Your identity provider refused the sign-in code ({exc.error}). "
                           "Start again from the sign-in page.",
                           code="oidc_code_rejected") from None
    except requests.RequestException as exc:
        raise IdentityProviderUnavailable(f"the identity provider's token endpoint failed "
                                          f"({exc.__class__.__name__}); try again") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise Unauthorized("Your identity provider answered without an ID token (is `openid` "
                           "among EVIDENCE_OIDC_SCOPES?).", code="oidc_invalid_token")
    claims = verify_id_token(settings, metadata, id_token, str(pending.get("nonce", "")))
    return identity_of(settings, claims)


def verify_id_token(settings: Settings, metadata: ProviderMetadata, id_token: str,
                    nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature (the provider's published key, an asymmetric
    algorithm it announced), issuer, audience, authorized party, expiry and nonce hold."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise _bad_token("it is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm not in metadata.algorithms:
        raise _bad_token(f"it is signed with {str(algorithm)[:20]}, which is not accepted")
    key = _key_for(metadata, header.get("kid"))
    client_id = str(settings.oidc_client_id)
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token, key, algorithms=[algorithm], audience=client_id,
            issuer=metadata.issuer, leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except jwt.ExpiredSignatureError:
        raise _bad_token("it has expired") from None
    except jwt.InvalidAudienceError:
        raise _bad_token("it is addressed to another application") from None
    except jwt.InvalidIssuerError:
        raise _bad_token("it was issued by another provider") from None
    except jwt.PyJWTError as exc:
        raise _bad_token(str(exc)[:200]) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise _bad_token("it was issued to another application (azp)")
    if not nonce or not hmac.compare_digest(str(claims.get("nonce", "")).encode(),
                                            nonce.encode()):
        raise _bad_token("it does not belong to this sign-in (nonce)")
    return claims


def _key_for(metadata: ProviderMetadata, kid: object) -> Any:
    """The published key named by `kid` (the keys read again once when it is unknown: the
    provider may have rotated)."""
    for fresh in (False, True):
        keys = _signing_keys(metadata, fresh=fresh)
        if kid is None and len(keys.keys) == 1:
            return keys.keys[0].key
        found = next((k for k in keys.keys if kid is not None and k.key_id == kid), None)
        if found is not None:
            return found.key
    raise _bad_token("no key the provider publishes signed it")


def _bad_token(why: str) -> Unauthorized:
    return Unauthorized(f"Your identity provider's answer could not be trusted: {why}. Start "
                        "again from the sign-in page.", code="oidc_invalid_token")


def identity_of(settings: Settings, claims: Mapping[str, Any]) -> Identity:
    """The account the ID token names, in the claim the API reads (EVIDENCE_JWT_ACCOUNT_CLAIM)."""
    claim = settings.jwt_account_claim
    account = claims.get(claim)
    if not isinstance(account, str) or not ACCOUNT_ID.match(account):
        raise Unauthorized(
            f"Your identity provider signed you in, but did not say which account you belong "
            f"to: the ID token has no valid `{claim}` claim. Ask your administrator to add it "
            f"to your profile at the identity provider.", code="oidc_no_account")
    return Identity(account, str(claims.get("sub", "")))


@bp.get("/login/oidc")
def sign_in_with_idp() -> ResponseReturnValue:
    """Send the browser to the identity provider, remembering (signed, in its own cookie)
    the state, nonce and verifier the callback must match."""
    settings = _settings()
    if not settings.oidc_enabled:
        raise NotFound("sign-in through an identity provider is not configured")
    url, pending = begin_sign_in(settings, time.time())
    cookie_session[PENDING] = pending
    return redirect(url, code=302)


@bp.get("/login/oidc/callback")
def oidc_callback() -> ResponseReturnValue:
    """The provider sends the browser back here with a code: trade it, check the ID token,
    open a console session; the pending sign-in is spent whatever the outcome."""
    settings = _settings()
    if not settings.oidc_enabled:
        raise NotFound("sign-in through an identity provider is not configured")
    pending = cookie_session.pop(PENDING, None)
    try:
        identity = finish_sign_in(settings, pending, request.args.to_dict(), time.time())
        with unit_of_work(settings) as session:
            started = start_session(session, settings, identity.account_id, _now())
    except Unauthorized as exc:
        return _page("login.html", 401, error=exc.message)
    return signed_in(started)
