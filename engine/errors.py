"""The engine's error hierarchy; each error maps once to an HTTP status and a stable code."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(EngineError):
    status = 422
    code = "invalid_input"


class BadRequest(EngineError):
    status = 400
    code = "bad_request"


class NotFound(EngineError):
    status = 404
    code = "not_found"


class Conflict(EngineError):
    status = 409
    code = "conflict"


class Gone(EngineError):
    """The resource existed and was removed on purpose (an upload never verified in time)."""

    status = 410
    code = "gone"


class Unauthorized(EngineError):
    status = 401
    code = "unauthorized"


class Forbidden(EngineError):
    status = 403
    code = "forbidden"


class StorageUnavailable(EngineError):
    status = 503
    code = "storage_unavailable"


class ConnectorError(EngineError):
    """A provider call failed; subclasses say whether retrying can help."""

    status = 502
    code = "provider_error"
    retryable = False


class AuthFailed(ConnectorError):
    """The provider refused the credentials: not retried, the connection goes to `error`."""

    status = 400
    code = "provider_auth_failed"


class PermissionMissing(ConnectorError):
    """The credentials lack a permission: the affected scope reports `error`, the rest stands."""

    status = 400
    code = "provider_permission_missing"


class RateLimited(ConnectorError):
    code = "provider_rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class ProviderUnavailable(ConnectorError):
    code = "provider_unavailable"
    retryable = True
