"""The console's pages: each view parses the request, calls one engine function, renders.

Every page but sign-in needs a live console session (its cookie names a `console_session`
row); without one the browser is sent to the sign-in page. Every POST carries a CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import Session

from console.charts import trend_chart
from engine.as_of import account_controls_at, evidence_at
from engine.console_sessions import (
    StartedSession,
    end_session,
    redeem_login_link,
    resume_session,
)
from engine.dashboard import (
    ControlFilters,
    check_resources,
    control_board,
    overview,
    resource_history,
    sync_history,
)
from engine.db import unit_of_work
from engine.errors import EngineError, InvalidInput, NotFound, Unauthorized
from engine.frameworks import catalog
from engine.models import ControlStatus
from engine.settings import Settings
from engine.tenancy import scope_to_account

COOKIE = "evidence_console"
PUBLIC_ENDPOINTS = {"console.sign_in", "console.sign_in_with_link", "console.sign_in_with_idp",
                    "console.oidc_callback", "console.static"}
MAX_TOKEN = 200
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # Flask-WTF checks it on https POSTs
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
}

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static")
csrf = CSRFProtect()


def _settings() -> Settings:
    value: Settings = current_app.config["SETTINGS"]
    return value


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def account_session() -> Iterator[Session]:
    """The request's unit of work, scoped to the signed-in account (engine.tenancy)."""
    with unit_of_work(_settings()) as session:
        yield scope_to_account(session, g.account_id)


@bp.before_request
def require_session() -> ResponseReturnValue | None:
    """CSRF on every state-changing request, then a live session on every page but sign-in."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or len(cookie) > MAX_TOKEN:
        return redirect(url_for("console.sign_in"))
    try:
        with unit_of_work(_settings()) as session:
            g.account_id = resume_session(session, _settings(), cookie, _now())
    except Unauthorized as exc:
        answer = redirect(url_for("console.sign_in", reason=exc.code))
        answer.delete_cookie(COOKIE, path="/console")
        return answer
    return None


@bp.after_request
def harden(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(f"console/{template}", now=_now(), account_id=g.get("account_id"),
                           oidc=_settings().oidc_enabled, **context), status


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError) -> ResponseReturnValue:
    return _page("error.html", 400, title="This form could not be sent",
                 message="The form was missing its security token or it has expired. "
                         "Go back, reload the page and try again.")


@bp.errorhandler(EngineError)
def engine_refused(exc: EngineError) -> ResponseReturnValue:
    if isinstance(exc, NotFound):
        return _page("error.html", 404, title="Page not found",
                     message="There is nothing here, or it belongs to another account.")
    return _page("error.html", exc.status, title="Something is not right",
                 message=exc.message)


REASONS = {
    "session_expired": "Your session has expired. Sign in again to continue.",
    "session_ended": "You have signed out.",
    "no_session": "Sign in to continue.",
}


@bp.get("/login")
def sign_in() -> ResponseReturnValue:
    """The page a login link opens: its script posts the link's token (from the URL fragment,
    which no server sees) with the page's CSRF token."""
    return _page("login.html", notice=REASONS.get(request.args.get("reason", "")))


@bp.post("/login")
def sign_in_with_link() -> ResponseReturnValue:
    token = request.form.get("token", "")
    if not token or len(token) > MAX_TOKEN:
        return _page("login.html", 401, error="This page needs the sign-in link you were "
                                              "given. Ask for a new one.")
    try:
        with unit_of_work(_settings()) as session:
            started = redeem_login_link(session, _settings(), token, _now())
    except Unauthorized as exc:
        return _page("login.html", 401, error=exc.message)
    return signed_in(started)


def signed_in(started: StartedSession) -> ResponseReturnValue:
    """To the overview, with the new session's cookie (however the person signed in)."""
    answer = make_response(redirect(url_for("console.home"), code=303))
    answer.set_cookie(COOKIE, started.cookie, path="/console", httponly=True, samesite="Lax",
                      secure=_settings().public_base_url.lower().startswith("https://"),
                      max_age=_settings().console_session_seconds)
    return answer


@bp.post("/logout")
def sign_out() -> ResponseReturnValue:
    with unit_of_work(_settings()) as session:
        end_session(session, request.cookies.get(COOKIE, ""), _now())
    answer = redirect(url_for("console.sign_in", reason="session_ended"), code=303)
    answer.delete_cookie(COOKIE, path="/console")
    return answer


@bp.get("/")
@bp.get("")
def home() -> ResponseReturnValue:
    """The overview: frameworks with their controls and trend, and every connection."""
    with account_session() as session:
        found = overview(session, _now())
    charts = {fw.id: trend_chart(fw.name, fw.trend) for fw in found.frameworks}
    return _page("overview.html", overview=found, charts=charts)


def _choice(name: str, allowed: set[str]) -> str | None:
    value = request.args.get(name, "")
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(f"There is no {name} called {value[:60]!r}. Pick one from the list.")
    return value


def as_of_param(value: str, now: datetime) -> tuple[datetime | None, str | None]:
    """`?as_of=` as a date (00:00 UTC) or an ISO time (UTC unless it says otherwise), with the
    message to show beside the field when it is not one or lies in the future."""
    value = value.strip()
    try:
        if len(value) > 40:
            raise ValueError(value)
        if len(value) == 10:
            at = datetime.combine(date.fromisoformat(value), time(), UTC)
        else:
            at = datetime.fromisoformat(value.replace("z", "Z"))
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (ValueError, OverflowError):
        return None, ("Enter a date like 2026-03-01, or a time like 2026-03-01T14:30 "
                      "(UTC unless it names a zone).")
    if at > now:
        return None, "That is in the future: pick today or a day before it."
    return at, None


@bp.get("/controls")
def controls() -> ResponseReturnValue:
    """Controls with their status, checks and failing resources; filters stay in the URL.
    With `?as_of=` the controls as they stood then (engine.as_of), from the record."""
    as_of_error = None
    if request.args.get("as_of", "").strip():  # an empty field: as things are now
        at, as_of_error = as_of_param(request.args["as_of"], _now())
        if at is not None:
            framework = _choice("framework", set(catalog().frameworks))
            with account_session() as session:
                then = account_controls_at(session, at, framework_id=framework)
            return _page("controls.html", then=then, board=None, statuses=list(ControlStatus),
                         as_of=request.args["as_of"].strip(),
                         frameworks={f.id: f.name for f in catalog().frameworks.values()},
                         selected_framework=framework,
                         resource_url=url_for("console.resource",
                                              evidence_id=0).removesuffix("0"))
    status = _choice("status", {s.value for s in ControlStatus})
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= 10_000:
        raise InvalidInput("page is a page number, 1 or more")
    filters = ControlFilters(framework=request.args.get("framework") or None,
                             status=ControlStatus(status) if status else None,
                             integration=request.args.get("integration") or None,
                             page=int(page))
    with account_session() as session:
        board = control_board(session, filters)
    return _page("controls.html", 422 if as_of_error else 200, board=board,
                 statuses=list(ControlStatus), then=None, as_of_error=as_of_error,
                 as_of=request.args.get("as_of", "")[:40], board_names=board.names,
                 resource_url=url_for("console.resource", evidence_id=0).removesuffix("0"),
                 check_url=url_for("console.check", check_id="-").removesuffix("-"))


@bp.get("/checks/<check_id>")
def check(check_id: str) -> ResponseReturnValue:
    """Every failing resource of one check (the controls board lists the first few)."""
    offset = request.args.get("offset", "0")
    if not offset.isdigit() or len(offset) > 7:
        raise InvalidInput("offset is a whole number of resources to skip")
    with account_session() as session:
        found = check_resources(session, check_id[:200], offset=int(offset))
    return _page("check.html", found=found)


@bp.get("/resources/<int:evidence_id>")
def resource(evidence_id: int) -> ResponseReturnValue:
    """A resource's verdict now and its change history, with each version's SHA-256; with
    `?as_of=` also the version in force then (engine.as_of.evidence_at)."""
    at, as_of_error = (as_of_param(request.args["as_of"], _now())
                       if request.args.get("as_of", "").strip() else (None, None))
    then = None
    with account_session() as session:
        found = resource_history(session, evidence_id)
        if at is not None:
            e = found.evidence
            then = evidence_at(session, g.account_id, [e.connection_id], at, limit=1,
                               check_id=e.check_id, resource_id=e.resource_id).items
    return _page("resource.html", 422 if as_of_error else 200, found=found, at=at,
                 then=then[0] if then else None, as_of_error=as_of_error)


@bp.get("/runs")
def runs() -> ResponseReturnValue:
    """Sync history: status, duration, counts, and what went wrong in words."""
    with account_session() as session:
        found = sync_history(session)
    return _page("runs.html", runs=found)


@bp.get("/<path:unknown>")
def not_found(unknown: str) -> ResponseReturnValue:
    """Any other console address: the console's own not-found page, not the API's JSON."""
    raise NotFound(f"no console page at /console/{unknown[:100]}")
