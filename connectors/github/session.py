"""GitHub credentials, and the session every GitHub collector receives.

The session builds PyGithub clients with PyGithub's own retrying switched off and runs every call
under the SDK's retry policy (connectors.retry: `Retry-After` and `x-ratelimit-reset` honoured,
capped, so a sync never sleeps for an hour); `translate` turns PyGithub's exceptions into the
SDK's typed connector errors, saying which are rate limits and how long GitHub asked to wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Annotated, Any, TypeVar

import requests
from github import Auth, Github, GithubException
from github.GithubObject import GithubObject
from github.PaginatedList import PaginatedList
from github.Requester import (
    HTTPRequestsConnectionClass,
    HTTPSRequestsConnectionClass,
    Requester,
    RequestsResponse,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.base import (
    AuthFailed,
    ConditionalCache,
    ConnectorError,
    Endpoint,
    EndpointPolicy,
    HttpUrl,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
    StoredAnswer,
)
from connectors.egress import guard_requests
from connectors.endpoints import LOCKED, unreachable
from connectors.github.etags import EtagCache, cache_scope, etag_cache, request_key
from connectors.retry import RetryPolicy, call, retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")
G = TypeVar("G", bound=GithubObject)

API_URL = "https://api.github.com"  # github.com's API host; GHE's is `base_url`
USER_AGENT = "evidence-engine"
PER_PAGE = 100  # GitHub's largest page; the server may send fewer and link to the next page
TIMEOUT_SECONDS = 15
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: without a header, wait at least a minute
NOT_FOUND = "provider_not_found"  # the code of a ConnectorError for a 404


@dataclass(frozen=True)
class Permission:
    """What a token needs for one read: a classic scope and the fine-grained permission."""

    classic: str
    fine_grained: str

    def __str__(self) -> str:
        return f"{self.classic} (classic token) or {self.fine_grained} (fine-grained token)"


ORG_READ = Permission("read:org", "organization Members: read")
ORG_ADMIN = Permission("admin:org, as an organization owner",
                       "organization Administration: read")
REPO_METADATA = Permission("repo", "repository Metadata: read")
REPO_ADMIN = Permission("repo, as a repository admin", "repository Administration: read")
REPO_CONTENTS = Permission("repo", "repository Contents: read")


_OAUTH_ONLY = ("refresh_token", "token_type", "expires_at", "scope")


class GithubCredentials(BaseModel):
    """A token that reads one organization: a personal access token (classic or fine-grained)
    given as `token`, or what GitHub's OAuth token endpoint answered (`access_token`, with
    `refresh_token` and `expires_at` for a GitHub App's expiring user tokens), as the OAuth
    callback stores it. The organization comes with either (for OAuth, on GET .../oauth-url).
    """

    model_config = ConfigDict(extra="forbid")

    # Declared before `token`, whose validator checks that exactly one kind of token is given.
    access_token: SecretStr | None = Field(
        None, min_length=20, max_length=1000,
        description="An OAuth app or GitHub App user access token (stored by the OAuth "
        "callback; connect with GET /api/v1/integrations/github/oauth-url).")
    refresh_token: SecretStr | None = Field(
        None, min_length=20, max_length=1000,
        description="A GitHub App's refresh token for an expiring access_token.")
    token_type: str | None = Field(None, pattern=r"^(?i:bearer)$",
                                   description="bearer (GitHub's token answer)")
    expires_at: int | None = Field(None, ge=0, description="When access_token expires (epoch "
                                   "seconds); GitHub App user tokens last 8 hours.")
    scope: str | None = Field(None, max_length=1000, pattern=r"^[a-z0-9:_, ]*$",
                              description="The scopes GitHub granted, comma-separated.")
    token: SecretStr | None = Field(
        None, min_length=20, max_length=1000, validate_default=True,
        description="Personal access token (classic or fine-grained) of an organization owner. "
        "Classic scopes: repo, admin:org (read:org is part of it); fine-grained: read access "
        "to organization Administration and Members, repository Administration, Contents, "
        "Metadata. Or connect through OAuth instead.")
    organization: str = Field(
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$",
        description="The organization's login, as in https://github.com/<organization>.")
    base_url: Annotated[HttpUrl | None, Endpoint.SERVER] = Field(
        None, description="GitHub Enterprise Server API URL, e.g. https://ghe.example.com/api/v3 "
        "(api.github.com when omitted).")

    @field_validator("access_token", "refresh_token", "token")
    @classmethod
    def _no_whitespace(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(ch.isspace() for ch in value.get_secret_value()):
            raise ValueError("a GitHub token has no spaces or line breaks")
        return value

    @field_validator("token")
    @classmethod
    def _one_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if "access_token" not in info.data:
            return value  # access_token itself failed; its error says why
        oauth = info.data["access_token"] is not None
        if value is None and not oauth:
            raise ValueError("give a personal access token, or connect through OAuth (GET "
                             "/api/v1/integrations/github/oauth-url)")
        if value is not None and oauth:
            raise ValueError("give either token or access_token, not both")
        extra = [name for name in _OAUTH_ONLY if info.data.get(name) is not None]
        if value is not None and extra:
            raise ValueError(f"{', '.join(extra)} {'go' if len(extra) > 1 else 'goes'} only with "
                             "an OAuth access_token")
        return value

    @property
    def secret(self) -> str:
        """The token the API calls send, whichever way it was obtained."""
        token = self.token if self.token is not None else self.access_token
        if token is None:  # the validators make this impossible
            raise ValueError("GitHub credentials without a token")
        return token.get_secret_value()


class GithubSession:
    """What every GitHub collector receives: per-thread PyGithub clients and one retry policy.

    PyGithub's Requester shares one connection object whose request and response are separate
    calls, so a client must not be used by two threads at once: each thread gets its own.
    """

    def __init__(self, credentials: GithubCredentials, policy: RetryPolicy | None = None, *,
                 endpoints: EndpointPolicy = LOCKED, conditional: bool = True,
                 store: ConditionalCache | None = None) -> None:
        self.credentials = credentials
        self.endpoints = endpoints
        self.policy = policy or RetryPolicy()
        self.etags: EtagCache | None = (
            etag_cache(self.api_url, credentials.organization, credentials.secret)
            if conditional else None)
        """This connection's stored answers: every GET sends If-None-Match (connectors.github
        .etags), so what did not change since the last sync costs no rate limit."""
        self.store = store if conditional else None
        """Where the answers outlive this worker (the engine's per-connection table)."""
        self._scope = cache_scope(self.api_url, credentials.organization, credentials.secret)
        if self.store is not None and self.etags is not None and not len(self.etags):
            self.etags.preload(self._load_etags(self.store))
        self._local = threading.local()
        self._memo: dict[str, tuple[Any, BaseException | None]] = {}
        self._memo_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _load_etags(self, store: ConditionalCache) -> Mapping[str, StoredAnswer]:
        try:
            return store.load(self._scope)
        except Exception as exc:  # noqa: BLE001 - a cache is only an economy: read everything
            log.warning("could not load the stored GitHub answers: %s", exc)
            return {}

    def save_etags(self) -> None:
        """Save the answers stored and forget those evicted since the last save (one write per
        run, none when nothing changed)."""
        if self.store is None or self.etags is None:
            return
        changed, dropped = self.etags.take_changes()
        if not changed and not dropped:
            return
        try:
            self.store.save(self._scope, changed, dropped)
        except Exception as exc:  # noqa: BLE001 - the next run reads those answers again
            log.warning("could not save the stored GitHub answers: %s", exc)

    def client(self) -> Github:
        """This thread's lazy PyGithub client: objects fetch only when read (see `call`)."""
        gh: Github | None = getattr(self._local, "client", None)
        if gh is None:
            options: dict[str, Any] = {}
            if self.credentials.base_url:
                options["base_url"] = self.credentials.base_url
            gh = Github(auth=Auth.Token(self.credentials.secret),
                        retry=None,  # retries live in `call`, so they never multiply
                        per_page=PER_PAGE, timeout=TIMEOUT_SECONDS, user_agent=USER_AGENT,
                        seconds_between_requests=None, seconds_between_writes=None,
                        lazy=True, **options)
            guard_connections(gh.requester, self.endpoints, self.etags)
            self._local.client = gh
        return gh

    def call(self, read: Callable[[], T], *, what: str, needs: Permission) -> T:
        """Run one read under the retry policy; failures leave as typed connector errors.

        `what` names the thing read ("branch protection of acme/api") and `needs` the permission
        a 403 means is missing, so every error says what to fix.
        """
        return call(self.policy, read, partial(self._translate, what=what, needs=needs))

    def each(self, listing: Callable[[], PaginatedList[G]], convert: Callable[[G], U], *,
             what: str, needs: Permission) -> list[U]:
        """Every item of a paginated listing (following `Link` headers), retrying page by page.

        A failed page leaves PyGithub's next-page link where it was, so indexing the list again
        fetches the same page rather than starting over. `convert` turns each PyGithub object
        into a snapshot inside the retried call, so a field PyGithub has to fetch lazily is
        fetched under the same policy.
        """
        pages = listing()
        items: list[U] = []
        while True:
            try:
                items.append(self.call(lambda: convert(pages[len(items)]), what=what,
                                       needs=needs))
            except IndexError:
                return items

    def once(self, key: str, read: Callable[[], T]) -> T:
        """Read something several collectors need (the repository list) once per session.

        A failure is remembered too, so collectors that share a read share its error instead of
        retrying it one after another.
        """
        with self._lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (read(), None)
                except Exception as exc:  # noqa: BLE001 - re-raised to every caller below
                    self._memo[key] = (None, exc)
            value, error = self._memo[key]
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    @property
    def api_url(self) -> str:
        return self.credentials.base_url or API_URL

    @property
    def _endpoint_name(self) -> str:
        return "base_url" if self.credentials.base_url else API_URL

    def _translate(self, exc: Exception, *, what: str,
                   needs: Permission) -> ConnectorError | None:
        if isinstance(exc, GithubException):
            return translate(exc, what, needs, self.policy)
        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            # One text whatever failed (refused, timed out, TLS, not allowed): a tenant's
            # base_url must not map ports.
            return ProviderUnavailable(unreachable("GitHub", self._endpoint_name), what=what)
        return None


def guard_connections(requester: Requester, policy: EndpointPolicy,
                      etags: EtagCache | None = None) -> None:
    """Make a PyGithub client connect only where the endpoint policy allows, and send its
    GETs conditionally when given the connection's `etags`.

    PyGithub builds its own requests sessions inside its connection classes and takes no
    session or adapter; its Requester keeps the classes it uses per instance, so this client's
    get subclasses that mount the SDK's guarded adapters (tests/connectors/github prove it
    still holds through the real PyGithub).
    """
    if policy.allow_custom and etags is None:
        return
    https, http = _connection_classes(policy, etags)
    for name, cls in (("connectionClass", https if requester.scheme == "https" else http),
                      ("httpsConnectionClass", https), ("httpConnectionClass", http)):
        attribute = f"_Requester__{name}"
        if not hasattr(requester, attribute):  # PyGithub changed: fail closed, loudly
            raise ConnectorError(f"PyGithub has no {attribute}: cannot guard its connections")
        setattr(requester, attribute, cls)


@lru_cache(maxsize=64)
def _connection_classes(policy: EndpointPolicy,
                        etags: EtagCache | None) -> tuple[type[Any], type[Any]]:
    guard = not policy.allow_custom

    class GuardedHttps(HTTPSRequestsConnectionClass):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if guard:
                guard_requests(self.session, policy, self.pool_size, self.retry)

        def getresponse(self) -> RequestsResponse:
            return _conditionally(self, super().getresponse, etags)

    class GuardedHttp(HTTPRequestsConnectionClass):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if guard:
                guard_requests(self.session, policy, self.pool_size, self.retry)

        def getresponse(self) -> RequestsResponse:
            return _conditionally(self, super().getresponse, etags)

    return GuardedHttps, GuardedHttp


def _conditionally(connection: Any, send: Callable[[], RequestsResponse],
                   etags: EtagCache | None) -> RequestsResponse:
    """Send the connection's request, with If-None-Match when a GET's answer is stored."""
    if etags is None or str(connection.verb).upper() != "GET":
        return send()
    url = f"{connection.protocol}://{connection.host}:{connection.port}{connection.url}"
    key = request_key(url, connection.headers)
    stored = etags.get(key)
    if stored is not None:
        connection.headers = {**connection.headers, "If-None-Match": stored.etag}
    return etags.settle(key, stored, send())


def _headers(exc: GithubException) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or "").strip()


def is_rate_limited(exc: GithubException) -> bool:
    """429, or a 403 that is GitHub's primary or secondary rate limit rather than a denial."""
    if exc.status == 429:
        return True
    if exc.status != 403:
        return False
    headers = _headers(exc)
    return (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
            or Requester.isRateLimitError(_message(exc).lower()))


def requested_wait(exc: GithubException) -> float | None:
    """Seconds GitHub asks us to wait before trying again; None when it did not ask.

    `Retry-After` (seconds or an HTTP date) on a 403, 429 or 5xx wins; then `x-ratelimit-reset`
    when the primary limit is spent; a secondary limit without either header means at least a
    minute.
    """
    headers = _headers(exc)
    if "retry-after" in headers and (exc.status in (403, 429) or exc.status >= 500):
        asked = retry_after(headers)
        if asked is not None:
            return asked
    if not is_rate_limited(exc):
        return None
    asked = retry_after(headers, reset=headers.get("x-ratelimit-remaining") == "0")
    return asked if asked is not None else SECONDARY_LIMIT_WAIT


def translate(exc: GithubException, what: str, needs: Permission,
              policy: RetryPolicy | None = None) -> ConnectorError:
    """Map a GitHub error answer to AuthFailed, PermissionMissing, RateLimited or unavailability
    (the last two retryable, with the wait GitHub asked for).

    Messages say what to fix; GitHub's answers never carry the token, and neither do these.
    """
    status, message = exc.status, _message(exc)
    details: dict[str, Any] = {"what": what, "github_status": status}
    if status == 401:
        return AuthFailed(f"GitHub rejected the token: {message or 'unauthorized'}; it may be "
                          "mistyped, expired or revoked: create a new token (or authorize the "
                          "OAuth app again) and reconnect",
                          **details)
    if is_rate_limited(exc):
        wait = requested_wait(exc)
        cap = policy.max_wait if policy else RetryPolicy().max_wait
        when = (f"it resets in {round(wait)} s, longer than the {round(cap)} s a sync waits"
                if wait is not None and wait > cap else "it stayed limited after retries")
        return RateLimited(f"GitHub rate limit reached reading {what}: {when}",
                           retry_after=wait, **details)
    if status == 403 and "oauth app access restrictions" in message.lower():
        return PermissionMissing(
            f"the organization restricts OAuth app access, so GitHub refused {what}: an "
            "organization owner approves this app (Organization settings > Third-party access "
            "> OAuth app policy), or connect with a personal access token",
            permission="oauth_app_approval", **details)
    if status == 403 and "saml" in message.lower():
        return PermissionMissing(
            f"GitHub requires SAML single sign-on for {what}: authorize the token for the "
            "organization (token settings > Configure SSO)", permission="saml_sso", **details)
    if status == 403:
        return PermissionMissing(f"missing permission to read {what}: the token needs {needs}"
                                 + (f" (GitHub said: {message})" if message else ""),
                                 permission=needs.classic, **details)
    if status == 404:
        return ConnectorError(f"GitHub found no {what}, or the token cannot see it (it needs "
                              f"{needs})", code=NOT_FOUND, **details)
    if status >= 500:
        return ProviderUnavailable(f"GitHub is unavailable reading {what} ({status}"
                                   + (f": {message}" if message else "") + ") after retries",
                                   retry_after=requested_wait(exc), **details)
    return ConnectorError(f"GitHub refused reading {what}: {status}"
                          + (f" {message}" if message else ""), **details)
