"""Okta credentials and settings, and the session every Okta collector receives.

The session is the one place where the okta SDK is driven and where its answers become the
SDK's typed connector errors: each collector call gets a fresh SDK client on a private event
loop (the SDK is asyncio-based; collectors are plain functions running in threads), every API call
goes through `OktaApi.call`, which runs it under the SDK's retry policy (connectors.retry: rate
limits wait for X-Rate-Limit-Reset / Retry-After, server errors back off, capped) and turns 401
into AuthFailed and 403 into PermissionMissing. The okta SDK's own rate-limit retry is switched
off (`rateLimit.maxRetries = 0`) so retries never multiply.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from functools import cache, partial
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.base import (
    AuthFailed,
    ConnectorError,
    Endpoint,
    EndpointPolicy,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
)
from connectors.egress import aiohttp_connector
from connectors.endpoints import LOCKED, unreachable
from connectors.okta.pacing import RateBudget
from connectors.retry import RetryPolicy, call_async, retry_after

if TYPE_CHECKING:
    from okta.client import Client

T = TypeVar("T")

_SDK_LOGGER = "okta-sdk-python"
_TOKEN_ENDPOINT = "/oauth2/v1/token"  # noqa: S105 - a URL path
_LOOPBACK_NAMES = frozenset({"localhost"})
PAGE_SIZE = 200  # Okta's maximum page size for users and policies


class Scope(StrEnum):
    """The OAuth scopes the connector reads with (all read-only)."""

    USERS_READ = "okta.users.read"
    POLICIES_READ = "okta.policies.read"
    ROLES_READ = "okta.roles.read"


DEFAULT_SCOPES = [scope.value for scope in Scope]


class AuthMode(StrEnum):
    API_TOKEN = "api_token"  # noqa: S105 - a mode name
    OAUTH2 = "oauth2"


class OktaCredentials(BaseModel):
    """An Okta org, reached with an API token (SSWS) or an OAuth 2.0 service app.

    Give exactly one of: `api_token`, or `client_id` with `private_key` (the service app's
    private key in PEM; its public key registered on the app) and optionally `key_id`/`scopes`.
    """

    model_config = ConfigDict(extra="forbid")

    # An Endpoint.SERVER: https to a public host (acme.okta.com, acme.oktapreview.com or the
    # org's custom domain) unless the deployment allows custom endpoints.
    org_url: Annotated[str, Endpoint.SERVER] = Field(
        max_length=255,
        description="The org's URL, e.g. https://acme.okta.com (not the -admin URL).")
    api_token: SecretStr | None = Field(
        None, min_length=20, max_length=200,
        description="An API token (Security > API > Tokens) of an admin with a read-only "
                    "administrator role.")
    client_id: str | None = Field(
        None, validate_default=True, max_length=128, pattern=r"^[A-Za-z0-9._-]+$",
        description="Client id of an API Services app granted the read scopes.")
    private_key: SecretStr | None = Field(
        None, validate_default=True, max_length=20_000,
        description="The service app's RSA private key in PEM.")
    key_id: str | None = Field(
        None, max_length=128, pattern=r"^[A-Za-z0-9._-]+$",
        description="The `kid` of the app's public key, when the app has several keys.")
    scopes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES), min_length=1, validate_default=True,
        description="OAuth scopes to request; the service app must be granted them.")

    @property
    def auth_mode(self) -> AuthMode:
        return AuthMode.API_TOKEN if self.api_token is not None else AuthMode.OAUTH2

    @property
    def org_host(self) -> str:
        """The org's host (with the port when not the default): resource ids are built on it."""
        return urlsplit(self.org_url).netloc

    @field_validator("org_url")
    @classmethod
    def _org_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host:
            raise ValueError("must be the org's https:// URL, e.g. https://acme.okta.com")
        if parts.scheme == "http" and not _is_loopback(host):
            raise ValueError("must use https (http is only accepted for a loopback test server)")
        if parts.username or parts.password or parts.query or parts.fragment \
                or parts.path not in ("", "/"):
            raise ValueError("must be the bare org URL, without a path, query or user info")
        if "-admin." in host:
            raise ValueError("use the org URL, not the admin console URL (drop '-admin')")
        return f"{parts.scheme}://{parts.netloc.lower()}"

    @field_validator("api_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(c.isspace() for c in value.get_secret_value()):
            raise ValueError("must be the token itself, without spaces or the 'SSWS' prefix")
        return value

    @field_validator("client_id")
    @classmethod
    def _one_auth_mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        has_token = info.data.get("api_token") is not None
        if value is not None and has_token:
            raise ValueError("give either api_token or an OAuth service app "
                             "(client_id and private_key), not both")
        if value is None and not has_token and "api_token" not in _failed(info):
            raise ValueError("give api_token, or client_id and private_key of an OAuth "
                             "service app")
        return value

    @field_validator("private_key")
    @classmethod
    def _pem_private_key(cls, value: SecretStr | None,
                         info: ValidationInfo) -> SecretStr | None:
        client_id = info.data.get("client_id")
        if value is None:
            if client_id is not None:
                raise ValueError("required with client_id: the service app's private key (PEM)")
            return None
        if client_id is None and "client_id" not in _failed(info):
            raise ValueError("only used with client_id (an OAuth service app)")
        pem = value.get_secret_value().strip()
        if not (pem.startswith("-----BEGIN") and "PRIVATE KEY-----" in pem):
            raise ValueError("must be a PEM private key (-----BEGIN PRIVATE KEY----- …)")
        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("is not a readable, unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("must be an RSA key (Okta service apps sign with RS256)")
        return SecretStr(pem)

    @field_validator("scopes")
    @classmethod
    def _okta_scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not scope.startswith("okta.") or not scope.replace(".", "").isalnum():
                raise ValueError("each scope must be an Okta API scope like okta.users.read")
        return list(dict.fromkeys(value))


def _failed(info: ValidationInfo) -> set[str]:
    """Fields validated before this one that failed (absent from info.data)."""
    order = list(OktaCredentials.model_fields)
    return set(order[:order.index(info.field_name or "")]) - set(info.data)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OktaSettings(BaseModel):
    """Per-connection thresholds (the connection's config parameters), with their defaults."""

    model_config = ConfigDict(extra="ignore")

    max_super_admins: int = Field(4, ge=1, le=1000)
    inactive_days: int = Field(90, ge=1, le=3650)
    stuck_after_days: int = Field(30, ge=1, le=3650)
    max_session_lifetime_minutes: int = Field(720, ge=1, le=43_200)
    max_session_idle_minutes: int = Field(120, ge=1, le=43_200)
    min_password_length: int = Field(14, ge=8, le=256)
    min_password_history: int = Field(5, ge=1, le=30)
    max_lockout_attempts: int = Field(10, ge=1, le=100)
    require_phishing_resistant_mfa: bool = True


def resource_id(org_host: str, kind: str, ident: str) -> str:
    """A stable resource id: `okta:<org host>:<kind>:<id>` (`okta:<host>:org` for the org)."""
    return f"okta:{org_host}:{kind}:{ident}" if ident else f"okta:{org_host}:{kind}"


def parse_time(value: Any) -> datetime | None:
    """An Okta timestamp as an aware datetime (None when absent)."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class OktaSession:
    """What every Okta collector receives: credentials and `read`, the way in."""

    def __init__(self, credentials: OktaCredentials, retry: RetryPolicy | None = None, *,
                 endpoints: EndpointPolicy = LOCKED) -> None:
        self.credentials = credentials
        self.endpoints = endpoints
        self.retry = retry or RetryPolicy()
        self.org_url = credentials.org_url
        self.org_host = credentials.org_host

    def read(self, reader: Callable[[OktaApi], Awaitable[T]]) -> T:
        """Run a collector's reads on a fresh SDK client in a private event loop.

        A client per call keeps every aiohttp session and asyncio lock on the loop that made it
        (collectors run in parallel threads, each with its own loop).
        """
        return asyncio.run(self._read(reader))

    async def _read(self, reader: Callable[[OktaApi], Awaitable[T]]) -> T:
        # The SDK's own `async with Client` opens a plain aiohttp session; this one connects
        # only where the endpoint policy allows (the OAuth token request included).
        client = self._client()
        connector = aiohttp_connector(self.endpoints)
        async with aiohttp.ClientSession(connector=connector) as http:
            client.get_request_executor().set_session(http)
            return await reader(OktaApi(client, self))

    def _client(self) -> Client:
        # The SDK takes seconds to import; only processes that sync (workers) pay for it, not
        # the API, which needs the credentials model and the checks' metadata only.
        from okta.client import Client

        creds = self.credentials
        config: dict[str, Any] = {
            "orgUrl": creds.org_url,
            "rateLimit": {"maxRetries": 0},  # retries happen once, in OktaApi.call
            "requestTimeout": 60,
            "httpClient": _raising_http_client(),
        }
        if creds.api_token is not None:
            config |= {"authorizationMode": "SSWS", "token": creds.api_token.get_secret_value()}
        else:
            assert creds.private_key is not None  # the credentials model guarantees it
            config |= {"authorizationMode": "PrivateKey", "clientId": creds.client_id,
                       "scopes": list(creds.scopes),
                       "privateKey": creds.private_key.get_secret_value()}
            if creds.key_id:
                config["kid"] = creds.key_id
        logger = logging.getLogger(_SDK_LOGGER)
        handlers = list(logger.handlers)
        try:
            client = Client(config)
        except ValueError as exc:  # the SDK's config validation (never includes the secrets)
            raise ConnectorError(
                "the okta SDK refused the connection settings: "
                + " ".join(str(exc).split()), code="provider_config_refused") from None
        finally:
            # Client() attaches a new stream handler to the SDK's logger every time; drop it so
            # a long-running worker does not collect one per sync.
            for handler in logger.handlers:
                if handler not in handlers:
                    logger.removeHandler(handler)
        if creds.api_token is not None:
            # okta 3.4 joins mode and token without a space ("SSWS00ab…"); send the form Okta
            # documents, `Authorization: SSWS <token>`.
            client.configuration.authorization_mode = "SSWS "
        return client


class OktaApi:
    """The SDK client of one collector call; `call` is the only way an API call is made."""

    def __init__(self, client: Client, session: OktaSession) -> None:
        self.client = client
        self.session = session
        self._budget = RateBudget(session.retry.max_wait)

    async def call(self, action: str, scope: Scope,
                   request: Callable[[], Awaitable[Any]]) -> Any:
        """Make one API call (retried when limited or failing); return Okta's JSON answer.

        `request` makes the SDK call and returns its (data, response, error) triple. The SDK
        has validated the answer into its models; the JSON it received is returned, because
        some models drop fields the checks judge (Classic `factors` of enrollment policies).
        """
        body, _ = await self._call(action, scope, request)
        return body

    async def pages(self, action: str, scope: Scope,
                    request: Callable[[str | None], Awaitable[Any]]) -> list[dict[str, Any]]:
        """Every item of a list call, following the `Link: <…after=…>; rel="next"` cursor."""
        from okta.pagination import PaginationHelper

        items: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            body, headers = await self._call(action, scope, partial(request, cursor))
            items.extend(body or [])
            cursor = PaginationHelper.extract_next_cursor(headers)
            if cursor is None:
                return items
            if cursor in seen:
                raise ConnectorError(f"Okta repeated a page cursor while trying to {action}")
            seen.add(cursor)

    async def _call(self, action: str, scope: Scope,
                    request: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, str]]:
        async def attempt() -> tuple[Any, dict[str, str]]:
            await self._budget.spend(action)  # paced on Okta's rate-limit headers
            try:
                body, headers = self._answer(action, scope, await request())
            except BaseException:
                self._budget.settle(action, None)
                raise
            self._budget.settle(action, headers)
            return body, headers

        return await call_async(self.session.retry, attempt, _own_errors)

    def _answer(self, action: str, scope: Scope,
                triple: Any) -> tuple[Any, dict[str, str]]:
        _, response, error = triple
        mode = self.session.credentials.auth_mode
        if error is not None:
            raise translate_error(error, action, scope, mode)
        headers = dict(getattr(response, "headers", None) or {})
        status = getattr(response, "status_code", 200)
        if not 200 <= status <= 299:  # the SDK returns an empty-bodied error as a success
            raise translate_status(status, headers, action, scope, mode)
        raw = getattr(response, "raw_data", b"") or b""
        return (json.loads(raw) if raw else None), headers


def _own_errors(exc: Exception) -> ConnectorError | None:
    """Okta's answers are translated as they arrive (the SDK returns errors as values), so the
    errors to retry are the SDK errors raised in the attempt itself."""
    return exc if isinstance(exc, ConnectorError) else None


@cache
def _raising_http_client() -> type:
    """The SDK's HTTP client, but a network failure raises (the SDK would fail obscurely), with
    one text whatever the failure was, so trying hosts and ports maps nothing."""
    from okta.http_client import HTTPClient

    class RaisingHttpClient(HTTPClient):
        async def send_request(self, request: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
            if self._session is None:  # never the SDK's own, unguarded, session
                raise ConnectorError("the okta SDK was used without the session's HTTP client")
            info, response, body, error = await super().send_request(request)
            if response is None:
                raise ProviderUnavailable(unreachable("Okta", "org_url"))
            return info, response, body, error

    return RaisingHttpClient


def translate_error(error: BaseException, action: str, scope: Scope,
                    mode: AuthMode) -> ConnectorError:
    """An error the SDK returned, as the engine's connector error."""
    if isinstance(error, ConnectorError):
        return error
    status = getattr(error, "status", None)
    headers = getattr(error, "headers", None) or getattr(error, "response_headers", None) or {}
    url = str(getattr(error, "url", "") or "")
    if url.endswith(_TOKEN_ENDPOINT) and isinstance(status, int) and 400 <= status < 500:
        return _token_refused(str(getattr(error, "error_code", "")))
    if isinstance(status, int):
        return translate_status(status, headers, action, scope, mode,
                                okta_code=str(getattr(error, "error_code", "") or ""))
    return ConnectorError(f"Okta call to {action} failed: {error.__class__.__name__}")


def translate_status(status: int, headers: Mapping[str, str], action: str, scope: Scope,
                     mode: AuthMode, okta_code: str = "") -> ConnectorError:
    """Map an Okta error status to AuthFailed, PermissionMissing, RateLimited or unavailability.

    Messages say what to fix and never carry the credentials.
    """
    details: dict[str, Any] = {"action": action, "status": status}
    if okta_code:
        details["okta_code"] = okta_code
    if status == 401:
        if mode is AuthMode.API_TOKEN:
            return AuthFailed(
                "Okta rejected the API token: create a new token in the Okta Admin Console "
                "(Security > API > Tokens) as an admin with a read-only administrator role, "
                "and reconnect with it (tokens are revoked after 30 days unused or when their "
                "admin is deactivated)", **details)
        return AuthFailed(
            "Okta rejected the OAuth service app's access token: check client_id, that the "
            "app's public key matches private_key (and key_id), and reconnect", **details)
    if status == 403:
        if mode is AuthMode.API_TOKEN:
            fix = ("the API token acts with its creator's admin role: create it as an admin "
                   f"whose role can {action} (Read-only Administrator or higher)")
        else:
            fix = (f"grant the {scope.value} scope to the service app (its Okta API Scopes "
                   f"tab), request it in scopes, and give the app an admin role that can "
                   f"{action}")
        return PermissionMissing(f"Okta refused to {action} (403): {fix}",
                                 permission=scope.value, **details)
    if status == 429:
        return RateLimited(f"Okta rate-limited the call to {action}",
                           retry_after=retry_after(headers, reset=True), **details)
    if status >= 500:
        # Only Retry-After: Okta sends X-Rate-Limit-Reset on every answer, not just on 429s.
        return ProviderUnavailable(f"Okta is unavailable ({status}) while trying to {action}",
                                   retry_after=retry_after(headers),
                                   **details)
    return ConnectorError(f"Okta answered {status} to {action}"
                          + (f" ({okta_code})" if okta_code else ""), **details)


def _token_refused(error_code: str) -> AuthFailed:
    if error_code == "invalid_scope":
        return AuthFailed("Okta refused the requested OAuth scopes: grant them to the service "
                          "app (its Okta API Scopes tab) or remove them from scopes",
                          okta_code=error_code)
    if error_code == "unauthorized_client":
        return AuthFailed("Okta does not allow this app the client credentials grant: use an "
                          "API Services app", okta_code=error_code)
    return AuthFailed("Okta rejected the OAuth service app: check client_id, that the app's "
                      "public key matches private_key (and key_id), and that the app uses "
                      "public key / private key client authentication", okta_code=error_code)
