"""The console's "Connect with …" button: the same OAuth flow as GET .../oauth-url, and the
callback landing on the console's integrations page for a browser (JSON for API clients)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from flask.testing import FlaskClient

from cli.wiring import api_app
from engine.db import _sender, set_job_sender
from tests.api.conftest import oauth_settings, provider, provider_server, run_jobs_inline
from tests.console.conftest import csrf_token, login_link, post_link

__all__ = ["provider", "provider_server"]  # the local OAuth provider's fixtures
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def oauth_console(client, settings, provider) -> Iterator[FlaskClient]:
    """The app with an OAuth app at the local provider, signed in as acme; jobs in-process."""
    changed = settings.model_copy(update=oauth_settings(provider))
    browser = api_app(changed).test_client()
    saved = list(_sender)
    set_job_sender(run_jobs_inline(changed))
    status, body = post_link(browser, login_link(settings, "acme"))
    assert status == 303, body
    yield browser
    _sender[:] = saved


def test_connect_with_the_provider_then_land_on_the_integrations_page(oauth_console, provider,
                                                                      settings):
    page = oauth_console.get("/console/integrations/oauthfake/connect")
    body = page.get_data(as_text=True)
    assert 'id="oauth-connect"' in body and "Connect with OAuth Fake" in body
    assert 'id="connect-submit"' not in body  # nothing to type: the provider issues the token
    assert provider.url in page.headers["Content-Security-Policy"]  # the form may post there

    token = csrf_token(oauth_console, "/console/integrations/oauthfake/connect")
    started = oauth_console.post("/console/integrations/oauthfake/oauth",
                                 data={"csrf_token": token})
    assert started.status_code == 303
    auth_url = started.headers["Location"]
    assert auth_url.startswith(provider.url + "/authorize")
    assert parse_qs(urlparse(auth_url).query)["code_challenge_method"] == ["S256"]

    approved = requests.get(auth_url, allow_redirects=False, timeout=10)
    assert approved.status_code == 302, approved.text
    back = parse_qs(urlparse(approved.headers["Location"]).query)
    landed = oauth_console.get("/api/v1/integrations/callback", headers={"Accept": BROWSER},
                               query_string={"code": back["code"][0],
                                             "state": back["state"][0]})
    assert landed.status_code == 302
    target = urlparse(landed.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == settings.public_base_url
    assert target.path == "/console/integrations"
    assert parse_qs(target.query)["integration"] == ["oauthfake"]
    catalog = oauth_console.get(f"{target.path}?{target.query}").get_data(as_text=True)
    assert "OAuth Fake is connected" in catalog


def test_a_provider_without_an_oauth_app_says_who_sets_it_up(sign_in):
    client = sign_in("acme")
    page = client.get("/console/integrations/github/connect").get_data(as_text=True)
    assert 'id="oauth-unavailable"' in page and "EVIDENCE_OAUTH_CLIENTS" in page
    assert 'id="connect-submit"' in page  # a personal access token still works
