"""OAuth 2.0 for connectors that declare an OAuthSpec: authorization URL, callback, refresh.

The `state` sent to the provider is an HS256 JWT (EVIDENCE_OAUTH_STATE_SECRET, by default
derived from the JWT secret) naming the account, the integration and a random nonce, valid for
EVIDENCE_OAUTH_STATE_TTL_SECONDS (10 minutes). The nonce's SHA-256 is stored with the PKCE
verifier (sealed by the vault); the callback consumes that row with one conditional UPDATE, so
a state works once. A forged or altered state fails its signature, an old one its expiry, a
replayed one the consumed row, and one presented by a caller of another account the binding.
Tokens are exchanged with authlib, stored sealed as the connection's credentials, and
refreshed by `engine.credentials.open_connector` before they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
from authlib.integrations.requests_client import OAuth2Session
from pydantic import SecretStr
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from connectors.base import (
    AuthFailed,
    Connector,
    ConnectorError,
    InvalidFields,
    OAuthClientCredentials,
    ProviderUnavailable,
    RevokeGrant,
)
from engine.accounts import ensure_account
from engine.connections import store_credentials
from engine.endpoints import check_endpoint_policy, endpoint_policy
from engine.errors import BadRequest, EngineError, Forbidden, InvalidInput
from engine.models import Connection, Frequency
from engine.models.integrations import OAuthState
from engine.registry import get_connector
from engine.settings import Settings
from engine.tenancy import account_of
from engine.tokens import jwt_secret
from engine.vault import vault

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/v1/integrations/callback"
STATE_AUDIENCE = "evidence-engine:oauth-state"
HTTP_TIMEOUT = 10
TOKEN_FIELDS = ("access_token", "refresh_token", "token_type", "expires_at", "scope")


class OAuthNotConfigured(EngineError):
    """The server has no OAuth app for this provider: an operator must configure one."""

    status = 503
    code = "oauth_not_configured"


@dataclass(frozen=True)
class OAuthApp:
    """This deployment's OAuth client at one provider, with the connector's endpoints."""

    integration_id: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    revoke_url: str | None
    scopes: tuple[str, ...]
    pkce: bool
    revoke: RevokeGrant | None = None  # the connector's hook for a provider without RFC 7009

    def session(self, **kwargs: Any) -> OAuth2Session:
        return OAuth2Session(self.client_id, self.client_secret,
                             token_endpoint_auth_method="client_secret_post",  # noqa: S106
                             **kwargs)


def oauth_app(integration_id: str, settings: Settings) -> OAuthApp:
    """The OAuth client for an integration, or a clear error saying why there is none."""
    cls = get_connector(integration_id)
    if cls.oauth is None:
        raise BadRequest(f"{integration_id} does not connect through OAuth; POST "
                         f"/api/v1/integrations/{integration_id}/connect with its credentials",
                         code="oauth_not_supported")
    client = settings.oauth_clients.get(integration_id)
    if client is None:
        raise OAuthNotConfigured(f"this server has no OAuth app for {integration_id}; an "
                                 f"operator sets it in EVIDENCE_OAUTH_CLIENTS")
    spec = cls.oauth
    return OAuthApp(integration_id, client.client_id, client.client_secret.get_secret_value(),
                    client.authorize_url or spec.authorize_url, client.token_url or spec.token_url,
                    client.revoke_url or spec.revoke_url, spec.scopes, spec.pkce, spec.revoke)


def redirect_uri(settings: Settings) -> str:
    return settings.oauth_redirect_url or settings.public_base_url.rstrip("/") + CALLBACK_PATH


def _state_key(settings: Settings) -> bytes:
    if settings.oauth_state_secret is not None:
        return settings.oauth_state_secret.get_secret_value().encode()
    return hmac.new(jwt_secret(settings).encode(), b"evidence-engine oauth state",
                    hashlib.sha256).digest()


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


@dataclass(frozen=True)
class AuthorizationUrl:
    url: str
    expires_at: datetime


def account_params(cls: type[Connector], raw: Mapping[str, str],
                   settings: Settings) -> dict[str, str]:
    """The parameters the account gives with the authorization request (OAuthSpec.params),
    checked as the credentials fields they become, so a typo fails before the provider."""
    declared = cls.oauth.params if cls.oauth is not None else ()
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        takes = ", ".join(declared) if declared else "none"
        raise InvalidInput(f"{cls.id} takes no OAuth parameter {', '.join(unknown)} "
                           f"(it takes: {takes})", code="invalid_request",
                           fields=[{"field": k, "message": "unknown parameter"} for k in unknown])
    given = {k: v for k, v in raw.items() if v != ""}
    try:
        cls.parse_credentials(given)
    except InvalidFields as exc:
        fields = [f for f in exc.details.get("fields", [])
                  if str(f["field"]).split(".")[0] in declared]
        if fields:
            raise InvalidInput(f"OAuth parameters for {cls.id} are invalid: "
                               + ", ".join(str(f["field"]) for f in fields),
                               code="invalid_credentials", fields=fields) from None
    check_endpoint_policy(cls.credentials_model, given, settings)
    return given


def authorization_url(session: Session, integration_id: str, frequency: Frequency,
                      settings: Settings, now: datetime | None = None,
                      params: Mapping[str, str] | None = None) -> AuthorizationUrl:
    """Issue a signed, expiring, single-use state bound to the account, and the provider URL.

    `params` (the connector's OAuthSpec.params, e.g. GitHub's organization) are validated and
    sealed with the state's PKCE verifier; the callback stores them with the tokens.
    """
    account_id = account_of(session)
    app = oauth_app(integration_id, settings)
    bound = account_params(get_connector(integration_id), params or {}, settings)
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=settings.oauth_state_ttl_seconds)
    ensure_account(session, account_id)
    session.execute(delete(OAuthState).where(OAuthState.expires_at < now - timedelta(days=1)))
    nonce, verifier, callback = secrets.token_urlsafe(32), generate_token(64), redirect_uri(
        settings)
    session.add(OAuthState(
        nonce_hash=_nonce_hash(nonce), account_id=account_id, integration_id=integration_id,
        code_verifier_encrypted=vault(settings).seal({"code_verifier": verifier,
                                                      "params": bound}),
        redirect_uri=callback, sync_frequency=frequency, expires_at=expires))
    state = jwt.encode({"nonce": nonce, "acct": account_id, "int": integration_id,
                        "iat": now, "exp": expires, "aud": STATE_AUDIENCE},
                       _state_key(settings), algorithm="HS256")
    client = OAuth2Session(app.client_id, scope=" ".join(app.scopes) or None,
                           redirect_uri=callback,
                           code_challenge_method="S256" if app.pkce else None)
    url, _ = client.create_authorization_url(app.authorize_url, state=state,
                                             code_verifier=verifier if app.pkce else None)
    return AuthorizationUrl(url, expires)


@dataclass(frozen=True)
class StateClaims:
    account_id: str
    integration_id: str
    nonce: str


def _restart_hint(integration_id: str | None) -> str:
    target = integration_id or "{id}"
    return f"start again with GET /api/v1/integrations/{target}/oauth-url"


def read_state(state: str, settings: Settings) -> StateClaims:
    """Check the state's signature and expiry (no database yet)."""
    try:
        claims = jwt.decode(state, _state_key(settings), algorithms=["HS256"],
                            audience=STATE_AUDIENCE,
                            options={"require": ["exp", "iat", "aud", "nonce", "acct", "int"]})
    except jwt.ExpiredSignatureError:
        raise BadRequest("this authorization link has expired (links last "
                         f"{settings.oauth_state_ttl_seconds // 60} minutes); "
                         + _restart_hint(None), code="oauth_state_expired") from None
    except jwt.PyJWTError:
        raise BadRequest("the OAuth state was not issued by this server or was altered; "
                         + _restart_hint(None), code="oauth_state_invalid") from None
    values = (claims["acct"], claims["int"], claims["nonce"])
    if not all(isinstance(v, str) for v in values):
        raise BadRequest("the OAuth state is malformed; " + _restart_hint(None),
                         code="oauth_state_invalid")
    return StateClaims(*values)


def check_caller(claims: StateClaims, caller_account: str | None) -> None:
    """A callback made with a bearer token must come from the account that started it."""
    if caller_account is not None and caller_account != claims.account_id:
        raise Forbidden("this authorization was started by another account; "
                        + _restart_hint(claims.integration_id),
                        code="oauth_state_account_mismatch")


@dataclass(frozen=True)
class Grant:
    """A consumed state: who authorized what, and the PKCE verifier to prove it."""

    account_id: str
    integration_id: str
    redirect_uri: str
    code_verifier: str
    frequency: Frequency
    params: dict[str, str] = field(default_factory=dict)
    """What the account gave with the authorization request (OAuthSpec.params)."""


def consume_state(session: Session, claims: StateClaims, settings: Settings,
                  now: datetime | None = None) -> Grant:
    """Mark the state used (one conditional UPDATE: concurrent callbacks get one winner)."""
    if account_of(session) != claims.account_id:
        raise RuntimeError("consume_state needs a session scoped to the state's account")
    now = now or datetime.now(UTC)
    digest = _nonce_hash(claims.nonce)
    row = session.execute(
        update(OAuthState).where(OAuthState.nonce_hash == digest,
                                 OAuthState.consumed_at.is_(None))
        .values(consumed_at=now).returning(OAuthState)).scalars().first()
    hint = _restart_hint(claims.integration_id)
    if row is None:
        used = session.scalar(select(OAuthState.nonce_hash).where(
            OAuthState.nonce_hash == digest))
        if used is not None:
            raise BadRequest("this authorization was already used; " + hint,
                             code="oauth_state_used")
        raise BadRequest("the OAuth state is unknown to this server; " + hint,
                         code="oauth_state_invalid")
    if row.integration_id != claims.integration_id:
        raise BadRequest("the OAuth state is malformed; " + hint, code="oauth_state_invalid")
    if row.expires_at <= now:
        raise BadRequest("this authorization link has expired; " + hint,
                         code="oauth_state_expired")
    sealed = vault(settings).open(row.code_verifier_encrypted)
    return Grant(row.account_id, row.integration_id, row.redirect_uri, sealed["code_verifier"],
                 row.sync_frequency, dict(sealed.get("params") or {}))


def _credentials(token: dict[str, Any]) -> dict[str, Any]:
    fields = {k: token.get(k) for k in TOKEN_FIELDS if token.get(k) is not None}
    if "expires_at" in fields:
        fields["expires_at"] = int(float(str(fields["expires_at"])))
    return fields


def exchange_code(grant: Grant, code: str, settings: Settings) -> dict[str, Any]:
    """Trade the authorization code (and PKCE verifier) for tokens at the provider."""
    app = oauth_app(grant.integration_id, settings)
    client = app.session(redirect_uri=grant.redirect_uri)
    extra = {"code_verifier": grant.code_verifier} if app.pkce else {}
    try:
        token = client.fetch_token(app.token_url, grant_type="authorization_code", code=code,
                                   timeout=HTTP_TIMEOUT, **extra)
    except AuthlibOAuthError as exc:
        raise BadRequest(f"{grant.integration_id} refused the authorization code "
                         f"({exc.error}); " + _restart_hint(grant.integration_id),
                         code="oauth_code_rejected") from None
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{grant.integration_id}'s token endpoint failed "
                                  f"({exc.__class__.__name__}); "
                                  + _restart_hint(grant.integration_id)) from None
    if not token.get("access_token"):
        raise BadRequest(f"{grant.integration_id} answered no access token",
                         code="oauth_code_rejected")
    return _credentials(dict(token))


def store_grant(session: Session, grant: Grant, token: dict[str, Any],
                settings: Settings) -> Connection:
    """Store the tokens (with the account's parameters) sealed as the connection's credentials
    and enqueue verification."""
    if account_of(session) != grant.account_id:
        raise RuntimeError("store_grant needs a session scoped to the grant's account")
    cls = get_connector(grant.integration_id)
    parsed = cls.parse_credentials({**grant.params, **token})
    check_endpoint_policy(cls.credentials_model, dict(parsed), settings)
    return store_credentials(session, cls, parsed, grant.frequency, settings)


def is_expiring(credentials: dict[str, Any], settings: Settings,
                now: datetime | None = None) -> bool:
    """Whether refreshable credentials expire within EVIDENCE_OAUTH_REFRESH_LEEWAY_SECONDS."""
    expires_at, refresh = credentials.get("expires_at"), credentials.get("refresh_token")
    if not expires_at or not refresh:
        return False
    now_ts = (now or datetime.now(UTC)).timestamp()
    return float(expires_at) - now_ts <= settings.oauth_refresh_leeway_seconds


def refresh_token(integration_id: str, credentials: dict[str, Any],
                  settings: Settings) -> dict[str, Any]:
    """New tokens for old (the refresh token is kept when the provider does not rotate it), and
    the credentials' other fields (GitHub's organization) as they were."""
    try:
        app = oauth_app(integration_id, settings)
    except EngineError as exc:
        raise AuthFailed(f"cannot refresh the {integration_id} token: {exc.message}") from None
    client = app.session(token=dict(credentials))
    try:
        token = client.refresh_token(app.token_url, refresh_token=credentials["refresh_token"],
                                     timeout=HTTP_TIMEOUT)
    except AuthlibOAuthError as exc:
        raise AuthFailed(f"{integration_id} refused to refresh the access token "
                         f"({exc.error}); connect the integration again") from None
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{integration_id}'s token endpoint failed "
                                  f"({exc.__class__.__name__})") from None
    kept = {k: v for k, v in credentials.items() if k not in TOKEN_FIELDS}
    fresh = {**kept, **_credentials(dict(token))}
    fresh.setdefault("refresh_token", credentials["refresh_token"])
    return fresh


def revoke(integration_id: str, credentials: dict[str, Any], settings: Settings) -> bool:
    """Best effort: ask the provider to revoke the grant, through the connector's
    `OAuthSpec.revoke` hook, else RFC 7009 at its revoke_url (the refresh token, else the access
    token). False, with a log line naming no secret, when it was not confirmed."""
    try:
        app = oauth_app(integration_id, settings)
    except EngineError:
        return False
    if app.revoke is not None:
        return _revoke_by_hook(app, app.revoke, credentials, settings)
    if app.revoke_url is None:
        return False
    hint = "refresh_token" if credentials.get("refresh_token") else "access_token"
    token = credentials.get(hint)
    if not token:
        return False
    try:
        resp = app.session().revoke_token(app.revoke_url, token=token, token_type_hint=hint,
                                          timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        log.warning("revoking the %s grant failed: %s", integration_id, exc.__class__.__name__)
        return False
    if resp.status_code >= 400:
        log.warning("revoking the %s grant answered HTTP %s", integration_id, resp.status_code)
        return False
    return True


def _revoke_by_hook(app: OAuthApp, hook: RevokeGrant, credentials: dict[str, Any],
                    settings: Settings) -> bool:
    client = OAuthClientCredentials(app.client_id, SecretStr(app.client_secret),
                                    endpoints=endpoint_policy(settings))
    try:
        return hook(client, get_connector(app.integration_id).parse_credentials(credentials))
    except (ConnectorError, EngineError) as exc:  # the hook's, credentials that no longer
        # parse, or a connector no longer installed
        log.warning("revoking the %s grant failed: %s", app.integration_id, exc.message)
    except Exception as exc:  # noqa: BLE001 - a connector bug must not stop a disconnect
        log.warning("revoking the %s grant crashed: %s", app.integration_id,
                    exc.__class__.__name__)
    return False
