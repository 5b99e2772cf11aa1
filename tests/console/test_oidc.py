"""Console sign-in through an OpenID Connect provider: a real one (`oidc-provider-mock`, served
on loopback, PKCE enforced here) and the Flask client following each redirect by hand."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import oidc_provider_mock
import pytest
import requests
from flask import Flask, g, jsonify, request
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import func, select

from api import create_app
from console.oidc import CALLBACK_PATH, finish_sign_in
from engine.db import unit_of_work
from engine.errors import Unauthorized
from engine.models.console import ConsoleSession
from engine.settings import Settings
from tests.conftest import serve

CLIENT_ID = "evidence-console"
CLIENT_SECRET = "console-client-secret-3f9a"


@dataclass
class Provider:
    """A running OIDC provider: its issuer URL, and what a test may bend in its ID tokens."""

    url: str
    challenges: dict[str, tuple[str, str]] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)
    """Claims overwritten in every ID token it issues (re-signed with its own key)."""

    def user(self, sub: str, **claims: Any) -> None:
        requests.put(f"{self.url}/users/{sub}", json={"email": f"{sub}@example.com", **claims},
                     timeout=10).raise_for_status()

    def authorize(self, location: str, sub: str, *, deny: bool = False) -> str:
        """What the person does on the provider's page; returns where it sends the browser."""
        form = {"action": "deny"} if deny else {"sub": sub}
        answer = requests.post(location, data=form, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:300]
        return answer.headers["Location"]


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


def _provider_app(provider: Provider) -> Flask:
    app = oidc_provider_mock.app(require_nonce=True)

    @app.before_request
    def enforce_pkce() -> Any:
        """The mock takes any verifier: refuse a code whose verifier does not match the S256
        challenge of its authorization request, as a real provider does."""
        if request.path == "/oauth2/token" and request.form.get("grant_type") == \
                "authorization_code":
            challenge, method = provider.challenges.pop(request.form.get("code", ""), ("", ""))
            if method != "S256" or _s256(request.form.get("code_verifier", "")) != challenge:
                return jsonify(error="invalid_grant", error_description="PKCE mismatch"), 400
        return None

    @app.after_request
    def record_and_tamper(response: Any) -> Any:
        if request.path == "/oauth2/authorize" and response.status_code == 302:
            code = parse_qs(urlsplit(response.headers["Location"]).query).get("code")
            if code:
                provider.challenges[code[0]] = (request.args.get("code_challenge", ""),
                                                request.args.get("code_challenge_method", ""))
        if request.path == "/oauth2/token" and response.status_code == 200 and provider.tamper:
            body = response.get_json()
            header = jwt.get_unverified_header(body["id_token"])
            claims = jwt.decode(body["id_token"], options={"verify_signature": False})
            key = g.oidc_provider_mock_storage.jwk.as_pem(is_private=True)
            kid = {"kid": header["kid"]} if "kid" in header else None
            body["id_token"] = jwt.encode({**claims, **provider.tamper}, key, algorithm="RS256",
                                          headers=kid)
            response.set_data(json.dumps(body))
        return response

    return app


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    """An OIDC provider on a loopback port for the length of the block."""
    provider = Provider("")
    with serve(_provider_app(provider)) as url:
        provider.url = url
        yield provider


def oidc_settings(settings: Settings, provider: Provider, **changes: Any) -> Settings:
    return settings.model_copy(update={
        "oidc_issuer": provider.url, "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": SecretStr(CLIENT_SECRET), "allow_custom_endpoints": True,
        **changes})


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oidc_provider() as running:
        running.user("alice", account="acme")
        running.user("bob")  # no account claim
        yield running


@pytest.fixture
def oidc_client(settings, db, provider) -> FlaskClient:
    return create_app(oidc_settings(settings, provider)).test_client()


def start(client: FlaskClient) -> str:
    """Press "Sign in with your identity provider": the provider's authorization URL."""
    page = client.get("/console/login").get_data(as_text=True)
    assert "Sign in with your identity provider" in page
    answer = client.get("/console/login/oidc")
    assert answer.status_code == 302
    return answer.headers["Location"]


def callback(client: FlaskClient, location: str) -> tuple[int, str, str]:
    """Follow the provider's redirect back into the app: status, body, Location."""
    parts = urlsplit(location)
    answer = client.get(f"{parts.path}?{parts.query}")
    return answer.status_code, answer.get_data(as_text=True), answer.headers.get("Location", "")


def sessions(settings: Settings) -> int:
    with unit_of_work(settings) as session:
        return int(session.scalar(select(func.count()).select_from(ConsoleSession)) or 0)


def test_sign_in_through_the_identity_provider_opens_a_console_session(
        oidc_client, provider, settings):
    location = start(oidc_client)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(provider.url + "/oauth2/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [settings.public_base_url + CALLBACK_PATH]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert "openid" in query["scope"][0].split()

    back = provider.authorize(location, "alice")
    assert back.startswith(settings.public_base_url + CALLBACK_PATH + "?")
    assert set(parse_qs(urlsplit(back).query)) == {"code", "state"}  # no token in a URL
    status, _, to = callback(oidc_client, back)
    assert status == 303 and urlsplit(to).path == "/console"
    cookie = oidc_client.get_cookie("evidence_console", path="/console")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    page = oidc_client.get("/console")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Account <strong>acme</strong>" in body and CLIENT_SECRET not in body
    with unit_of_work(settings) as session:
        opened = session.scalars(select(ConsoleSession)).one()
    assert opened.account_id == "acme" and opened.login_link_id is None

    # The same server-side session as a login link's: signing out ends it.
    csrf = oidc_client.get("/console").get_data(as_text=True).split(
        'name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert oidc_client.post("/console/logout", data={"csrf_token": csrf}).status_code == 303
    oidc_client.set_cookie("evidence_console", cookie.value, path="/console")
    assert "session_ended" in oidc_client.get("/console").headers["Location"]


def test_a_replayed_callback_is_refused(oidc_client, provider, settings):
    location = start(oidc_client)
    before = oidc_client.get_cookie("evidence_console_csrf", path="/console").value
    back = provider.authorize(location, "alice")
    assert callback(oidc_client, back)[0] == 303
    status, body, _ = callback(oidc_client, back)  # the same callback URL again
    assert status == 401 and "already been used" in body

    # Even with the browser's cookie from before the callback, the spent code opens nothing.
    oidc_client.delete_cookie("evidence_console", path="/console")
    oidc_client.set_cookie("evidence_console_csrf", before, path="/console")
    status, body, _ = callback(oidc_client, back)
    assert status == 401 and "refused the sign-in code" in body
    assert sessions(settings) == 1


def test_a_callback_with_another_state_or_from_another_browser_is_refused(
        oidc_client, provider, settings):
    back = provider.authorize(start(oidc_client), "alice")
    query = parse_qs(urlsplit(back).query)
    forged = f"{CALLBACK_PATH}?{urlencode({'code': query['code'][0], 'state': 'forged'})}"
    status, body, _ = callback(oidc_client, forged)
    assert status == 401 and "does not match" in body
    status, body, _ = callback(oidc_client, back)  # the pending sign-in was spent
    assert status == 401 and "already been used" in body

    # Login CSRF: a callback the person's browser never started signs nobody in.
    other = create_app(oidc_settings(settings, provider)).test_client()
    status, body, _ = callback(other, provider.authorize(start(oidc_client), "alice"))
    assert status == 401 and "not started in this browser" in body
    assert sessions(settings) == 0
    assert other.get_cookie("evidence_console", path="/console") is None


def test_an_id_token_without_the_account_claim_is_refused_with_a_page(
        oidc_client, provider, settings):
    status, body, _ = callback(oidc_client, provider.authorize(start(oidc_client), "bob"))
    assert status == 401
    assert "did not say which account you belong to" in body and "`account` claim" in body
    assert oidc_client.get_cookie("evidence_console", path="/console") is None
    assert sessions(settings) == 0


@pytest.mark.parametrize(("claims", "words"), [
    ({"aud": "another-app"}, "addressed to another application"),
    ({"aud": [CLIENT_ID, "another-app"], "azp": "another-app"}, "another application (azp)"),
    ({"nonce": "from-another-sign-in"}, "nonce"),
    ({"iss": "https://idp.example.net"}, "issued by another provider"),
    ({"exp": 1_000_000_000, "iat": 999_999_000}, "has expired"),
])
def test_an_id_token_that_does_not_hold_is_refused(oidc_client, provider, settings, claims,
                                                   words):
    provider.tamper = claims
    status, body, _ = callback(oidc_client, provider.authorize(start(oidc_client), "alice"))
    assert status == 401 and words in body, body[-800:]
    assert sessions(settings) == 0


def test_a_refusal_at_the_provider_is_said_in_words(oidc_client, provider, settings):
    back = provider.authorize(start(oidc_client), "alice", deny=True)
    assert "error=access_denied" in back
    status, body, _ = callback(oidc_client, back)
    assert status == 401 and "did not sign you in" in body
    assert sessions(settings) == 0


def test_an_http_issuer_needs_custom_endpoints_allowed(settings, db, provider):
    client = create_app(oidc_settings(settings, provider, allow_custom_endpoints=False)
                        ).test_client()
    answer = client.get("/console/login/oidc")
    assert answer.status_code == 503 and answer.mimetype == "text/html"
    assert "is not an https URL" in answer.get_data(as_text=True)


def test_without_a_provider_configured_there_is_no_such_sign_in(client):
    assert "identity provider" not in client.get("/console/login").get_data(as_text=True)
    assert client.get("/console/login/oidc").status_code == 404
    assert client.get(f"{CALLBACK_PATH}?code=x&state=y").status_code == 404


def test_settings_name_the_missing_oidc_setting():
    with pytest.raises(ValueError, match="EVIDENCE_OIDC_CLIENT_SECRET together"):
        Settings(oidc_issuer="https://idp.example.com", oidc_client_id="x")


def test_a_sign_in_left_too_long_at_the_provider_is_refused(settings, provider):
    pending = {"state": "s", "nonce": "n", "verifier": "v", "at": 1_000.0}
    with pytest.raises(Unauthorized) as refused:
        finish_sign_in(oidc_settings(settings, provider), pending, {"state": "s", "code": "c"},
                       1_000.0 + settings.oauth_state_ttl_seconds + 1)
    assert refused.value.code == "oidc_expired"
