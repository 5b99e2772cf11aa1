"""The console's Integrations pages: the catalog, connect forms, sync now with live progress,
and disconnect. Each view parses the request, calls the engine function the JSON API calls for
the same act (engine.connections.connect, engine.integrations.sync_integration, oauth,
disconnect), and renders; the rules (endpoint gate, credentials and config validation,
tenancy) come with those functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from connectors.base import Category, Connector
from console.connect_form import (
    ConnectForm,
    Section,
    blank_form,
    oauth_fields,
    read_form,
    with_errors,
)
from console.views import SECURITY_HEADERS, _now, _settings, account_session, bp
from console.words import STATUS_ICONS, STATUS_TONES, STATUS_WORDS, ago, ahead, plural
from engine import integrations as engine
from engine import oauth
from engine.connections import connect, disconnect
from engine.errors import ConnectorError, EngineError, InvalidInput, NotFound
from engine.models import Connection, ConnectionStatus, Frequency, SyncRun
from engine.registry import get_connector

CATEGORY_WORDS = {
    "cloud": "Cloud", "identity": "Identity", "devops": "DevOps", "hr": "HR",
    "communication": "Communication", "monitoring": "Monitoring",
}
FREQUENCY_WORDS = {"hourly": "Every hour", "daily": "Every day", "weekly": "Every week"}


@dataclass(frozen=True)
class CatalogRow:
    id: str
    name: str
    category: str
    description: str
    status: str | None
    """None: not connected."""
    message: str | None
    last_sync_at: datetime | None
    evidence_count: int
    oauth: bool


def _csp(extra_form_action: str = "") -> dict[str, str]:
    """The console's policy, letting the page's script poll its own origin (and, for the OAuth
    button, the form post end at the provider)."""
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "default-src 'none';", "default-src 'none'; connect-src 'self';")
    if extra_form_action:
        policy = policy.replace("form-action 'self'", f"form-action 'self' {extra_form_action}")
    return {"Content-Security-Policy": policy}


def _html(template: str, status: int = 200, headers: Mapping[str, str] | None = None,
          **context: Any) -> ResponseReturnValue:
    return (render_template(f"console/integrations/{template}", now=_now(),
                            account_id=g.get("account_id"), **context),
            status, dict(headers or {}))


def _category() -> Category | None:
    value = request.args.get("category", "")
    if not value:
        return None
    if value not in CATEGORY_WORDS:
        raise InvalidInput(f"There is no category called {value[:60]!r}. Pick one from the list.")
    return Category(value)


def _oauth_ready(cls: type[Connector]) -> bool:
    return cls.oauth is not None and cls.id in _settings().oauth_clients


@bp.get("/integrations")
def integrations() -> ResponseReturnValue:
    """Every integration with this account's connection; the category filter stays in the URL."""
    category = _category()
    with account_session() as session:
        rows = [CatalogRow(e.connector.id, e.connector.name, str(e.connector.category),
                           e.connector.description,
                           str(e.connection.status) if e.connection else None,
                           e.connection.status_message if e.connection else None,
                           e.connection.last_sync_at if e.connection else None,
                           e.evidence_count, _oauth_ready(e.connector))
                for e in engine.list_integrations(session, category)]
    landed = request.args.get("integration")  # the OAuth callback lands here
    notice = next((r for r in rows if r.id == landed), None) if landed else None
    gone = request.args.get("disconnected")
    disconnected = next((r for r in rows if r.id == gone), None) if gone else None
    return _html("catalog.html", rows=rows, category=category, categories=CATEGORY_WORDS,
                 notice=notice, disconnected=disconnected)


def _run_words(run: SyncRun | None, cls: type[Connector]) -> dict[str, Any] | None:
    """A run as the page says it: status in words, evidence count, what went wrong."""
    if run is None:
        return None
    status = str(run.status)
    titles = {c.id: c.title for c in cls.checks}
    errors = [(f"{titles.get(str(e.get('check')), e.get('check'))}: " if e.get("check") else "")
              + str(e.get("message") or "no details were recorded")
              for e in run.errors if isinstance(e, dict)]
    evidence = plural(run.evidence_count, "resource result")
    summary = {
        "queued": "Sync queued: waiting for a worker to pick it up.",
        "running": "Sync running: collecting evidence from the provider.",
        "succeeded": f"Sync succeeded: {evidence} collected"
                     + (f", {run.changed_count} changed." if run.changed_count else "."),
        "partial": f"Sync partly succeeded: {evidence} collected; "
                   f"{plural(len(errors), 'problem')} below.",
        "failed": "Sync failed: " + (errors[0] if errors else "no details were recorded."),
        "cancelled": "Sync cancelled.",
    }.get(status, status)
    return {"id": run.id, "status": status, "words": STATUS_WORDS.get(status, status),
            "icon": STATUS_ICONS.get(status, "•"), "tone": STATUS_TONES.get(status, "quiet"),
            "finished": run.status.is_finished, "evidence": run.evidence_count,
            "summary": summary, "errors": errors}


def _connection_words(conn: Connection) -> dict[str, Any]:
    status = str(conn.status)
    message = {
        "active": "Connected: the provider accepted the credentials.",
        "pending": "Verifying the credentials with the provider…",
        "error": f"The connection has a problem: {conn.status_message or 'no details'}.",
        "disconnected": "Not connected.",
    }.get(status, status)
    now = _now()
    return {"status": status, "words": STATUS_WORDS.get(status, status),
            "icon": STATUS_ICONS.get(status, "•"), "tone": STATUS_TONES.get(status, "quiet"),
            "message": message, "settled": conn.status != ConnectionStatus.PENDING,
            "last_sync": ago(conn.last_sync_at, now), "next_sync": ahead(conn.next_sync_at, now)}


def _state(integration_id: str) -> tuple[type[Connector], dict[str, Any] | None,
                                          dict[str, Any] | None, Connection | None]:
    cls = get_connector(integration_id)
    with account_session() as session:
        try:
            found = engine.connection_status(session, integration_id, 1)
        except NotFound:
            return cls, None, None, None
        conn = found.connection
        if conn.status == ConnectionStatus.DISCONNECTED:
            return cls, None, None, None
        run = found.history[0] if found.history else None
        return cls, _connection_words(conn), _run_words(run, cls), conn


@bp.get("/integrations/<integration_id>")
def integration(integration_id: str) -> ResponseReturnValue:
    """One integration: its connection, the latest sync (updated live), sync now, disconnect."""
    cls, connection, run, conn = _state(integration_id)
    return _html("detail.html", 200, _csp(), cls=cls, connection=connection, run=run,
                 conn=conn, category_words=CATEGORY_WORDS, frequency_words=FREQUENCY_WORDS,
                 connected=request.args.get("done") == "connected")


@bp.get("/integrations/<integration_id>/progress")
def progress(integration_id: str) -> ResponseReturnValue:
    """The connection and its latest run as JSON, for the page's poller (same session and
    tenancy as the pages; 404 when this account has no such connection)."""
    cls, connection, run, _ = _state(integration_id)
    if connection is None:
        raise NotFound(f"{cls.name} is not connected")
    return jsonify(connection=connection, run=run)


@bp.post("/integrations/<integration_id>/sync")
def sync_now(integration_id: str) -> ResponseReturnValue:
    """Queue a manual sync (or find the one already queued or running)."""
    wants_json = request.accept_mimetypes.best_match(
        ["text/html", "application/json"]) == "application/json"
    try:
        with account_session() as session:
            engine.sync_integration(session, integration_id)
    except EngineError as exc:
        if not wants_json:
            raise
        return jsonify(error=exc.message, code=exc.code), exc.status
    if wants_json:
        return progress(integration_id)
    return redirect(url_for("console.integration", integration_id=integration_id), code=303)


def _connect_page(cls: type[Connector], form: ConnectForm, oauth_form: ConnectForm,
                  status: int = 200) -> ResponseReturnValue:
    ready = _oauth_ready(cls)
    extra = ""
    if ready:
        app = oauth.oauth_app(cls.id, _settings())
        parts = urlsplit(app.authorize_url)
        extra = f"{parts.scheme}://{parts.netloc}"
    return _html("connect.html", status, _csp(extra), cls=cls, form=form,
                 oauth_form=oauth_form, oauth_ready=ready, frequencies=FREQUENCY_WORDS,
                 category_words=CATEGORY_WORDS)


@bp.get("/integrations/<integration_id>/connect")
def connect_form(integration_id: str) -> ResponseReturnValue:
    """The connect form, generated from the connector's credentials and config models."""
    cls = get_connector(integration_id)
    return _connect_page(cls, blank_form(cls), ConnectForm(oauth_fields(cls)))


def _refusal(exc: EngineError | ConnectorError) -> tuple[str, list[Mapping[str, Any]]]:
    return exc.code, list(exc.details.get("fields") or [])


@bp.post("/integrations/<integration_id>/connect")
def connect_submit(integration_id: str) -> ResponseReturnValue:
    """Connect with the submitted credentials through engine.connections.connect; a refusal
    shows each message beside its field and writes nothing (the unit of work rolls back)."""
    cls = get_connector(integration_id)
    form, raw = read_form(blank_form(cls), request.form)
    oauth_form = ConnectForm(oauth_fields(cls))
    if form.frequency not in FREQUENCY_WORDS:
        return _connect_page(cls, with_errors(form, "credentials", [], "Pick how often to sync "
                                              "from the list."), oauth_form, 422)
    try:
        with account_session() as session:
            connect(session, integration_id=cls.id, credentials=raw["credentials"],
                    frequency=Frequency(form.frequency), settings=_settings(),
                    config=raw["config"] or None)
    except (EngineError, ConnectorError) as exc:
        if isinstance(exc, NotFound):
            raise
        code, fields = _refusal(exc)
        section: Section = "config" if code == "invalid_config" else "credentials"
        status = exc.status if isinstance(exc, EngineError) else 422
        return _connect_page(cls, with_errors(form, section, fields, exc.message), oauth_form,
                             status)
    return redirect(url_for("console.integration", integration_id=cls.id, done="connected"),
                    code=303)


@bp.post("/integrations/<integration_id>/oauth")
def oauth_start(integration_id: str) -> ResponseReturnValue:
    """Start the provider's OAuth flow, as GET /api/v1/integrations/<id>/oauth-url does; the
    callback then sends the browser back to the integrations page."""
    cls = get_connector(integration_id)
    oauth_form, raw = read_form(ConnectForm(oauth_fields(cls)), request.form)
    frequency = oauth_form.frequency if oauth_form.frequency in FREQUENCY_WORDS else "daily"
    try:
        with account_session() as session:
            issued = oauth.authorization_url(session, cls.id, Frequency(frequency), _settings(),
                                             params=raw["oauth"])
    except InvalidInput as exc:
        _, fields = _refusal(exc)
        return _connect_page(cls, blank_form(cls),
                             with_errors(oauth_form, "oauth", fields, exc.message), 422)
    return redirect(issued.url, code=303)


@bp.get("/integrations/<integration_id>/disconnect")
def disconnect_confirm(integration_id: str) -> ResponseReturnValue:
    """Ask before disconnecting: what goes (credentials, queued syncs) and what stays."""
    cls, connection, _, _ = _state(integration_id)
    if connection is None:
        raise NotFound(f"{cls.name} is not connected")
    return _html("disconnect.html", cls=cls)


@bp.post("/integrations/<integration_id>/disconnect")
def disconnect_submit(integration_id: str) -> ResponseReturnValue:
    """Disconnect as DELETE /api/v1/integrations/<id>/disconnect does: credentials removed,
    queued runs cancelled, evidence kept as history, OAuth tokens revoked at the provider."""
    cls = get_connector(integration_id)
    with account_session() as session:
        done = disconnect(session, integration_id, datetime.now(UTC), _settings())
    if done.credentials:
        oauth.revoke(integration_id, done.credentials, _settings())
    return redirect(url_for("console.integrations", disconnected=cls.id), code=303)
