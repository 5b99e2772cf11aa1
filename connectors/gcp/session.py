"""Google Cloud credentials, and the session every Google Cloud collector receives.

The session builds google-cloud-storage clients; every API call goes through `GcpSession.call`,
which runs it under the SDK's retry policy (connectors.retry: 429, 5xx and dropped connections
are retried, honouring Retry-After, capped) after `translate_error` has turned google-api-core and
google-auth failures into the SDK's typed connector errors. The client library's own retry is
switched off on every call (`retry=None`) so attempts are never multiplied; the token endpoint is
retried by google-auth alone (three attempts), never by us.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.credentials import Credentials as GoogleCredentials
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as AuthRequest
from google.cloud import storage
from google.oauth2 import service_account
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.egress import guard_requests, requests_session
from connectors.endpoints import LOCKED, Endpoint, EndpointPolicy, HttpUrl, unreachable
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
)
from connectors.retry import RetryPolicy, call, retry_after

T = TypeVar("T")

GOOGLE_STORAGE_ENDPOINT = "https://storage.googleapis.com"
GOOGLE_API_DOMAIN = ".googleapis.com"
READ_ONLY_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_only",
                    "https://www.googleapis.com/auth/cloud-platform.read-only")
# (connect, read) seconds for every Cloud Storage call.
TIMEOUT = (5.0, 30.0)
ANONYMOUS = "anonymous"
# Google's ids: 6-30 characters, a letter first; legacy domain-scoped ids carry "example.com:".
_PROJECT_ID = r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$"
_SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key")


class GcpCredentials(BaseModel):
    """A service account key of the project to audit; an emulator endpoint for tests."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    project_id: str = Field(pattern=_PROJECT_ID,
                            description="The Google Cloud project whose buckets are audited.")
    endpoint_url: Annotated[HttpUrl | None, Endpoint.EMULATOR] = Field(
        None, description="Send every Cloud Storage call to this endpoint (emulators, private "
                          "endpoints). Without service_account_json the calls are anonymous.")
    service_account_json: SecretStr | None = Field(
        None, validate_default=True,
        description="The service account key file (JSON) of a read-only auditing principal: "
                    "roles/iam.securityReviewer on the project, or a custom role with "
                    "storage.buckets.list and storage.buckets.getIamPolicy. Required unless "
                    "endpoint_url points at an emulator.")

    @field_validator("service_account_json")
    @classmethod
    def _service_account_key(cls, value: SecretStr | None,
                             info: ValidationInfo) -> SecretStr | None:
        """The key parses, names its principal and its token server; never quoted back."""
        endpoint_url = info.data.get("endpoint_url")
        if value is None:
            if "endpoint_url" in info.data and endpoint_url is None:  # absent when it failed
                raise ValueError("required: the JSON key file of the service account that "
                                 "audits the project")
            return None
        key = _parse_key(value.get_secret_value())
        try:
            service_account.Credentials.from_service_account_info(key)
        except Exception:  # any failure to load the key; its message may quote the key
            raise ValueError("private_key is not a valid PEM private key") from None
        token_uri = urlsplit(str(key["token_uri"]))
        if endpoint_url is None and not (token_uri.scheme == "https" and (
                token_uri.hostname or "").endswith(GOOGLE_API_DOMAIN)):
            # A key naming another token server would send a signed assertion elsewhere;
            # only an explicitly allowed custom endpoint (emulators, tests) may do that.
            raise ValueError("token_uri must be an https://*.googleapis.com address")
        return value

    def service_key(self) -> dict[str, Any]:
        """The parsed key file (validated on construction)."""
        if self.service_account_json is None:
            return {}
        return _parse_key(self.service_account_json.get_secret_value())

    @property
    def principal(self) -> str:
        """Who the calls are made as: the service account's email, or "anonymous"."""
        return str(self.service_key().get("client_email", ANONYMOUS))


def _parse_key(raw: str) -> dict[str, Any]:
    try:
        info = json.loads(raw)
    except ValueError:
        raise ValueError("service_account_json is not valid JSON") from None
    if not isinstance(info, dict):
        raise ValueError("service_account_json must be a JSON object (the key file)")
    if info.get("type") != "service_account":
        raise ValueError('service_account_json must be a service account key '
                         '("type": "service_account")')
    missing = [f for f in _SERVICE_ACCOUNT_FIELDS if not isinstance(info.get(f), str)
               or not info[f]]
    if missing:
        raise ValueError("service_account_json lacks " + ", ".join(missing))
    info.setdefault("token_uri", "https://oauth2.googleapis.com/token")
    return info


class GcpSession:
    """What every Google Cloud collector receives: clients, the project, and `call`."""

    def __init__(self, credentials: GcpCredentials, retry: RetryPolicy | None = None, *,
                 endpoints: EndpointPolicy = LOCKED) -> None:
        self.credentials = credentials
        self.endpoints = endpoints
        self.project_id = credentials.project_id
        self.principal = credentials.principal
        self.endpoint = credentials.endpoint_url or GOOGLE_STORAGE_ENDPOINT
        self.retry = retry or RetryPolicy()
        self._google_credentials = self._build_credentials()
        self._local = threading.local()

    def _build_credentials(self) -> GoogleCredentials:
        if self.credentials.service_account_json is None:
            return AnonymousCredentials()
        return service_account.Credentials.from_service_account_info(
            self.credentials.service_key(), scopes=list(READ_ONLY_SCOPES))

    def storage_client(self) -> storage.Client:
        """This thread's Cloud Storage client (clients and their HTTP sessions are per thread).

        The endpoint is always explicit, so STORAGE_EMULATOR_HOST in the environment never
        redirects a production connection. A 401 refreshes a service account's token once (it
        may have expired); anonymous calls have nothing to refresh, so their 401 surfaces at once.
        Both the API calls and the token requests connect under the endpoint policy.
        """
        client: storage.Client | None = getattr(self._local, "storage", None)
        if client is None:
            is_anonymous = isinstance(self._google_credentials, AnonymousCredentials)
            http = AuthorizedSession(self._google_credentials,
                                     refresh_status_codes=() if is_anonymous else (401,),
                                     max_refresh_attempts=1,
                                     auth_request=AuthRequest(requests_session(self.endpoints)))
            guard_requests(http, self.endpoints)
            client = storage.Client(project=self.project_id,
                                    credentials=self._google_credentials,
                                    client_options={"api_endpoint": self.endpoint}, _http=http)
            self._local.storage = client
        return client

    def call(self, action: str, permission: str, fn: Callable[[storage.Client], T]) -> T:
        """Run one API call with retries; failures leave as typed connector errors.

        `action` names the call in messages (`buckets.list`), `permission` is the IAM permission
        it needs, named when Google answers 403.
        """
        client = self.storage_client()
        translate = partial(translate_error, action=action, permission=permission,
                            project_id=self.project_id, principal=self.principal,
                            endpoint=self.endpoint)
        return call(self.retry, partial(fn, client), translate)


def translate_error(exc: BaseException, *, action: str, permission: str, project_id: str,
                    principal: str, endpoint: str) -> ConnectorError | None:
    """Map a google-api-core / google-auth / requests failure to the SDK's connector errors;
    None for any other exception. Throttling, 5xx answers and dropped connections are
    retryable; the rest is not.

    Messages say what to fix and never carry credentials (Google's answers never echo a key).
    """
    if not isinstance(exc, api_exceptions.GoogleAPICallError | auth_exceptions.GoogleAuthError
                      | requests.RequestException):
        return None
    details: dict[str, Any] = {"service": "storage", "action": action, "project": project_id}
    if isinstance(exc, auth_exceptions.RefreshError) and exc.retryable:
        # google-auth has already retried the token endpoint; its outage is not a bad key
        return ProviderUnavailable(f"Google's token endpoint is unavailable ({action}); the "
                                   "sync will try again later", retryable=False, **details)
    if isinstance(exc, auth_exceptions.RefreshError):
        return AuthFailed(f"Google refused the service account key of {principal}: the key may "
                          "have been deleted or the service account disabled; create a new key "
                          "and reconnect with it as service_account_json", **details)
    if isinstance(exc, auth_exceptions.TransportError | requests.RequestException):
        # One text whatever failed (refused, timed out, TLS, not allowed): no port mapping.
        where = "endpoint_url" if endpoint != GOOGLE_STORAGE_ENDPOINT else endpoint
        dropped = isinstance(exc, requests.ConnectionError | requests.Timeout)
        return ProviderUnavailable(unreachable("Google Cloud", where), retryable=dropped,
                                   **details)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return AuthFailed(f"Google Cloud credentials could not be used: "
                          f"{exc.__class__.__name__}", **details)
    if not isinstance(exc, api_exceptions.GoogleAPICallError):
        return ConnectorError(f"Cloud Storage {action} failed: {exc.__class__.__name__}",
                              **details)
    reasons = sorted({str(e.get("reason")) for e in exc.errors or [] if isinstance(e, dict)
                      and e.get("reason")})
    details["google_status"] = exc.code
    details["reasons"] = reasons
    if isinstance(exc, api_exceptions.Unauthorized):
        if principal == ANONYMOUS:
            return AuthFailed(f"Cloud Storage at {endpoint} requires authentication (401): "
                              "provide service_account_json", **details)
        return AuthFailed(f"Google Cloud rejected the credentials of {principal} (401): check "
                          "that the key in service_account_json is current and the service "
                          "account is enabled", **details)
    if isinstance(exc, api_exceptions.Forbidden):
        if "accessNotConfigured" in reasons:
            return PermissionMissing(f"the Cloud Storage JSON API is disabled in project "
                                     f"{project_id}: enable storage.googleapis.com",
                                     permission="serviceusage.services.use", **details)
        return PermissionMissing(
            f"missing permission {permission} on project {project_id}: grant {principal} "
            "roles/iam.securityReviewer or a custom role that includes it",
            permission=permission, **details)
    asked = retry_after(_headers(exc))
    if isinstance(exc, api_exceptions.TooManyRequests):
        return RateLimited(f"Google Cloud throttled {action} after retries",
                           retry_after=asked, **details)
    if isinstance(exc, api_exceptions.ServerError):
        return ProviderUnavailable(f"Cloud Storage is unavailable ({exc.code}) for {action} "
                                   "after retries", retry_after=asked, **details)
    if isinstance(exc, api_exceptions.NotFound) and action == "buckets.list":
        return ConnectorError(f"project {project_id} was not found: check project_id",
                              **details)
    return ConnectorError(f"Cloud Storage {action} failed ({exc.code}): {exc.message}",
                          **details)


def _headers(exc: BaseException) -> dict[str, str]:
    response = getattr(exc, "response", None)
    return dict(getattr(response, "headers", None) or {})
