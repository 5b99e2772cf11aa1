"""The engine's error hierarchy; each error maps once to an HTTP status and a stable code.

The connector SDK's errors (connectors/errors.py) are not engine errors: `SDK_STATUS` maps each
to the status it answers with, so `http_status` covers both."""

from __future__ import annotations

from typing import Any

from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidFields,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
)

__all__ = [
    "SDK_STATUS",
    "AuthFailed",
    "BadRequest",
    "Conflict",
    "ConnectorError",
    "EngineError",
    "Forbidden",
    "Gone",
    "InvalidFields",
    "InvalidInput",
    "NotFound",
    "PermissionMissing",
    "ProviderUnavailable",
    "RateLimited",
    "StorageUnavailable",
    "Unauthorized",
    "http_status",
]


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


# --- the connector SDK's errors, as the API answers them -------------------------------------

SDK_STATUS: dict[type[ConnectorError], int] = {
    ConnectorError: 502,
    InvalidFields: 422,
    AuthFailed: 400,
    PermissionMissing: 400,
    RateLimited: 502,
    ProviderUnavailable: 502,
}
"""The HTTP status of each SDK error (connectors/errors.py); its stable `code` is the error's
own. A connector's subclass answers as its nearest listed ancestor."""


def http_status(exc: EngineError | ConnectorError) -> int:
    """The HTTP status an error answers with: an engine error's own, an SDK error's mapped."""
    if isinstance(exc, EngineError):
        return exc.status
    return next(SDK_STATUS[cls] for cls in type(exc).__mro__ if cls in SDK_STATUS)
