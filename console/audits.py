"""The console's Audits pages (seed 001, customer side): the account's audits, creating one,
an audit's page (progress, the next step of its status flow, auditors, evidence requests,
findings, recent activity), inviting and withdrawing an auditor, answering an evidence request
(a file uploaded through the push path, a file the account pushed before, or evidence the
engine collected, picked from a filtered list and frozen as it stands), the full
activity log and the report. Each view parses its form, calls the engine functions the JSON API
calls for the same act (engine.audits, engine.pushed) inside one unit of work, and renders; the
rules (tenancy, the status flow, read-only complete audits, mail, size limits) come with them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import IO, Any

from flask import Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from console.auditor import AUDIT_STATUS
from console.auditor_forms import LINE, MAX_TEXT, MAX_TITLE, Form
from console.views import _now, _settings, account_session, bp
from engine import audits, pushed
from engine.apikeys import Caller
from engine.audits import Actor, AuditChanges, AuditorAccess
from engine.errors import Conflict, InvalidInput, NotFound, StorageUnavailable
from engine.frameworks import catalog
from engine.models.audit import ActorKind, Audit, AuditStatus, AuditType, EvidenceRequest
from engine.models.core import EvidenceStatus
from engine.storage import is_configured, open_store

EMAIL = re.compile(r"^[^@\s,;<>\"()\[\]\\\x00-\x1f\x7f]+@[^@\s,;<>\"()\[\]\\\x00-\x1f\x7f]+$")
MIME_PART = "[A-Za-z0-9!#$&^_.+-]+"
CONTENT_TYPE = re.compile(rf"^{MIME_PART}/{MIME_PART}$")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
PATH_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_NAME, MAX_EMAIL, MAX_FILENAME, MAX_OBJECT_REF = 200, 320, 255, 100
UPLOAD_ENDPOINT = "console.answer_with_upload"
FORM_OVERHEAD = 64 * 1024
"""What an upload's form may carry besides the file (boundaries, CSRF token, the note)."""

NEXT_STEP = {
    "in_progress": ("Start the audit", "The auditor can begin; you can still invite auditors."),
    "evidence_review": ("Freeze the evidence and start the review",
                        "The evidence the auditor reviews is frozen as it is now; anything "
                        "collected later is shown to the auditor as newer."),
    "findings": ("Move to findings", "The review is done; the auditor files findings and can "
                                     "then complete the audit."),
    "complete": ("Complete the audit", "The audit becomes read-only: it and its report stay "
                                       "readable, nothing can be changed."),
}
AUDITOR_WORDS = {"invited": ("…", "Invited, link not opened yet", "quiet"),
                 "accepted": ("✓", "Signed in", "good"),
                 "expired": ("–", "Link or session expired", "quiet"),
                 "revoked": ("✗", "Withdrawn", "bad")}
PERIOD_WORDS = {  # engine.audits.check_period's refusals, by their first word
    "only": "Only a Type II audit covers a period (a Type I audit is a point in time): leave "
            "the period empty, or choose Type II.",
    "send": "Enter both the first day and the end of the period.",
    "period_start": "The period must end after its first day.",
}
DONE = {
    "created": "The audit is created as a draft.",
    "moved": "The audit moved to its next stage.",
    "invited": "The invitation is on its way: the auditor gets a mail with a single-use link.",
    "revoked": "The auditor's access is withdrawn: the link and every session it opened have "
               "ended.",
    "answered": "Your answer is sent to the auditor.",
}


def customer_actor() -> Actor:
    """The signed-in customer, as the activity log names them."""
    return Actor(ActorKind.CUSTOMER, g.get("console_subject") or f"{g.account_id} (console)")


def _html(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(f"console/audits/{template}", now=_now(),
                           account_id=g.get("account_id"), **context), status


def _id(value: str) -> str:
    """A path id as the API's paths take it; anything else names nothing here (404)."""
    if not PATH_ID.fullmatch(value):
        raise NotFound("no such page in this account")
    return value


# --- forms ---------------------------------------------------------------------------------

def _frameworks() -> dict[str, str]:
    return {fw.id: fw.name for fw in sorted(catalog().frameworks.values(), key=lambda f: f.id)}


def _when(form: Form, name: str, label: str) -> datetime | None:
    value = form.values.get(name, "").strip()
    if not value:
        return None
    try:
        if len(value) <= 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(value[:40])  # as the API's When: UTC if no zone
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except ValueError:
        form.errors[name] = f"Enter {label} as a date, for example 2026-12-31."
        return None


def _day(form: Form, name: str, label: str) -> date | None:
    """An ISO day (`2026-01-01`), as the API's Day takes it."""
    value = form.values.get(name, "").strip()
    if not value:
        return None
    try:
        if DAY.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    form.errors[name] = f"Enter {label} as a date, for example 2026-01-01."
    return None


def _audit_fields(form: Form) -> dict[str, Any] | None:
    """What AuditCreate takes, bounded as it bounds it."""
    framework_id = form.values.get("framework_id", "")
    if framework_id not in _frameworks():
        form.errors["framework_id"] = "Choose a framework from the list."
    audit_type = form.choice("type", "Type I or Type II", AuditType)
    title = form.text("title", "a title", required=True, one_line=True, max_length=MAX_TITLE)
    description = form.text("description", "the description", max_length=MAX_TEXT)
    target = _when(form, "target_completion", "the target date")
    period_start = _day(form, "period_start", "the period's first day")
    period_end = _day(form, "period_end", "the day the period ends")
    if not form.ok:
        return None
    return {"framework_id": framework_id, "audit_type": audit_type, "title": title,
            "description": description, "target_completion": target,
            "period_start": period_start, "period_end": period_end}


def _invite_fields(form: Form) -> dict[str, Any] | None:
    """What InviteRequest takes, bounded as it bounds it."""
    email = form.values.get("email", "").strip()
    if not email:
        form.errors["email"] = "Enter the auditor's email address."
    elif len(email) > MAX_EMAIL or len(email) < 3 or not EMAIL.match(email):
        form.errors["email"] = "Enter an email address like auditor@firm.com."
    name = form.text("name", "the auditor's name", required=True, one_line=True,
                     max_length=MAX_NAME)
    firm = form.text("firm", "the firm", one_line=True, max_length=MAX_NAME)
    if not form.ok:
        return None
    return {"email": email, "name": name, "firm": firm}


# --- pages ---------------------------------------------------------------------------------

@bp.get("/audits")
def audits_list() -> ResponseReturnValue:
    """Every audit of the account, newest first, with its stage and progress."""
    with account_session() as session:
        found = audits.list_audits(session, g.account_id)
        progress = audits.progress_of(session, found)
        rows = [(a, progress[a.id], audits.framework(a.framework_id).name) for a in found]
        return _html("list.html", rows=rows)


def _new_page(form: Form | None = None, status: int = 200) -> ResponseReturnValue:
    return _html("new.html", status, form=form, frameworks=_frameworks(), types=list(AuditType))


@bp.get("/audits/new")
def audit_new() -> ResponseReturnValue:
    """The form to create an audit."""
    return _new_page()


@bp.post("/audits")
def audit_create() -> ResponseReturnValue:
    """Create an audit (a draft) as POST /api/v1/audits does; a wrong field is named beside
    it and nothing is written."""
    form = Form(request.form)
    fields = _audit_fields(form)
    if fields is None:
        return _new_page(form, 422)
    try:
        with account_session() as session:
            audit = audits.create_audit(session, g.account_id, customer_actor(), **fields)
            audit_id = audit.id
    except InvalidInput as exc:
        named = [str(f.get("field")) for f in exc.details.get("fields") or []]
        field = "framework_id" if exc.code == "unknown_framework" else next(
            (n for n in named if n in form.values), "title")
        form.errors[field] = PERIOD_WORDS.get(exc.message.split(" ")[0], "") if \
            exc.code == "invalid_period" else ""
        form.errors[field] = form.errors[field] or exc.message[:1].upper() + exc.message[1:]
        return _new_page(form, 422)
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="created"), code=303)


def _audit_page(audit_id: str, status: int = 200, **forms: Any) -> ResponseReturnValue:
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, audit_id)
        detail = audits.audit_detail(session, audit)
        requests = audits.evidence_requests(session, audit)
        files = {pid: pushed.get_pushed(session, g.account_id, pid).evidence.filename
                 for pid in {r.response_pushed_id for r in requests} if pid}
        return _html("detail.html", status, audit=audit, detail=detail,
                     framework=audits.framework(audit.framework_id),
                     requests=requests, files=files,
                     findings=audits.findings(session, audit), next_step=NEXT_STEP,
                     auditor_words=AUDITOR_WORDS, done=DONE.get(request.args.get("done", "")),
                     invite_form=forms.get("invite_form"), problem=forms.get("problem"))


@bp.get("/audits/<audit_id>")
def audit_page(audit_id: str) -> ResponseReturnValue:
    """One audit: progress, the next stage, auditors, requests, findings, recent activity."""
    return _audit_page(_id(audit_id))


@bp.post("/audits/<audit_id>/status")
def audit_move(audit_id: str) -> ResponseReturnValue:
    """Move the audit one step along its flow, as PUT /api/v1/audits/<id> with `status`;
    the engine refuses any other step (409, in words on the page) and writes nothing."""
    audit_id = _id(audit_id)
    try:
        target = AuditStatus(request.form.get("status", ""))
    except ValueError:
        return _audit_page(audit_id, 422, problem="Choose the audit's next stage from the page.")
    try:
        with account_session() as session:
            audit = audits.get_audit(session, g.account_id, audit_id, for_update=True)
            audits.update_audit(session, audit, customer_actor(),
                                AuditChanges(status=target))
    except Conflict as exc:
        return _audit_page(audit_id, 409, problem=_conflict_words(exc))
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="moved"), code=303)


def _conflict_words(exc: Conflict) -> str:
    if exc.code == "audit_read_only":
        return "This audit is complete and read-only: nothing can be changed any more."
    allowed = [str(s) for s in exc.details.get("allowed_next_statuses") or []]
    from_words = AUDIT_STATUS.get(str(exc.details.get("status")), "its stage")
    if not allowed:
        return f"The audit cannot move on from {from_words}."
    return (f"An audit in {from_words} can only move to "
            f"{' or '.join(AUDIT_STATUS.get(s, s) for s in allowed)}. Nothing was changed.")


@bp.post("/audits/<audit_id>/auditors")
def auditor_invite(audit_id: str) -> ResponseReturnValue:
    """Invite an auditor as POST /api/v1/audits/<id>/invite-auditor: the mail with the magic
    link leaves through the outbound mail path once this commits."""
    audit_id = _id(audit_id)
    form = Form(request.form)
    fields = _invite_fields(form)
    if fields is None:
        return _audit_page(audit_id, 422, invite_form=form)
    try:
        with account_session() as session:
            audit = audits.get_audit(session, g.account_id, audit_id, for_update=True)
            audits.invite_auditor(session, _settings(), audit, customer_actor(),
                                  **fields)
    except Conflict as exc:
        return _audit_page(audit_id, 409, problem=_conflict_words(exc))
    except StorageUnavailable as exc:
        if exc.code != "mail_unavailable":
            raise
        return _audit_page(audit_id, 503, invite_form=form,
                           problem="This server cannot send mail yet (an operator sets "
                                   "EVIDENCE_SMTP_HOST), so no invitation was made.")
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="invited",
                            _anchor="auditors"), code=303)


def _access(audit_id: str, auditor_id: str) -> tuple[Audit, AuditorAccess]:
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, audit_id)
        found = next((a for a in audits.auditors(session, audit)
                      if a.invitation.id == auditor_id), None)
        if found is None:
            raise NotFound(f"no auditor {auditor_id} in audit {audit_id}")
        return audit, found


@bp.get("/audits/<audit_id>/auditors/<auditor_id>/revoke")
def auditor_revoke_confirm(audit_id: str, auditor_id: str) -> ResponseReturnValue:
    """Ask before withdrawing an auditor: what ends and what stays."""
    audit, access = _access(_id(audit_id), _id(auditor_id))
    return _html("revoke.html", audit=audit, access=access)


@bp.post("/audits/<audit_id>/auditors/<auditor_id>/revoke")
def auditor_revoke(audit_id: str, auditor_id: str) -> ResponseReturnValue:
    """Withdraw an auditor as DELETE /api/v1/audits/<id>/auditors/<auditor_id> does."""
    audit_id = _id(audit_id)
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, audit_id, for_update=True)
        audits.revoke_auditor(session, audit, customer_actor(), _id(auditor_id))
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="revoked",
                            _anchor="auditors"), code=303)


# --- evidence requests ---------------------------------------------------------------------

def _request_page(audit_id: str, request_id: str, status: int = 200,
                  form: Form | None = None) -> ResponseReturnValue:
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, audit_id)
        found = next((r for r in audits.evidence_requests(session, audit)
                      if r.id == request_id), None)
        if found is None:
            raise NotFound(f"no evidence request {request_id} in audit {audit_id}")
        files = pushed.list_pushed(session, g.account_id, limit=200, offset=0).items
        return _html("request.html", status, audit=audit, req=found, files=files, form=form,
                     writable=not audit.status.is_read_only,
                     upload_ready=is_configured(_settings()),
                     max_size=_settings().storage_max_object_bytes)


@bp.get("/audits/<audit_id>/requests/<request_id>")
def request_page(audit_id: str, request_id: str) -> ResponseReturnValue:
    """One evidence request and the two ways to answer it: upload a file, or pick one the
    account pushed before."""
    return _request_page(_id(audit_id), _id(request_id))


@bp.before_app_request
def _upload_body_limit() -> None:
    """An upload's form may be as large as the push path takes a file (the API's body limit
    is for JSON); set before anything, the CSRF check included, reads the form."""
    if request.endpoint == UPLOAD_ENDPOINT:
        request.max_content_length = _settings().storage_max_object_bytes + FORM_OVERHEAD


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body over the limit, as a console page (nothing was read, nothing written)."""
    if request.endpoint == UPLOAD_ENDPOINT:
        title, message = "The file is too large", (
            "The file is larger than this server takes "
            f"({_settings().storage_max_object_bytes:,} bytes at most). Nothing was uploaded.")
    else:
        title, message = "This form is too large", (
            "What was sent is larger than this server takes. Nothing was saved.")
    return render_template("console/error.html", now=_now(), account_id=g.get("account_id"),
                           title=title, message=message), 413


def _file_size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _upload_fields(form: Form, upload: FileStorage | None) -> tuple[str, str, int] | None:
    """The file as UploadRequest bounds it: a name without control characters, a plain
    content type (else application/octet-stream), and a size within the store's maximum."""
    filename = (upload.filename or "").strip() if upload is not None else ""
    if upload is None or not filename:
        form.errors["file"] = "Choose a file to upload."
        return None
    if len(filename) > MAX_FILENAME or not LINE.match(filename):
        form.errors["file"] = f"The file's name must be at most {MAX_FILENAME} characters, " \
                              "without control characters. Rename it and try again."
        return None
    size = _file_size(upload.stream)
    limit = _settings().storage_max_object_bytes
    if size == 0:
        form.errors["file"] = "The file is empty. Choose the file with the evidence."
    elif size > limit:
        form.errors["file"] = f"The file is {size:,} bytes; the largest this server takes is " \
                              f"{limit:,} bytes."
    mimetype = upload.mimetype or ""
    content_type = mimetype if len(mimetype) <= 255 and CONTENT_TYPE.match(mimetype) \
        else "application/octet-stream"
    return (filename, content_type, size) if form.ok else None


@bp.post("/audits/<audit_id>/requests/<request_id>/upload")
def answer_with_upload(audit_id: str, request_id: str) -> ResponseReturnValue:
    """Answer with a file: stored through the push path (engine.pushed: an upload ticket, the
    bytes put where a client's PUT puts them, hashed and linked to the request's control for
    this audit), then the request answered with the verified object, in one unit of work."""
    audit_id, request_id = _id(audit_id), _id(request_id)
    form = Form(request.form)
    note = form.text("note", "the note")
    upload = request.files.get("file")
    fields = _upload_fields(form, upload)
    if fields is None or upload is None:
        return _request_page(audit_id, request_id, 422, form)
    filename, content_type, size = fields
    cfg, now = _settings(), _now()
    caller = Caller(account_id=g.account_id, subject=customer_actor().label)
    try:
        with account_session() as session:
            audit = audits.get_audit(session, g.account_id, audit_id, for_update=True)
            audits.require_writable(audit)
            req = next((r for r in audits.evidence_requests(session, audit)
                        if r.id == request_id), None)
            if req is None:
                raise NotFound(f"no evidence request {request_id} in audit {audit_id}")
            store = open_store(cfg)
            ticket = pushed.request_upload(
                session, store, caller, filename=filename, content_type=content_type,
                control_ref=req.control_id, framework_ref=audit.framework_id, size=size,
                max_size=cfg.storage_max_object_bytes, expires_in=cfg.storage_presign_seconds,
                now=now)
            key = ticket.evidence.upload_key
            store.put(key, upload.stream, content_type)
            link = pushed.link_to_control(
                session, store, caller, ticket.evidence.id, control_ref=req.control_id,
                framework_ref=audit.framework_id, assessment_id=audit.id, object_key=key,
                max_size=cfg.storage_max_object_bytes, now=now)
            if link.outcome.error is not None:
                raise link.outcome.error
            assert link.outcome.evidence is not None
            audits.respond_to_request(session, audit, customer_actor(), req.id,
                                      pushed_evidence_id=link.outcome.evidence.id, note=note)
    except InvalidInput as exc:
        form.errors["file"] = exc.message[:1].upper() + exc.message[1:] + "."
        return _request_page(audit_id, request_id, 422, form)
    except Conflict as exc:
        return _answer_refused(audit_id, request_id, exc, form)
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="answered",
                            _anchor="requests"), code=303)


def _answer_refused(audit_id: str, request_id: str, exc: Conflict,
                    form: Form) -> ResponseReturnValue:
    if exc.code == "audit_read_only":
        return _audit_page(audit_id, 409, problem=_conflict_words(exc))
    form.errors["pushed_evidence_id" if exc.code == "not_verified" else "file"] = \
        exc.message[:1].upper() + exc.message[1:] + "."
    return _request_page(audit_id, request_id, 409, form)


@bp.post("/audits/<audit_id>/requests/<request_id>/answer")
def answer_with_file(audit_id: str, request_id: str) -> ResponseReturnValue:
    """Answer with a file the account pushed before (its hash verified by the engine), as
    POST …/respond with `pushed_evidence_id`."""
    audit_id, request_id = _id(audit_id), _id(request_id)
    form = Form(request.form)
    note = form.text("note", "the note")
    chosen = form.values.get("pushed_evidence_id", "").strip()
    if not chosen or len(chosen) > MAX_OBJECT_REF:
        form.errors["pushed_evidence_id"] = "Choose one of the files from the list."
    if not form.ok:
        return _request_page(audit_id, request_id, 422, form)
    try:
        with account_session() as session:
            audit = audits.get_audit(session, g.account_id, audit_id, for_update=True)
            audits.respond_to_request(session, audit, customer_actor(), request_id,
                                      pushed_evidence_id=chosen, note=note)
    except NotFound as exc:
        if exc.code != "unknown_evidence":
            raise
        form.errors["pushed_evidence_id"] = "Choose one of the files from the list."
        return _request_page(audit_id, request_id, 422, form)
    except Conflict as exc:
        return _answer_refused(audit_id, request_id, exc, form)
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="answered",
                            _anchor="requests"), code=303)


# --- answering with collected evidence ------------------------------------------------------

PICK_PAGE = audits.MAX_ANSWER_ITEMS
"""Rows a page of the picker lists: as many as one answer may name, so one page can carry a
whole answer (ticks do not travel between pages)."""
MAX_PICK_PAGE, MAX_SEARCH, MAX_CHECK = 1000, 200, 200
CHECK_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
EVIDENCE_NUMBER = re.compile(r"[1-9][0-9]{0,17}")


def _pick_filters(values: Any) -> dict[str, Any]:
    """The picker's filters as the URL (or the answer form, to show the page again) carries
    them: a check id, a status, a piece of the resource's id or title, a page number."""
    check = values.get("check", "").strip()
    status = values.get("status", "")
    text = values.get("q", "").strip()
    page = values.get("page", "1")
    if check and not CHECK_ID.fullmatch(check):
        raise InvalidInput("Choose a check from the list.")
    if status and status not in {s.value for s in EvidenceStatus}:
        raise InvalidInput("Choose a status from the list.")
    if len(text) > MAX_SEARCH or not LINE.match(text):
        raise InvalidInput(f"Search for at most {MAX_SEARCH} characters, on one line.")
    if not PAGE.fullmatch(page) or int(page) > MAX_PICK_PAGE:
        raise InvalidInput("There is no such page of evidence.")
    return {"check": check, "status": status, "q": text, "page": int(page)}


def _open_request(session: Session, audit: Audit, request_id: str) -> EvidenceRequest:
    found = next((r for r in audits.evidence_requests(session, audit) if r.id == request_id),
                 None)
    if found is None:
        raise NotFound(f"no evidence request {request_id} in audit {audit.id}")
    return found


def _pick_page(audit_id: str, request_id: str, filters: dict[str, Any], status: int = 200,
               form: Form | None = None, picked: Sequence[str] = ()) -> ResponseReturnValue:
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, audit_id)
        req = _open_request(session, audit, request_id)
        choices = audits.evidence_choices(
            session, g.account_id, check_id=filters["check"] or None, text=filters["q"] or None,
            status=EvidenceStatus(filters["status"]) if filters["status"] else None,
            limit=PICK_PAGE, offset=(filters["page"] - 1) * PICK_PAGE)
        serving = {check for check, controls in
                   audits.framework_checks(audits.framework(audit.framework_id)).items()
                   if any(c.id == req.control_id for c in controls)}
        checks = audits.evidence_checks(session, g.account_id)
        return _html("pick.html", status, audit=audit, req=req, choices=choices,
                     filters=filters, form=form, picked=set(picked), page_size=PICK_PAGE,
                     control_checks=[c for c in checks if c in serving],
                     other_checks=[c for c in checks if c not in serving],
                     statuses=list(EvidenceStatus), max_items=audits.MAX_ANSWER_ITEMS,
                     writable=not audit.status.is_read_only)


@bp.get("/audits/<audit_id>/requests/<request_id>/collected")
def pick_collected(audit_id: str, request_id: str) -> ResponseReturnValue:
    """The account's current collected evidence, filtered by check, status and resource, a
    page at a time, each with a box to tick; the filters stay in the URL."""
    return _pick_page(_id(audit_id), _id(request_id), _pick_filters(request.args))


@bp.post("/audits/<audit_id>/requests/<request_id>/collected")
def answer_with_collected(audit_id: str, request_id: str) -> ResponseReturnValue:
    """Answer with the ticked evidence, as POST …/respond with `evidence_ids`: each item is
    recorded with its version and SHA-256 as they stand now."""
    audit_id, request_id = _id(audit_id), _id(request_id)
    filters = _pick_filters(request.form)
    form = Form(request.form)
    note = form.text("note", "the note")
    ticked = request.form.getlist("evidence_id")
    if not ticked:
        form.errors["evidence_id"] = "Tick at least one piece of evidence."
    elif len(ticked) > audits.MAX_ANSWER_ITEMS:
        form.errors["evidence_id"] = f"Tick at most {audits.MAX_ANSWER_ITEMS} pieces of " \
                                     "evidence for one answer."
    elif not all(EVIDENCE_NUMBER.fullmatch(t) for t in ticked) or len(set(ticked)) != len(
            ticked):
        form.errors["evidence_id"] = "Tick evidence from the list."
    if not form.ok:
        return _pick_page(audit_id, request_id, filters, 422, form, ticked)
    try:
        with account_session() as session:
            audit = audits.get_audit(session, g.account_id, audit_id, for_update=True)
            audits.respond_to_request(session, audit, customer_actor(), request_id,
                                      evidence_ids=[int(t) for t in ticked], note=note)
    except NotFound as exc:
        if exc.code != "evidence_not_found":
            raise
        form.errors["evidence_id"] = "Tick evidence from the list."
        return _pick_page(audit_id, request_id, filters, 422, form, ticked)
    except Conflict as exc:
        if exc.code == "audit_read_only":
            return _audit_page(audit_id, 409, problem=_conflict_words(exc))
        gone = ", ".join(str(e) for e in exc.details.get("evidence_ids") or [])
        form.errors["evidence_id"] = (
            f"Some of the ticked evidence ({gone}) was removed by a sync since this page was "
            "shown: its resource or check is gone. Nothing was saved; tick current evidence.")
        return _pick_page(audit_id, request_id, filters, 409, form, ticked)
    return redirect(url_for("console.audit_page", audit_id=audit_id, done="answered",
                            _anchor="requests"), code=303)


# --- activity and the report ---------------------------------------------------------------

ACTIVITY_PAGE = 200
PAGE = re.compile(r"[1-9][0-9]{0,5}")


@bp.get("/audits/<audit_id>/activity")
def audit_activity(audit_id: str) -> ResponseReturnValue:
    """The audit's whole activity log, oldest first, a page at a time."""
    raw = request.args.get("page", "1")
    page = int(raw) if PAGE.fullmatch(raw) else None
    if page is None:
        raise InvalidInput("There is no such page of the activity log.")
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, _id(audit_id))
        entries = audits.activity(session, audit, limit=ACTIVITY_PAGE + 1,
                                  offset=(page - 1) * ACTIVITY_PAGE)
        return _html("activity.html", audit=audit, entries=entries[:ACTIVITY_PAGE], page=page,
                     more=len(entries) > ACTIVITY_PAGE)


@bp.post("/audits/<audit_id>/report")
def audit_report(audit_id: str) -> ResponseReturnValue:
    """Generate the report (as POST /api/v1/audits/<id>/report: logged with its SHA-256) and
    hand it over as a Markdown download."""
    with account_session() as session:
        audit = audits.get_audit(session, g.account_id, _id(audit_id))
        report = audits.generate_report(session, audit, customer_actor())
        name = f"{audit.id}-report.md"
    return Response(report.markdown, mimetype="text/markdown", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Report-SHA256": report.sha256})

