"""The auditor portal (`/auditor`): the one audit an invited auditor reviews, as pages.

The invitation mail's magic link opens `/auditor/accept#token=…`; the page's script posts the
fragment's token (which no server log sees) with a CSRF token, the engine accepts it exactly as
the API's accept-invitation does (`engine.audits.accept_invitation` opens an auditor session
row), and the auditor JWT naming that session becomes an HttpOnly cookie scoped to `/auditor`.
Every page checks it with the API's own check (`verify_auditor_token`: signature, audience and
the session row), so a customer withdrawing the auditor cuts the portal off on the next request,
and a complete audit leaves the session reading but no longer writing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session

from console import auditor_forms as forms
from console.views import SECURITY_HEADERS, csrf
from engine import audits
from engine.auditor_portal import end_auditor_session
from engine.auditor_tokens import AuditorPrincipal, verify_auditor_token
from engine.audits import Actor, FindingChanges
from engine.db import session_factory, unit_of_work
from engine.errors import Conflict, EngineError, InvalidInput, NotFound, Unauthorized
from engine.models.audit import (
    Audit,
    AuditorSession,
    AuditStatus,
    FindingSeverity,
    FindingStatus,
    Priority,
    ReviewStatus,
)
from engine.settings import Settings

COOKIE = "evidence_auditor"
PREFIX = "/auditor"
PUBLIC_ENDPOINTS = {"auditor_portal.accept_page", "auditor_portal.accept"}
MAX_TOKEN, MAX_COOKIE = 200, 4000

AUDIT_STATUS = {"draft": "Draft", "in_progress": "In progress",
                "evidence_review": "Evidence review", "findings": "Findings",
                "complete": "Complete"}
REVIEW_WORDS = {"pending": "Not reviewed yet", "passed": "Passed", "failed": "Failed",
                "needs_evidence": "Needs evidence"}
REVIEW_ICONS = {"pending": "○", "passed": "✓", "failed": "✗", "needs_evidence": "?"}
REVIEW_TONES = {"passed": "good", "failed": "bad", "needs_evidence": "warn"}
SEVERITY = {"critical": "Critical", "major": "Major", "minor": "Minor",
            "observation": "Observation"}
FINDING_STATUS = {"open": "Open", "in_progress": "In progress", "resolved": "Resolved",
                  "accepted": "Accepted"}
PRIORITY = {"low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
DONE = {"review": "Your review is saved.", "request": "Your evidence request was sent to the "
        "customer.", "finding": "The finding is filed.", "finding_updated": "The finding is "
        "updated.", "complete": "The audit is complete. It stays readable; nothing more can "
        "be changed."}
REFUSALS: dict[str, tuple[int, str, str]] = {
    "session_revoked": (403, "Your access was withdrawn",
                        "The customer has withdrawn your access to this audit, so this portal "
                        "shows nothing more. If you think this is a mistake, ask them for a new "
                        "invitation."),
    "token_expired": (401, "Your auditor session has expired",
                      "Ask the customer for a new invitation; its link opens the portal again."),
    "no_session": (401, "Open the link from your invitation mail",
                   "This portal is for auditors invited to an audit. Open the link in your "
                   "invitation mail to sign in; a customer signs in to the console instead."),
}

bp = Blueprint("auditor_portal", __name__, url_prefix=PREFIX, template_folder="templates")


class SurfaceSessions(SecureCookieSessionInterface):
    """Flask's signed cookie (it carries only the CSRF secret) once per surface: the console's
    under /console, the portal's under /auditor, so neither page ever sees the other's."""

    def _auditor(self) -> bool:
        return has_request_context() and (request.path == PREFIX
                                          or request.path.startswith(PREFIX + "/"))

    def get_cookie_name(self, app: Flask) -> str:
        return "evidence_auditor_csrf" if self._auditor() else super().get_cookie_name(app)

    def get_cookie_path(self, app: Flask) -> str:
        return PREFIX if self._auditor() else super().get_cookie_path(app)


def register_auditor_portal(app: Flask) -> None:
    app.session_interface = SurfaceSessions()
    app.jinja_env.globals.update(_words())
    app.register_blueprint(bp)


def _settings() -> Settings:
    value: Settings = current_app.config["SETTINGS"]
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _secure() -> bool:
    return _settings().public_base_url.lower().startswith("https://")


def _auditor() -> AuditorPrincipal:
    value: AuditorPrincipal = g.auditor
    return value


def _actor() -> Actor:
    return Actor.auditor(_auditor())


def _words() -> dict[str, Any]:
    """The portal's words, as template globals (its macros read them too)."""
    return {"AUDIT_STATUS": AUDIT_STATUS, "REVIEW_WORDS": REVIEW_WORDS,
            "REVIEW_ICONS": REVIEW_ICONS, "REVIEW_TONES": REVIEW_TONES, "SEVERITY": SEVERITY,
            "FINDING_STATUS": FINDING_STATUS, "PRIORITY": PRIORITY,
            "REVIEW_CHOICES": [s for s in ReviewStatus if s is not ReviewStatus.PENDING],
            "SEVERITIES": list(FindingSeverity), "FINDING_STATUSES": list(FindingStatus),
            "PRIORITIES": list(Priority)}


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(f"console/auditor/{template}", now=_now(),
                           auditor=g.get("auditor"), **context), status


def _refused(code: str) -> ResponseReturnValue:
    status, title, message = REFUSALS.get(code, REFUSALS["no_session"])
    answer = make_response(_page("refused.html", status, title=title, message=message,
                                 code=code))
    answer.delete_cookie(COOKIE, path=PREFIX)
    return answer


@bp.before_request
def require_auditor() -> ResponseReturnValue | None:
    """CSRF on every state-changing request, then a live auditor session on every page but
    the magic link's: the same check as the API's, on the session row."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    cookie = request.cookies.get(COOKIE, "")
    if not cookie or len(cookie) > MAX_COOKIE:
        return _refused("no_session")
    try:
        with session_factory(_settings())() as session:
            g.auditor = verify_auditor_token(_settings(), session, cookie, _now())
    except Unauthorized as exc:
        return _refused(exc.code if exc.code in REFUSALS else "no_session")
    return None


@bp.after_request
def harden(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError) -> ResponseReturnValue:
    return _page("message.html", 400, title="This form could not be sent",
                 message="The form was missing its security token or it has expired. Go back, "
                         "reload the page and try again. Nothing was changed.")


@bp.errorhandler(EngineError)
def engine_refused(exc: EngineError) -> ResponseReturnValue:
    if isinstance(exc, NotFound):
        return _page("message.html", 404, title="Page not found",
                     message="There is nothing here in this audit.")
    if isinstance(exc, Unauthorized):
        return _refused(exc.code)
    if exc.code == "audit_read_only":
        return _page("message.html", 409, title="This audit is complete",
                     message="The audit is complete and read-only: you can read it, but "
                             "nothing can be changed any more.")
    return _page("message.html", exc.status, title="This could not be done",
                 message=exc.message)


# --- the magic link ------------------------------------------------------------------------

@bp.get("/accept")
def accept_page() -> ResponseReturnValue:
    """The page the invitation's link opens; its script posts the fragment's token."""
    return _page("accept.html")


@bp.post("/accept")
def accept() -> ResponseReturnValue:
    token = request.form.get("token", "")
    if not token or len(token) > MAX_TOKEN:
        return _page("accept.html", 401, error="This page needs the link from your invitation "
                                               "mail. Open that link again.")
    try:
        with unit_of_work(_settings()) as session:
            accepted = audits.accept_invitation(session, _settings(), token, _now())
            issued = accepted.token
    except Unauthorized as exc:
        return _page("accept.html", 401, error=exc.message[:1].upper() + exc.message[1:] + ".")
    answer = make_response(redirect(url_for("auditor_portal.home"), code=303))
    answer.set_cookie(COOKIE, issued.token, path=PREFIX, httponly=True, samesite="Lax",
                      secure=_secure(),
                      max_age=max(0, int((issued.expires_at - _now()).total_seconds())))
    return answer


@bp.post("/signout")
def sign_out() -> ResponseReturnValue:
    """End this auditor session server-side, then forget its cookie."""
    with unit_of_work(_settings()) as session:
        end_auditor_session(session, _auditor().session_id, _now())
    g.pop("auditor")
    answer = make_response(_page("message.html", title="You have signed out",
                                 message="Open the link from your invitation mail again to "
                                         "return; a used link asks for a new invitation."))
    answer.delete_cookie(COOKIE, path=PREFIX)
    return answer


# --- reading -------------------------------------------------------------------------------

@contextmanager
def _reading() -> Iterator[tuple[Session, Audit, bool]]:
    """The request's unit of work, the auditor's one audit, and whether it may still write."""
    p = _auditor()
    with unit_of_work(_settings()) as session:
        audit = audits.get_audit(session, p.account_id, p.audit_id)
        row = session.get_one(AuditorSession, p.session_id)
        yield session, audit, row.writes_ended_at is None and not audit.status.is_read_only


@contextmanager
def _changing() -> Iterator[tuple[Session, Audit]]:
    """The audit locked, for a session that may still write (as the API's auditor changes)."""
    p = _auditor()
    with unit_of_work(_settings()) as session:
        audit = audits.get_audit(session, p.account_id, p.audit_id, for_update=True)
        audits.require_session_writable(session, p)
        yield session, audit


@bp.get("/")
@bp.get("")
def home() -> ResponseReturnValue:
    """The audit with its progress, and every control of its framework."""
    with _reading() as (session, audit, writable):
        progress = audits.progress_of(session, [audit])[audit.id]
        controls = audits.controls_overview(session, audit)
        recent = audits.activity(session, audit, limit=audits.RECENT_ACTIVITY, newest_first=True)
        return _page("home.html", audit=audit, framework=audits.framework(audit.framework_id),
                     progress=progress, controls=controls, writable=writable, recent=recent,
                     done=DONE.get(request.args.get("done", "")))


def _control_page(control_id: str, status: int = 200, **forms_: Any) -> ResponseReturnValue:
    with _reading() as (session, audit, writable):
        found = audits.control_evidence(session, audit, control_id)
        return _page("control.html", status, audit=audit, ev=found, writable=writable,
                     done=DONE.get(request.args.get("done", "")),
                     review_form=forms_.get("review_form"),
                     request_form=forms_.get("request_form"))


@bp.get("/controls/<control_id>")
def control(control_id: str) -> ResponseReturnValue:
    """One control: its evidence (frozen after evidence_review), the review and request forms."""
    return _control_page(control_id[:64])


@bp.post("/controls/<control_id>/review")
def review(control_id: str) -> ResponseReturnValue:
    form = forms.Form(request.form)
    verdict = forms.review(form)
    if verdict is None:
        return _control_page(control_id[:64], 422, review_form=form)
    with _changing() as (session, audit):
        row = audits.review_control(session, audit, _actor(), control_id[:64],
                                    status=verdict.status, notes=verdict.notes,
                                    evidence_sufficient=verdict.evidence_sufficient)
        key = row.control_id
    return redirect(url_for("auditor_portal.control", control_id=key, done="review"), code=303)


@bp.post("/controls/<control_id>/evidence-requests")
def request_evidence(control_id: str) -> ResponseReturnValue:
    form = forms.Form(request.form)
    ask = forms.evidence_ask(form)
    if ask is None:
        return _control_page(control_id[:64], 422, request_form=form)
    with _changing() as (session, audit):
        req = audits.request_evidence(session, audit, _actor(), control_ref=control_id[:64],
                                      description=ask.description, priority=ask.priority)
        key = req.control_id
    return redirect(url_for("auditor_portal.control", control_id=key, done="request"),
                    code=303)


def _findings_page(status: int = 200, **context: Any) -> ResponseReturnValue:
    with _reading() as (session, audit, writable):
        found = audits.findings(session, audit)
        controls = sorted(audits.framework(audit.framework_id).controls.values(),
                          key=lambda c: c.sort_key)
        return _page("findings.html", status, audit=audit, findings=found, controls=controls,
                     writable=writable, done=DONE.get(request.args.get("done", "")),
                     form=context.get("form"), preset=request.args.get("control", "")[:64])


@bp.get("/findings")
def findings() -> ResponseReturnValue:
    """The audit's findings and the form to file one."""
    return _findings_page()


@bp.post("/findings")
def file_finding() -> ResponseReturnValue:
    form = forms.Form(request.form)
    fields = forms.finding(form)
    if fields is None:
        return _findings_page(422, form=form)
    try:
        with _changing() as (session, audit):
            audits.create_finding(session, audit, _actor(), control_ref=fields.control_id,
                                  severity=fields.severity, title=fields.title,
                                  description=fields.description,
                                  remediation=fields.remediation)
    except InvalidInput as exc:
        form.errors["control_id"] = "Choose a control of this audit." if \
            exc.code == "unknown_control" else exc.message
        return _findings_page(422, form=form)
    return redirect(url_for("auditor_portal.findings", done="finding"), code=303)


def _finding_page(finding_id: str, status: int = 200,
                  form: forms.Form | None = None) -> ResponseReturnValue:
    with _reading() as (session, audit, writable):
        found = next((f for f in audits.findings(session, audit) if f.id == finding_id), None)
        if found is None:
            raise NotFound(f"no finding {finding_id} in this audit")
        controls = sorted(audits.framework(audit.framework_id).controls.values(),
                          key=lambda c: c.sort_key)
        return _page("finding.html", status, audit=audit, finding=found, controls=controls,
                     writable=writable, form=form)


@bp.get("/findings/<finding_id>")
def finding(finding_id: str) -> ResponseReturnValue:
    """One finding, with the form to change its status or details."""
    return _finding_page(finding_id[:64])


@bp.post("/findings/<finding_id>")
def update_finding(finding_id: str) -> ResponseReturnValue:
    form = forms.Form(request.form)
    fields = forms.finding(form, with_status=True)
    if fields is None or fields.status is None:
        return _finding_page(finding_id[:64], 422, form)
    changes = FindingChanges(status=fields.status, severity=fields.severity,
                             title=fields.title, description=fields.description,
                             remediation=fields.remediation, control_ref=fields.control_id)
    try:
        with _changing() as (session, audit):
            audits.update_finding(session, audit, _actor(), finding_id[:64], changes)
    except InvalidInput as exc:
        form.errors["control_id"] = "Choose a control of this audit." if \
            exc.code == "unknown_control" else exc.message
        return _finding_page(finding_id[:64], 422, form)
    return redirect(url_for("auditor_portal.findings", done="finding_updated"), code=303)


@bp.get("/complete")
def complete_page() -> ResponseReturnValue:
    """The confirmation before completing the audit."""
    with _reading() as (session, audit, writable):
        progress = audits.progress_of(session, [audit])[audit.id]
        return _page("complete.html", audit=audit, progress=progress, writable=writable,
                     can_complete=AuditStatus.COMPLETE in audit.status.next_statuses)


@bp.post("/complete")
def complete() -> ResponseReturnValue:
    if request.form.get("confirm") != "yes":
        with _reading() as (session, audit, writable):
            return _page("complete.html", 422, audit=audit, writable=writable,
                         progress=audits.progress_of(session, [audit])[audit.id],
                         can_complete=AuditStatus.COMPLETE in audit.status.next_statuses,
                         error="Tick the box to confirm that the audit is complete.")
    try:
        with _changing() as (session, audit):
            audits.complete_audit(session, audit, _actor())
    except Conflict as exc:
        if exc.code == "audit_read_only":
            raise
        return _page("message.html", 409, title="The audit cannot be completed yet",
                     message="An audit is completed from its Findings stage; the customer "
                             "moves it there once the evidence review is done.")
    return redirect(url_for("auditor_portal.home", done="complete"), code=303)


@bp.get("/<path:unknown>")
def not_found(unknown: str) -> ResponseReturnValue:
    raise NotFound(f"no auditor page at /auditor/{unknown[:100]}")


