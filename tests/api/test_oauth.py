"""OAuth connect against a local provider: PKCE, signed single-use state, encrypted tokens,
refresh before expiry, revoke on disconnect, and every refusal."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from engine import oauth
from engine.db import session_factory
from engine.models import Connection, ConnectionStatus, Frequency, SyncRun
from engine.models.integrations import OAuthState
from engine.settings import Settings
from engine.tenancy import scope_to_account
from engine.vault import vault

URL = "/api/v1/integrations/oauthfake/oauth-url"
CALLBACK = "/api/v1/integrations/callback"


def start(client: FlaskClient, auth: dict[str, str]) -> str:
    resp = client.get(URL, headers=auth)
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["authUrl"])


def authorize(auth_url: str) -> tuple[str, str]:
    """What the user's browser does at the provider: approve, get redirected with a code."""
    resp = requests.get(auth_url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    params = parse_qs(urlparse(resp.headers["Location"]).query)
    return params["code"][0], params["state"][0]


def callback(client: FlaskClient, code: str, state: str,
             headers: dict[str, str] | None = None) -> dict:
    resp = client.get(CALLBACK, query_string={"code": code, "state": state},
                      headers=headers or {})
    return {**(resp.get_json() or {}), "http": resp.status_code}


def connections(settings: Settings) -> list[Connection]:
    with session_factory(settings)() as s:
        return list(s.scalars(select(Connection)))


def stored_credentials(settings: Settings) -> dict:
    (conn,) = [c for c in connections(settings) if c.status != ConnectionStatus.DISCONNECTED]
    assert conn.credentials_encrypted is not None
    return vault(settings).open(conn.credentials_encrypted)


def test_authorization_url_carries_pkce_s256_and_a_signed_state(oauth_client, auth, provider,
                                                                settings):
    url = urlparse(start(oauth_client, auth))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.geturl().startswith(provider.url + "/authorize")
    assert params["client_id"] == "evidence-test-client"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert "code_verifier" not in params
    assert params["scope"] == "read:org repo"
    assert params["redirect_uri"] == "https://evidence.example.com/api/v1/integrations/callback"
    claims = jwt.decode(params["state"], options={"verify_signature": False})
    assert (claims["acct"], claims["int"]) == ("acme", "oauthfake")
    assert claims["exp"] - claims["iat"] == 600
    with session_factory(settings)() as s:
        row = s.scalars(select(OAuthState)).one()
    assert row.consumed_at is None and claims["nonce"] not in row.nonce_hash


def test_callback_exchanges_the_code_and_stores_tokens_encrypted(oauth_client, auth, provider,
                                                                 settings):
    code, state = authorize(start(oauth_client, auth))
    answer = callback(oauth_client, code, state)
    assert answer["http"] == 200, answer
    assert answer["success"] is True and answer["status"] == "active"
    assert answer["metadata"] == {"login": "octocat", "org": None}
    (exchange,) = [r for r in provider.state.token_requests
                   if r["grant_type"] == "authorization_code"]
    assert exchange["code"] == code and exchange["code_verifier"]

    creds = stored_credentials(settings)
    assert creds["access_token"].startswith("at-") and creds["refresh_token"].startswith("rt-")
    assert creds["expires_at"] > time.time() + 3000
    with session_factory(settings)() as s:
        dump = s.scalar(text("SELECT string_agg(c::text, ' ') FROM connection c"))
    assert creds["access_token"] not in dump and creds["refresh_token"] not in dump

    status = oauth_client.get("/api/v1/integrations/oauthfake/status", headers=auth).get_json()
    assert status["status"] == "active"
    assert status["syncHistory"][0]["trigger"] == "connect"
    assert status["syncHistory"][0]["status"] == "succeeded"
    evidence = oauth_client.get("/api/v1/integrations/oauthfake/evidence",
                                headers=auth).get_json()
    assert {e["resource_id"]: e["status"] for e in evidence["evidence"]} == {
        "repo:api": "passing", "repo:docs": "failing"}


def test_callback_redirects_to_the_dashboard_when_one_is_configured(app_client, auth, provider,
                                                                    inline_jobs):
    from tests.api.conftest import oauth_settings

    client = app_client(**oauth_settings(provider),
                        dashboard_url="https://app.example.com/integrations")
    code, state = authorize(start(client, auth))
    resp = client.get(CALLBACK, query_string={"code": code, "state": state})
    assert resp.status_code == 302
    target = urlparse(resp.headers["Location"])
    assert target.netloc == "app.example.com"
    query = parse_qs(target.query)
    assert query["integration"] == ["oauthfake"] and query["status"] == ["active"]
    assert query["connectionId"][0].startswith("conn-")


def test_tokens_are_refreshed_before_they_expire(oauth_client, auth, provider, settings):
    code, state = authorize(start(oauth_client, auth))
    assert callback(oauth_client, code, state)["http"] == 200
    old = stored_credentials(settings)
    with session_factory(settings)() as s, s.begin():
        conn = s.scalars(select(Connection)).one()
        conn.credentials_encrypted = vault(settings).seal(
            {**old, "expires_at": int(time.time()) + 60})  # inside the 5-minute leeway

    synced = oauth_client.post("/api/v1/integrations/oauthfake/sync?wait=10", headers=auth)
    assert synced.status_code == 200 and synced.get_json()["success"] is True, synced.get_json()
    refreshes = [r for r in provider.state.token_requests if r["grant_type"] == "refresh_token"]
    assert [r["refresh_token"] for r in refreshes] == [old["refresh_token"]]
    new = stored_credentials(settings)
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > time.time() + 3000


def test_a_refresh_the_provider_refuses_fails_the_sync_with_its_reason(oauth_client, auth,
                                                                      provider, settings):
    code, state = authorize(start(oauth_client, auth))
    assert callback(oauth_client, code, state)["http"] == 200
    old = stored_credentials(settings)
    provider.state.refresh.clear()  # the user revoked the app at the provider
    provider.state.access.clear()
    with session_factory(settings)() as s, s.begin():
        conn = s.scalars(select(Connection)).one()
        conn.credentials_encrypted = vault(settings).seal(
            {**old, "expires_at": int(time.time()) + 10})
    synced = oauth_client.post("/api/v1/integrations/oauthfake/sync?wait=10", headers=auth)
    body = synced.get_json()
    assert body["success"] is False and body["run"]["status"] == "failed"
    status = oauth_client.get("/api/v1/integrations/oauthfake/status", headers=auth).get_json()
    assert status["status"] == "error" and "refused" in status["statusMessage"]


def test_disconnect_revokes_the_grant_and_removes_the_tokens(oauth_client, auth, provider,
                                                             settings):
    code, state = authorize(start(oauth_client, auth))
    assert callback(oauth_client, code, state)["http"] == 200
    creds = stored_credentials(settings)
    resp = oauth_client.delete("/api/v1/integrations/oauthfake/disconnect", headers=auth)
    assert resp.status_code == 200
    assert resp.get_json()["credentialsRevoked"] is True
    assert provider.state.revoked == [creds["refresh_token"]]
    (conn,) = connections(settings)
    assert conn.status == ConnectionStatus.DISCONNECTED and conn.credentials_encrypted is None


# --- refusals ------------------------------------------------------------------------------


def refused(answer: dict, status: int, code: str) -> None:
    assert answer["http"] == status, answer
    assert answer["success"] is False and answer["error"]["code"] == code
    assert answer["error"]["message"]


def no_connection_made(settings: Settings) -> bool:
    return connections(settings) == []


def test_a_replayed_state_is_refused(oauth_client, auth, provider, settings):
    code, state = authorize(start(oauth_client, auth))
    assert callback(oauth_client, code, state)["http"] == 200
    refused(callback(oauth_client, code, state), 400, "oauth_state_used")
    assert len(connections(settings)) == 1


def test_a_forged_state_is_refused(oauth_client, auth, provider, settings):
    code, state = authorize(start(oauth_client, auth))
    claims = jwt.decode(state, options={"verify_signature": False})
    forged = jwt.encode({**claims, "acct": "mallory"}, "not-the-server-secret" * 2,
                        algorithm="HS256")
    refused(callback(oauth_client, code, forged), 400, "oauth_state_invalid")
    header, payload, signature = state.split(".")
    altered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    altered["acct"] = "mallory"
    tampered = ".".join([header, base64.urlsafe_b64encode(json.dumps(altered).encode())
                         .rstrip(b"=").decode(), signature])
    refused(callback(oauth_client, code, tampered), 400, "oauth_state_invalid")
    seed_style = base64.b64encode(json.dumps(
        {"integrationId": "oauthfake", "accountId": "acme"}).encode()).decode()
    refused(callback(oauth_client, code, seed_style), 400, "oauth_state_invalid")
    unsigned = jwt.encode({**claims}, None, algorithm="none")
    refused(callback(oauth_client, code, unsigned), 400, "oauth_state_invalid")
    assert no_connection_made(settings)
    assert callback(oauth_client, code, state)["http"] == 200  # the real one still works


def test_an_expired_state_is_refused(oauth_client, auth, provider, settings):
    from tests.api.conftest import oauth_settings

    app_settings = settings.model_copy(update=oauth_settings(provider))
    with session_factory(settings)() as s, s.begin():
        scope_to_account(s, "acme")
        issued = oauth.authorization_url(s, "oauthfake", Frequency.DAILY, app_settings,
                                         now=datetime.now(UTC) - timedelta(minutes=11))
    code, state = authorize(issued.url)
    refused(callback(oauth_client, code, state), 400, "oauth_state_expired")
    assert no_connection_made(settings)


def test_a_state_presented_by_another_account_is_refused(oauth_client, auth, second_auth,
                                                         provider, settings):
    code, state = authorize(start(oauth_client, auth))
    refused(callback(oauth_client, code, state, headers=second_auth), 403,
            "oauth_state_account_mismatch")
    assert no_connection_made(settings)
    assert callback(oauth_client, code, state, headers=auth)["http"] == 200


def test_a_state_whose_nonce_belongs_to_another_account_is_refused(oauth_client, auth,
                                                                   second_auth, provider,
                                                                   settings):
    from tests.api.conftest import oauth_settings

    code, state = authorize(start(oauth_client, auth))
    claims = jwt.decode(state, options={"verify_signature": False})
    app_settings = settings.model_copy(update=oauth_settings(provider))
    resigned = jwt.encode({**claims, "acct": "globex"}, oauth._state_key(app_settings),
                          algorithm="HS256")  # even with the server's key: bound to acme
    refused(callback(oauth_client, code, resigned), 400, "oauth_state_invalid")
    assert no_connection_made(settings)


def test_a_code_the_provider_rejects_writes_no_connection(oauth_client, auth, provider,
                                                          settings):
    _, state = authorize(start(oauth_client, auth))
    refused(callback(oauth_client, "code-stolen-or-made-up", state), 400,
            "oauth_code_rejected")
    assert no_connection_made(settings)


def test_a_denied_authorization_is_refused_and_burns_the_state(oauth_client, auth, provider,
                                                               settings):
    auth_url = start(oauth_client, auth)
    state = parse_qs(urlparse(auth_url).query)["state"][0]
    resp = oauth_client.get(CALLBACK, query_string={"error": "access_denied", "state": state})
    refused({**resp.get_json(), "http": resp.status_code}, 400, "oauth_denied")
    refused(callback(oauth_client, "any", state), 400, "oauth_state_used")
    assert no_connection_made(settings)


def test_oauth_url_refusals(app_client, client, auth, provider, fake_connector):
    resp = client.get("/api/v1/integrations/fake/oauth-url", headers=auth)
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (400, "oauth_not_supported")
    unconfigured = app_client(oauth_clients={})
    resp = unconfigured.get(URL, headers=auth)
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (503, "oauth_not_configured")
    resp = client.get(URL)
    assert resp.status_code == 401


@pytest.mark.parametrize("query", [{}, {"code": "x"}, {"state": ""}])
def test_a_callback_without_state_is_a_422(oauth_client, query, settings):
    resp = oauth_client.get(CALLBACK, query_string=query)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_request"


def test_no_state_row_is_consumed_by_refused_callbacks(oauth_client, auth, provider, settings):
    code, state = authorize(start(oauth_client, auth))
    callback(oauth_client, code, state + "x")
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(OAuthState).where(
            OAuthState.consumed_at.is_not(None))) == 0
        assert s.scalar(select(func.count()).select_from(SyncRun)) == 0
