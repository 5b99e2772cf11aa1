"""The console's API keys pages through Flask's test client: a key created with its scopes is
shown once (on the page answering the form, never in a URL, a later page or the list), it works
on the push API, revoking after a confirmation stops it; refusals: bad input beside its field
with nothing written, a POST without its CSRF token, another account's key (404, unchanged)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from engine import apikeys
from engine.db import unit_of_work
from engine.models.push import ApiKey, Scope
from tests.console.conftest import csrf_token

KEY = re.compile(r'id="secret" readonly value="(sk-[A-Za-z0-9_-]+)"')


def keys(settings) -> int:
    with unit_of_work(settings) as session:
        return int(session.scalar(select(func.count()).select_from(ApiKey)) or 0)


def test_a_key_is_shown_once_works_and_stops_working_when_revoked(sign_in, settings, client):
    console = sign_in("acme")
    listing = console.get("/console/api-keys").get_data(as_text=True)
    assert 'aria-current="page">API keys' in listing and 'id="no-keys"' in listing
    form = console.get("/console/api-keys/new").get_data(as_text=True)
    assert '<label for="name">' in form and '<label for="expires_in_days">' in form
    assert form.count('type="checkbox" name="scopes"') == len(Scope)
    assert all(f'<label for="scope-{i}">' in form for i in range(1, len(Scope) + 1))

    token = csrf_token(console, "/console/api-keys/new")
    created = console.post("/console/api-keys", data={
        "csrf_token": token, "name": "CI evidence upload", "scopes": ["write:evidence",
                                                                      "read:evidence"],
        "expires_in_days": "30"})
    html = created.get_data(as_text=True)
    assert created.status_code == 201 and "Location" not in created.headers  # not a redirect
    assert created.headers["Cache-Control"] == "no-store"
    found = KEY.search(html)
    assert found, html[:1000]
    secret = found.group(1)
    assert "only time it is shown" in html

    # The key works on the push API (the same engine.apikeys check)...
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/orgs/acme/evidence", headers=bearer).status_code == 200
    # ...and no later page shows it.
    listing = console.get("/console/api-keys").get_data(as_text=True)
    assert secret not in listing and secret[11:] not in listing
    assert "CI evidence upload" in listing and f"{secret[:11]}…" in listing
    assert "read:evidence, write:evidence" in listing and "Active" in listing
    with unit_of_work(settings) as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.created_by == "acme (console)" and row.expires_at is not None
        assert (row.expires_at - datetime.now(UTC)).days in (29, 30)
        key_id = row.id
    confirm = console.get(f"/console/api-keys/{key_id}/revoke").get_data(as_text=True)
    assert "Revoke the key “CI evidence upload”?" in confirm and secret not in confirm

    revoked = console.post(f"/console/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert revoked.headers["Location"] == f"/console/api-keys?revoked={key_id}"
    html = console.get(revoked.headers["Location"]).get_data(as_text=True)
    assert "is revoked" in html and "Revoked" in html and secret not in html
    refused = client.get("/api/v1/orgs/acme/evidence", headers=bearer)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "api_key_revoked"


def test_bad_key_input_shows_the_message_beside_the_field_and_writes_nothing(
        sign_in, settings):
    console = sign_in("acme")
    token = csrf_token(console, "/console/api-keys/new")
    answer = console.post("/console/api-keys", data={
        "csrf_token": token, "name": "", "scopes": ["admin:*"], "expires_in_days": "7"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="name-error">.*Enter a name', html)
    assert re.search(r'id="scopes-error">.*Choose scopes from the list', html)
    assert re.search(r'id="expires_in_days-error">.*Choose when the key expires', html)
    none = console.post("/console/api-keys", data={"csrf_token": token, "name": "x\x07y"})
    html = none.get_data(as_text=True)
    assert none.status_code == 422 and "Choose at least one scope" in html
    assert re.search(r'id="name-error">.*cannot be stored', html)
    assert 'id="secret"' not in html and keys(settings) == 0


def test_a_post_without_its_csrf_token_is_refused_and_writes_nothing(sign_in, settings):
    console = sign_in("acme")
    answer = console.post("/console/api-keys", data={"name": "x", "scopes": ["read:*"],
                                                     "expires_in_days": ""})
    assert answer.status_code == 400 and "security token" in answer.get_data(as_text=True)
    assert keys(settings) == 0


def test_another_accounts_key_answers_404_and_stays_active(sign_in, settings):
    with unit_of_work(settings) as session:
        row, secret = apikeys.create_key(session, "beta", name="beta's key",
                                         scopes=[Scope.READ_ALL], created_by="beta")
        theirs = row.id
    console = sign_in("acme")
    token = csrf_token(console, "/console/api-keys")
    page = console.get(f"/console/api-keys/{theirs}/revoke")
    assert page.status_code == 404 and "beta's key" not in page.get_data(as_text=True)
    answer = console.post(f"/console/api-keys/{theirs}/revoke", data={"csrf_token": token})
    assert answer.status_code == 404
    assert "beta's key" not in console.get("/console/api-keys").get_data(as_text=True)
    with unit_of_work(settings) as session:
        assert session.get_one(ApiKey, theirs).revoked_at is None
    for hostile in ("%00", "k" * 65):
        assert console.get(f"/console/api-keys/{hostile}/revoke").status_code == 404
        assert console.post(f"/console/api-keys/{hostile}/revoke",
                            data={"csrf_token": token}).status_code == 404
