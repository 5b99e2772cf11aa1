"""The console's pages and refusals through the Flask test client (the browser tests in
test_browser.py drive the same pages in Chromium)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from api import create_app
from engine.db import unit_of_work
from engine.models.console import ConsoleLoginLink, ConsoleSession
from engine.registry import connectors
from tests.console.conftest import csrf_token, login_link, post_link
from tests.console.test_dashboard import seed_estate_rows


def test_without_a_session_every_page_sends_the_browser_to_sign_in(client):
    for path in ("/console", "/console/controls"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].endswith("/console/login")


def test_a_login_link_opens_a_session_once(client, settings):
    link = login_link(settings, "acme")
    assert "#token=" in link and link.startswith(settings.public_base_url + "/console/login")
    status, _ = post_link(client, link)
    assert status == 303
    cookie = client.get_cookie("evidence_console", path="/console")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    overview = client.get("/console")
    assert overview.status_code == 200
    assert "SOC 2" in overview.get_data(as_text=True)

    again, body = post_link(client, link)
    assert again == 401 and "already been used" in body


def test_sign_out_needs_its_csrf_token_and_ends_the_session_server_side(sign_in, client):
    sign_in("acme")
    refused = client.post("/console/logout")
    assert refused.status_code == 400 and "security token" in refused.get_data(as_text=True)
    assert client.get("/console").status_code == 200
    cookie = client.get_cookie("evidence_console", path="/console").value
    out = client.post("/console/logout", data={"csrf_token": csrf_token(client, "/console")})
    assert out.status_code == 303
    client.set_cookie("evidence_console", cookie, path="/console")  # a copied cookie
    answer = client.get("/console")
    assert answer.status_code == 302 and "reason=session_ended" in answer.headers["Location"]


def test_an_idle_or_expired_session_is_refused(sign_in, client, settings):
    sign_in("acme")
    with unit_of_work(settings) as session:
        session.execute(update(ConsoleSession).values(
            last_seen_at=datetime.now(UTC) - timedelta(seconds=settings.console_idle_seconds + 1)))
    answer = client.get("/console")
    assert answer.status_code == 302 and "reason=session_expired" in answer.headers["Location"]
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Your session has expired" in page


def test_the_json_api_takes_no_csrf_token(client, auth):
    answer = client.post("/api/v1/orgs/acme/api-keys", headers=auth,
                         json={"name": "ci", "scopes": ["read:evidence"]})
    assert answer.status_code in (200, 201), answer.get_json()


def test_unknown_filter_values_are_refused_with_a_page(sign_in, client):
    sign_in("acme")
    answer = client.get("/console/controls?framework=nope")
    assert answer.status_code == 422
    assert "unknown framework" in answer.get_data(as_text=True)


def test_an_expired_login_link_is_refused_and_opens_nothing(client, settings):
    link = login_link(settings, "acme")
    with unit_of_work(settings) as session:
        session.execute(update(ConsoleLoginLink).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    status, body = post_link(client, link)
    assert status == 401 and "has expired" in body
    assert client.get_cookie("evidence_console", path="/console") is None


def test_on_https_the_session_cookie_is_secure(settings, db):
    app = create_app(settings.model_copy(update={"public_base_url": "https://ev.example.com"}))
    client = app.test_client()
    https = {"base_url": "https://ev.example.com",
             "headers": {"Referer": "https://ev.example.com/console/login"}}
    status, _ = post_link(client, login_link(settings, "acme"), **https)
    assert status == 303
    cookie = client.get_cookie("evidence_console", domain="ev.example.com", path="/console")
    assert cookie is not None and cookie.secure and cookie.http_only
    token = csrf_token(client, "/console", **https)
    cross = client.post("/console/logout", base_url="https://ev.example.com",
                        headers={"Referer": "https://evil.example.net/"},
                        data={"csrf_token": token})
    assert cross.status_code == 400  # Flask-WTF's https referrer check
    out = client.post("/console/logout", **https, data={"csrf_token": token})
    assert out.status_code == 303


def test_an_unknown_console_address_is_a_page_not_json(sign_in, client):
    sign_in("acme")
    answer = client.get("/console/nothing/here")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "Page not found" in answer.get_data(as_text=True)


def test_the_assets_are_files_of_the_package_served_without_a_session(client):
    for path, kind in (("/console/static/console.css", "text/css"),
                       ("/console/static/login.js", "text/javascript")):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.mimetype == kind
    page = client.get("/console/login").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page  # nothing from another origin


def test_the_sync_runs_page_says_when_nothing_has_run(sign_in, client):
    sign_in("acme")
    page = client.get("/console/runs")
    assert page.status_code == 200 and "No sync has run yet" in page.get_data(as_text=True)


def _last_seen(settings) -> datetime:
    with unit_of_work(settings) as session:
        return session.scalars(select(ConsoleSession.last_seen_at)).one()


def test_a_page_view_marks_the_session_used_at_most_once_a_minute(sign_in, client, settings):
    sign_in("acme")
    recent = datetime.now(UTC) - timedelta(seconds=5)
    with unit_of_work(settings) as session:
        session.execute(update(ConsoleSession).values(last_seen_at=recent))
    assert client.get("/console").status_code == 200
    assert _last_seen(settings) == recent  # a read, no write
    older = datetime.now(UTC) - timedelta(seconds=120)
    with unit_of_work(settings) as session:
        session.execute(update(ConsoleSession).values(last_seen_at=older))
    assert client.get("/console").status_code == 200
    assert _last_seen(settings) > older + timedelta(seconds=100)


def test_the_controls_board_pages_and_links_a_checks_full_listing(sign_in, client, settings):
    with unit_of_work(settings) as session:
        seed_estate_rows(session, "acme", 600)
    sign_in("acme")
    page = client.get("/console/controls?framework=&status=failing").get_data(as_text=True)
    assert "Page 1 of" in page and 'rel="next"' in page and "status=failing" in page
    shown = re.findall(r'href="/console/checks/([a-z0-9_.]+)"', page)
    assert shown and "Show all" in page
    check = shown[0]
    assert check in {c.id for c in connectors()["aws"].checks}
    second = client.get("/console/controls?status=failing&page=2")
    assert second.status_code == 200 and 'rel="prev"' in second.get_data(as_text=True)
    assert client.get("/console/controls?page=999").status_code == 404
    assert client.get("/console/controls?page=x").status_code == 422
    listing = client.get(f"/console/checks/{check}")
    assert listing.status_code == 200 and "How to fix:" in listing.get_data(as_text=True)
    assert client.get("/console/checks/aws.no.such").status_code == 404
    assert client.get(f"/console/checks/{check}?offset=-1").status_code == 422
