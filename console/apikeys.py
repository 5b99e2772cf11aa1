"""The console's API keys pages (seed 002): the account's keys, creating one with its scopes
(the key is shown once, on the page that answers the form, and never again: no redirect carries
it, no page lists it), and revoking one after a confirmation. The views call engine.apikeys as
the JSON API does.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from console.auditor_forms import LINE, Form
from console.audits import customer_actor
from console.views import _now, account_session, bp
from engine import apikeys
from engine.errors import NotFound
from engine.models.push import ApiKey, Scope

MAX_NAME = 200
KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
SCOPE_WORDS = {
    Scope.READ_EVIDENCE: "Read pushed evidence",
    Scope.WRITE_EVIDENCE: "Push evidence (upload, verify, link to controls)",
    Scope.READ_ALL: "Read everything a key may read (read:*)",
    Scope.WRITE_ALL: "Write everything a key may write (write:*)",
}
EXPIRY = {"": "Never", "30": "In 30 days", "90": "In 90 days", "365": "In a year"}


def _html(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(f"console/apikeys/{template}", now=_now(),
                           account_id=g.get("account_id"), scope_words=SCOPE_WORDS,
                           expiry=EXPIRY, **context), status


def _state(row: ApiKey) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= _now():
        return "expired"
    return "active"


@bp.get("/api-keys")
def apikeys_list() -> ResponseReturnValue:
    """The account's keys (a prefix to tell them apart, never the key), revoked ones too."""
    with account_session() as session:
        rows = [(k, _state(k)) for k in apikeys.list_keys(session, g.account_id)]
        revoked = request.args.get("revoked", "")[:64]
        gone = next((k for k, _ in rows if k.id == revoked), None) if revoked else None
        return _html("list.html", rows=rows, revoked=gone)


def _new_page(form: Form | None = None, status: int = 200) -> ResponseReturnValue:
    return _html("new.html", status, form=form,
                 chosen=set(request.form.getlist("scopes")) if form else set())


@bp.get("/api-keys/new")
def apikey_new() -> ResponseReturnValue:
    """The form to create a key: its name, scopes and when it expires."""
    return _new_page()


def _key_fields(form: Form) -> tuple[str, list[Scope], int | None] | None:
    """What CreateKeyRequest takes, bounded as it bounds it."""
    name = form.text("name", "a name", required=True, one_line=True, max_length=MAX_NAME)
    scopes: list[Scope] = []
    for value in request.form.getlist("scopes"):
        try:
            scopes.append(Scope(value))
        except ValueError:
            form.errors["scopes"] = "Choose scopes from the list."
    if not scopes and "scopes" not in form.errors:
        form.errors["scopes"] = "Choose at least one scope."
    days = form.values.get("expires_in_days", "")
    if days not in EXPIRY:
        form.errors["expires_in_days"] = "Choose when the key expires from the list."
    if not form.ok or name is None or not LINE.match(name):
        return None
    return name, scopes, int(days) if days else None


@bp.post("/api-keys")
def apikey_create() -> ResponseReturnValue:
    """Create a key as POST /api/v1/orgs/<org>/api-keys does; the answer is the one page that
    shows it (201, not a redirect, so it is in no URL and no later page)."""
    form = Form(request.form)
    fields = _key_fields(form)
    if fields is None:
        return _new_page(form, 422)
    name, scopes, days = fields
    now = _now()
    with account_session() as session:
        row, secret = apikeys.create_key(
            session, g.account_id, name=name, scopes=scopes,
            created_by=customer_actor().label,
            expires_at=now + timedelta(days=days) if days else None)
    return _html("created.html", 201, key=row, secret=secret)


def _key_id(value: str) -> str:
    """A key id as the API's path takes it; anything else names no key (404)."""
    if not KEY_ID.fullmatch(value):
        raise NotFound("no such API key in this organization")
    return value


def _key(key_id: str) -> ApiKey:
    with account_session() as session:
        found = next((k for k in apikeys.list_keys(session, g.account_id) if k.id == key_id),
                     None)
        if found is None:
            raise NotFound(f"no API key {key_id} in this organization")
        return found


@bp.get("/api-keys/<key_id>/revoke")
def apikey_revoke_confirm(key_id: str) -> ResponseReturnValue:
    """Ask before revoking: a program using the key is refused from its next request."""
    key = _key(_key_id(key_id))
    return _html("revoke.html", key=key, state=_state(key))


@bp.post("/api-keys/<key_id>/revoke")
def apikey_revoke(key_id: str) -> ResponseReturnValue:
    """Revoke as DELETE /api/v1/orgs/<org>/api-keys/<id> does (again is harmless)."""
    with account_session() as session:
        row = apikeys.revoke_key(session, g.account_id, _key_id(key_id), _now())
        revoked = row.id
    return redirect(url_for("console.apikeys_list", revoked=revoked), code=303)
