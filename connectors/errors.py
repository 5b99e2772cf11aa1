"""The connector SDK's errors: what a connector raises on purpose, with a stable `code`.

`ConnectorError` and its subclasses say what went wrong at the provider and whether trying again
can help (`retryable`, and `retry_after` when the provider said how long to wait); `InvalidFields`
is input the SDK refused before any provider call (credentials or configuration that do not
validate). The engine maps each of them to an HTTP status (engine/errors.py); this module imports
nothing from engine/.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthFailed",
    "ConnectorError",
    "InvalidFields",
    "PermissionMissing",
    "ProviderUnavailable",
    "RateLimited",
]


class ConnectorError(Exception):
    """A provider call failed; subclasses say whether retrying can help.

    `message` is for a person (what to fix, never a secret), `code` is stable for programs, and
    `details` (keyword arguments) are facts about the failure (the permission, the action).
    `retryable` and `retry_after` are the retry hints connectors.retry follows: `retryable`
    overrides the kind's default for one failure (an outage another layer already retried).
    """

    code = "provider_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, retryable: bool | None = None,
                 retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:  # this failure, unlike its kind, is (not) worth retrying
            self.retryable = retryable
        self.details = details
        self.retry_after = retry_after
        """Seconds the provider asked us to wait before trying again, when it said."""


class InvalidFields(ConnectorError):
    """Credentials or configuration that do not validate; `details["fields"]` names each failing
    field and why, never its value."""

    code = "invalid_input"


class AuthFailed(ConnectorError):
    """The provider refused the credentials: not retried, the connection goes to `error`."""

    code = "provider_auth_failed"


class PermissionMissing(ConnectorError):
    """The credentials lack a permission: the affected scope reports `error`, the rest stands."""

    code = "provider_permission_missing"


class RateLimited(ConnectorError):
    """The provider throttled the calls; `retry_after` is the wait it asked for, if any."""

    code = "provider_rate_limited"
    retryable = True


class ProviderUnavailable(ConnectorError):
    """The provider failed or could not be reached (5xx, refused, timed out): retried."""

    code = "provider_unavailable"
    retryable = True
