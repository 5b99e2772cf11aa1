"""One JSON error shape for every failure: `{"success": false, "error": {code, message}}`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from engine.errors import EngineError

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """Every error the API answers: a stable `code` and a message a person can act on."""

    success: bool = False
    error: ErrorDetail


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, **details}}


def fields_of(exc: ValidationError) -> list[dict[str, str]]:
    """The failing fields of a request, never the values sent (they may be secrets)."""
    return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)]


def validation_error_response(exc: ValidationError) -> Response:
    fields = fields_of(exc)
    message = "invalid request: " + ", ".join(f"{f['field']} ({f['message']})" for f in fields)
    response = jsonify(error_body("invalid_request", message, fields=fields))
    response.status_code = 422
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(EngineError)
    def engine_error(exc: EngineError) -> ResponseReturnValue:
        return jsonify(error_body(exc.code, exc.message, **exc.details)), exc.status

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError) -> ResponseReturnValue:
        return validation_error_response(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify(error_body(code, exc.description or exc.name or "error")), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify(error_body("internal_error", "the server failed; see its log")), 500
