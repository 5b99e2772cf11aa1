"""The HTTP API: a thin Flask app (flask-openapi3) that parses requests and calls the engine.

The OpenAPI 3.1 document is generated from the pydantic models declared on each route and is
served at /openapi.json, with a browsable page at /docs.
"""

from __future__ import annotations

from typing import Any

from flask import redirect
from flask_openapi3 import Info, OpenAPI
from flask_openapi3.models import SecurityScheme

from api.apikeys import bp as apikeys_bp
from api.auditor import bp as auditor_bp
from api.audits import bp as audits_bp
from api.bounds import bound_requests
from api.custom_integrations import bp as custom_integrations_bp
from api.errors import (
    ErrorBody,
    document_errors,
    register_error_handlers,
    validation_error_response,
)
from api.integrations import bp as integrations_bp
from api.integrations import callback_bp as oauth_callback_bp
from api.ledger import bp as ledger_bp
from api.ledger import public_bp as ledger_public_bp
from api.limits import register_limits
from api.metrics import QueueDepth, register_metrics
from api.push import bp as push_bp
from console import register_console
from engine.db import JobSender, set_job_sender
from engine.readiness import check_readiness
from engine.settings import Settings, get_settings

BEARER: dict[str, SecurityScheme | dict[str, Any]] = {
    "bearer": SecurityScheme(type="http", scheme="bearer", bearerFormat="JWT")}


def readyz(settings: Settings) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Readiness: 200 when the database, the broker and the migrations are all right, else 503
    naming the failing check (`/healthz` is liveness and depends on nothing)."""
    found = check_readiness(settings)
    body = {"status": "ready" if found.is_ready else "unavailable", "checks": found.checks}
    return body, 200 if found.is_ready else 503, {"Cache-Control": "no-store"}


def create_app(settings: Settings | None = None, *, send_job: JobSender | None = None,
               queue_depth: QueueDepth | None = None) -> OpenAPI:
    """Build the app for `settings` (default: the environment).

    `send_job` is how the jobs its requests enqueue leave the process (installed as the
    engine's job sender; None leaves the one installed as it is) and `queue_depth` reads the
    broker's queues for /metrics: the API knows no task queue, its wiring (`cli.wiring`) does.
    """
    settings = settings or get_settings()
    app = OpenAPI(
        "evidence_engine",
        info=Info(title="evidence-engine API", version="1.0.0",
                  description="Collect compliance evidence from connected providers."),
        security_schemes=BEARER,
        responses={401: ErrorBody, 422: ErrorBody, 429: ErrorBody},
        doc_prefix="/docs", doc_url="/openapi.json",
        validation_error_callback=validation_error_response,
        validate_response=False,
    )
    app.config["SETTINGS"] = settings
    bound_requests(app, settings)  # body size and JSON depth, on every route
    if send_job is not None:
        set_job_sender(send_job)
    register_error_handlers(app)
    app.register_api(integrations_bp)
    app.register_api(oauth_callback_bp)
    app.register_api(custom_integrations_bp)
    app.register_api(apikeys_bp)
    app.register_api(push_bp)
    app.register_api(audits_bp)
    app.register_api(auditor_bp)
    app.register_api(ledger_public_bp)
    app.register_api(ledger_bp)

    app.add_url_rule("/openapi.json", "openapi_document", lambda: app.api_doc)
    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    app.add_url_rule("/readyz", "readyz", lambda: readyz(settings))
    app.add_url_rule("/docs", "docs_page", lambda: redirect("/docs/swagger"))
    register_metrics(app, settings, queue_depth)  # GET /metrics, not in the OpenAPI doc
    # the web console under /console and the auditor portal under /auditor, where the magic
    # link of an invitation mail lands ({base}/auditor/accept#token=…): HTML, CSRF, cookies
    register_console(app, settings)
    register_limits(app, settings)  # per-account rate limits (429) and rationed waits

    document_errors(app)
    return app
