"""AWS credentials, and the session every AWS collector receives.

The session builds boto3 clients (cached per service and region, with botocore's adaptive retry
mode) and is the one place where botocore errors become the engine's typed connector errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.base import (
    AuthFailed,
    ConnectorError,
    Endpoint,
    HttpUrl,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
)

DEFAULT_REGION = "us-east-1"

T = TypeVar("T")
R = TypeVar("R")

RegionName = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")]

_BAD_KEY = frozenset({
    "InvalidClientTokenId", "InvalidAccessKeyId", "UnrecognizedClientException", "AuthFailure",
    "InvalidToken", "IncompleteSignature",
})
_BAD_SIGNATURE = frozenset({"SignatureDoesNotMatch"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"})
_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "UnauthorizedAccess", "Forbidden",
})
_THROTTLED = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "SlowDown",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "EC2ThrottledException",
    "PriorRequestNotComplete",
})
_UNAVAILABLE = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
# AWS's answer for an operation the endpoint does not know (a service absent from a region or
# partition, or an emulator without it).
_NOT_SERVED = frozenset({"UnknownOperationException", "InvalidAction"})
# Where an API operation's IAM action has another name, so a missing permission is named right.
_IAM_ACTIONS = {
    ("s3", "ListBuckets"): "ListAllMyBuckets",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "GetBucketEncryption"): "GetEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "GetBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "GetAccountPublicAccessBlock",
}
# Where a boto3 service name is not the IAM service prefix of its actions.
_IAM_PREFIXES = {"elbv2": "elasticloadbalancing", "accessanalyzer": "access-analyzer",
                 "efs": "elasticfilesystem", "s3control": "s3"}


class ServiceNotServed(ConnectorError):
    """The endpoint does not serve the operation: AWS answered UnknownOperationException, or an
    emulator endpoint answered an HTML error page instead of an AWS error document (moto has no
    IAM Access Analyzer, for one). Not retried; a collector may record it per resource."""

    code = "service_not_served"


def refuse_unserved(response: Any = None, operation: Any = None, **_: Any) -> None:
    """botocore `needs-retry` hook for emulator endpoints: an HTML 404/500/501 page naming no
    AWS error code is the emulator saying it has no such operation, so fail at once instead of
    retrying it."""
    http, parsed = response if isinstance(response, tuple) and len(response) == 2 else (None, {})
    if http is None or http.status_code not in (404, 500, 501):
        return
    code = str((parsed or {}).get("Error", {}).get("Code", ""))
    if not code.isdigit() or "html" not in str(http.headers.get("content-type", "")).lower():
        return  # an AWS error document (it names its error code): translated as usual
    if b"<html" not in (http.content or b"")[:512].lower():
        return  # a body-less answer (a HEAD's 404) is the resource missing, not the operation
    service = operation.service_model.service_name if operation is not None else "?"
    name = operation.name if operation is not None else "?"
    raise ServiceNotServed(f"the endpoint does not serve AWS {service} {name} (HTTP "
                           f"{http.status_code}, not an AWS answer)", service=service,
                           operation=name)


class AwsCredentials(BaseModel):
    """An IAM access key: long-lived (AKIA…) or temporary (ASIA… with its session token)."""

    model_config = ConfigDict(extra="forbid")

    access_key_id: str = Field(
        min_length=16, max_length=128, pattern=r"^(AKIA|ASIA)[A-Z0-9]+$",
        description="Access key id of a read-only auditing principal (SecurityAudit policy).")
    secret_access_key: SecretStr = Field(min_length=20, description="The key's secret.")
    session_token: SecretStr | None = Field(
        None, validate_default=True,
        description="Session token; required with temporary (ASIA…) keys.")
    regions: list[RegionName] | None = Field(
        None, min_length=1,
        description="Regions to audit; every region enabled for the account when omitted.")
    endpoint_url: Annotated[HttpUrl | None, Endpoint.EMULATOR] = Field(
        None, description="Send every call to this endpoint (emulators and tests).")

    @field_validator("session_token")
    @classmethod
    def _token_for_temporary_keys(cls, value: SecretStr | None,
                                  info: ValidationInfo) -> SecretStr | None:
        key_id = info.data.get("access_key_id")
        if value is None and isinstance(key_id, str) and key_id.startswith("ASIA"):
            raise ValueError("temporary (ASIA…) access keys need their session_token")
        return value

    @field_validator("regions")
    @classmethod
    def _distinct_regions(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


@dataclass(frozen=True)
class Identity:
    """Who the credentials are: the account and partition every ARN is built from."""

    account_id: str
    arn: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1]

    @property
    def root_arn(self) -> str:
        """The account's root principal, which account-level results are filed under."""
        return f"arn:{self.partition}:iam::{self.account_id}:root"


class AwsSession:
    """What every AWS collector receives: thread-safe, cached boto3 clients on one session.

    `parallelism` bounds how many per-resource reads (one bucket's settings, one user's MFA
    devices) a collector runs at once through `fan_out`.
    """

    def __init__(self, credentials: AwsCredentials, parallelism: int = 1) -> None:
        self.credentials = credentials
        self.parallelism = max(1, parallelism)
        self.endpoint_url = credentials.endpoint_url
        self.home_region = credentials.regions[0] if credentials.regions else DEFAULT_REGION
        token = credentials.session_token
        self._boto = boto3.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
            aws_session_token=token.get_secret_value() if token is not None else None,
            region_name=self.home_region,
        )
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": 8},
            connect_timeout=5, read_timeout=30, user_agent_extra="evidence-engine",
            max_pool_connections=max(10, self.parallelism),
        )
        if self.endpoint_url is not None:  # an emulator: an operation it lacks fails at once
            self._boto.events.register_first("needs-retry", refuse_unserved)
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._identity: Identity | None = None
        self._identity_lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for the service in the region (the home region when None).

        boto3 clients are thread-safe but sessions are not, so clients are made under a lock.
        """
        key = (service, region or self.home_region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._boto.client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url,
                    config=self._config)
            return self._clients[key]

    @property
    def events(self) -> Any:
        """botocore's event system of this session (clients made later inherit handlers)."""
        return self._boto.events

    def fan_out(self, read: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`read` applied to every item, up to `parallelism` at once; results in item order.

        The first exception (in item order) leaves the call, as a plain loop's would.
        """
        if self.parallelism == 1 or len(items) < 2:
            return [read(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(items)),
                                thread_name_prefix="aws-read") as pool:
            return list(pool.map(read, items))

    @contextmanager
    def service(self, service: str, region: str | None = None) -> Iterator[Any]:
        """A client whose failures leave the block as typed connector errors."""
        with translate_errors(service):
            yield self.client(service, region)

    def identity(self) -> Identity:
        """The caller's account (STS GetCallerIdentity, read once per session)."""
        with self._identity_lock:
            if self._identity is None:
                with self.service("sts") as sts:
                    answer = sts.get_caller_identity()
                self._identity = Identity(account_id=answer["Account"], arn=answer["Arn"])
            return self._identity


def error_code(exc: ClientError) -> str:
    """The AWS error code of a botocore ClientError ("" when the answer had none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def translate_errors(service: str) -> Iterator[None]:
    """Turn botocore failures inside the block into the engine's connector errors."""
    try:
        yield
    except ClientError as exc:
        raise translate_client_error(exc, service) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise ProviderUnavailable(
            f"could not reach AWS {service}: {exc.__class__.__name__}", service=service,
        ) from exc


def translate_client_error(exc: ClientError, service: str) -> ConnectorError:
    """Map an AWS error answer to AuthFailed, PermissionMissing, RateLimited or unavailability.

    Messages say what to fix and never carry credentials (AWS answers never echo the secret).
    """
    code = error_code(exc)
    operation = exc.operation_name or "unknown"
    prefix = _IAM_PREFIXES.get(service, service)
    action = f"{prefix}:{_IAM_ACTIONS.get((service, operation), operation)}"
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    details: dict[str, Any] = {"service": service, "action": action, "aws_code": code}
    if code in _EXPIRED:
        return AuthFailed("AWS says the session token has expired: provide fresh temporary "
                          "credentials (access_key_id, secret_access_key, session_token)",
                          **details)
    if code in _BAD_SIGNATURE:
        return AuthFailed("AWS rejected the request signature: check secret_access_key",
                          **details)
    if code in _BAD_KEY:
        return AuthFailed("AWS rejected the access key: check access_key_id and "
                          "secret_access_key", **details)
    if code in _NOT_SERVED:
        return ServiceNotServed(f"AWS does not serve {action} here ({code})", **details)
    if code in _DENIED:
        return PermissionMissing(f"missing permission {action}", permission=action, **details)
    if code in _THROTTLED or status == 429:
        return RateLimited(f"AWS throttled {action} after retries", **details)
    if code in _UNAVAILABLE or status >= 500:
        return ProviderUnavailable(f"AWS {service} is unavailable ({code or status})", **details)
    message = str(exc.response.get("Error", {}).get("Message", "")).strip()
    return ConnectorError(f"AWS {action} failed: {code}" + (f": {message}" if message else ""),
                          **details)
