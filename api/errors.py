"""One JSON error shape for every failure: `{"success": false, "error": {code, message}}`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask.typing import ResponseReturnValue
from flask_openapi3 import OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.schemas.common import ErrorBody
from engine.errors import ConnectorError, EngineError, http_status

log = logging.getLogger(__name__)


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
    @app.errorhandler(ConnectorError)
    def engine_error(exc: EngineError | ConnectorError) -> ResponseReturnValue:
        return jsonify(error_body(exc.code, exc.message, **exc.details)), http_status(exc)

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError) -> ResponseReturnValue:
        return validation_error_response(exc)

    @app.errorhandler(RequestEntityTooLarge)
    def body_too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return jsonify(error_body("body_too_large", f"the request body is over {limit} bytes "
                                  "(EVIDENCE_MAX_BODY_BYTES)", max_bytes=limit)), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if exc.response is not None:  # flask-openapi3's validation answer, already JSON
            return exc.response
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() == "allow"]
        return (jsonify(error_body(code, exc.description or exc.name or "error")),
                exc.code or 500, headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        return jsonify(error_body("internal_error", "the server failed; see its log")), 500


def document_errors(app: OpenAPI) -> None:
    """Make the generated document say what validation failures really answer: an ErrorBody.

    flask-openapi3 documents a 422 it adds itself as an array of its own model; every 422 of
    this API is one ErrorBody (see `validation_error_response`). The document is still built
    lazily, on its first request.
    """
    generate = app.generate_spec_json

    def generate_and_fix() -> None:
        generate()
        _document_422(app.spec_json)

    setattr(app, "generate_spec_json", generate_and_fix)  # noqa: B010 - instance override


def _document_422(doc: dict[str, Any]) -> None:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in error_schema.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.setdefault("ErrorBody", error_schema)
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            content = response.setdefault("content", {}).setdefault("application/json", {})
            if content.get("schema", {}).get("type") == "array":
                content["schema"] = ref
    schemas.pop("ValidationErrorModel", None)
