"""Connecting GitHub through an OAuth app (or a GitHub App's expiring user tokens): the API's
oauth-url, GitHub's authorize page and token endpoint (served by the local GitHub server, as
GitHub Enterprise Server serves them), the callback, and a sync that reads the organization with
the issued token; then every refusal on the way."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import func, select, text

from connectors.base import AuthFailed, PermissionMissing
from connectors.github import GithubConnector, GithubCredentials
from connectors.github.grant import grant_url, revoke_grant
from connectors.github.kit import (
    OAUTH_CALLBACK,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    ORGANIZATION,
    TOKEN,
    Estate,
    GithubOAuth,
    GithubServer,
    seed_estate,
)
from engine.db import _sender, session_factory, set_job_sender
from engine.models import Connection, ConnectionStatus
from engine.models.integrations import OAuthState
from engine.settings import OAuthClient, Settings
from engine.vault import vault
from tests.api.conftest import run_jobs_inline
from tests.conftest import all_evidence
from tests.connectors.github.conftest import connector

OAUTH_URL = "/api/v1/integrations/github/oauth-url"
DISCONNECT = "/api/v1/integrations/github/disconnect"
REVOKE = r"^DELETE /api/v3/applications/[^/]+/grant$"
CALLBACK = "/api/v1/integrations/callback"
STATUS = "/api/v1/integrations/github/status"


def oauth_settings(server: GithubServer) -> dict[str, Any]:
    """What an operator sets for a GitHub Enterprise Server's OAuth app."""
    return {
        "oauth_clients": {"github": OAuthClient(
            client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET,  # type: ignore[arg-type]
            authorize_url=f"{server.root}/login/oauth/authorize",
            token_url=f"{server.root}/login/oauth/access_token")},
        "oauth_redirect_url": OAUTH_CALLBACK,
    }


@pytest.fixture
def estate(github_api: GithubServer) -> Estate:
    """acme-corp with no repository allowed public (connections start without parameters)."""
    served = seed_estate(github_api.base_url, allowed_public_repos=())
    github_api.serve(served)
    return served


@pytest.fixture
def api(settings: Settings, db: None,
        github_api: GithubServer) -> Iterator[Callable[..., FlaskClient]]:
    """A client of an app with GitHub's OAuth app at the local server, `settings` changed by
    the given fields; jobs go to Celery unless `inline=True` (run in this process)."""
    from cli.wiring import api_app

    saved = list(_sender)

    def make(*, inline: bool = False, **changes: Any) -> FlaskClient:
        changed = settings.model_copy(update={**oauth_settings(github_api), **changes})
        app = api_app(changed)
        if inline:
            set_job_sender(run_jobs_inline(changed))
        return app.test_client()

    yield make
    _sender[:] = saved


def start(client: FlaskClient, auth: dict[str, str], **params: str) -> str:
    resp = client.get(OAUTH_URL, headers=auth, query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return str(resp.get_json()["authUrl"])


def authorize(auth_url: str) -> dict[str, str]:
    """What the browser does at GitHub: the user approves, GitHub redirects to the callback."""
    resp = requests.get(auth_url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    target = urlsplit(resp.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == OAUTH_CALLBACK
    return {k: v[0] for k, v in parse_qs(target.query).items()}


def callback(client: FlaskClient, query: dict[str, str]) -> dict[str, Any]:
    resp = client.get(CALLBACK, query_string=query)
    return {**(resp.get_json() or {}), "http": resp.status_code,
            "text": resp.get_data(as_text=True)}


def settled_status(client: FlaskClient, auth: dict[str, str],
                   timeout: float = 90) -> dict[str, Any]:
    """The connection's status once verification has settled (polled; not a timing assert)."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(STATUS, headers=auth).get_json()
        if body.get("status") != "pending" or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def stored_credentials(settings: Settings) -> dict[str, Any]:
    with session_factory(settings)() as s:
        (conn,) = s.scalars(select(Connection).where(
            Connection.status != ConnectionStatus.DISCONNECTED)).all()
    assert conn.credentials_encrypted is not None
    return vault(settings).open(conn.credentials_encrypted)


def found_verdicts(client: FlaskClient, auth: dict[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for item in all_evidence(client, auth, "github", page_size=50):
        found[item["check_id"]][item["resource_id"]] = item["status"]
    return dict(found)


def count(settings: Settings, model: type) -> int:
    with session_factory(settings)() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# --- the flow ------------------------------------------------------------------------------


def test_connect_through_the_oauth_app_then_sync_reads_exactly_the_organization(
        api, auth, settings, estate, github_api, worker):
    client = api()
    auth_url = start(client, auth, organization=ORGANIZATION, base_url=github_api.base_url)

    url = urlsplit(auth_url)
    asked = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{github_api.root}/login/oauth/authorize"
    assert set(asked) == {"response_type", "client_id", "redirect_uri", "scope", "state",
                          "code_challenge", "code_challenge_method"}
    assert (asked["client_id"], asked["scope"], asked["redirect_uri"]) == (
        OAUTH_CLIENT_ID, "repo admin:org", OAUTH_CALLBACK)
    assert asked["code_challenge_method"] == "S256"

    answer = callback(client, authorize(auth_url))
    assert answer["http"] in (200, 202), answer
    status = settled_status(client, auth)
    assert status["status"] == "active", status
    assert status["metadata"] == {"organization": ORGANIZATION, "plan": "enterprise",
                                  "repositories": len(estate.repos)}

    # One code exchange, asking for JSON (GitHub answers form-encoded otherwise), with PKCE.
    (exchange,) = github_api.oauth.token_requests
    assert exchange["accept"] == "application/json"
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    (issued,) = github_api.oauth.access
    assert stored_credentials(settings) == {
        "access_token": issued, "token_type": "bearer", "scope": "admin:org,repo",
        "organization": ORGANIZATION, "base_url": github_api.base_url}

    synced = client.post("/api/v1/integrations/github/sync?wait=60", headers=auth)
    assert synced.status_code == 200, synced.get_json()
    result = synced.get_json()
    assert (result["success"], result["errors"]) == (True, [])
    assert result["evidenceCount"] == sum(len(v) for v in estate.expected.values())
    assert found_verdicts(client, auth) == estate.expected
    # Every API request GitHub saw carried the token the OAuth flow issued.
    assert github_api.authorizations and set(github_api.authorizations) == {issued}

    shown = [answer["text"], client.get(STATUS, headers=auth).get_data(as_text=True),
             client.get("/api/v1/integrations/github/evidence", headers=auth)
             .get_data(as_text=True)]
    assert not any(issued in body for body in shown)
    with session_factory(settings)() as s:
        dump = s.scalar(text("SELECT string_agg(c::text, ' ') FROM connection c"))
    assert issued not in dump


def test_a_github_app_token_is_refreshed_and_keeps_the_organization(api, auth, settings,
                                                                    github_api):
    served = seed_estate(github_api.base_url, allowed_public_repos=())
    github_api.serve(served, GithubOAuth(expiring=True))
    client = api(inline=True)
    answer = callback(client, authorize(start(client, auth, organization=ORGANIZATION,
                                              base_url=github_api.base_url)))
    assert answer["http"] == 200 and answer["status"] == "active", answer
    old = stored_credentials(settings)
    assert old["access_token"].startswith("ghu_") and old["refresh_token"].startswith("ghr_")
    assert old["expires_at"] > time.time() + 28000
    with session_factory(settings)() as s, s.begin():
        conn = s.scalars(select(Connection)).one()
        conn.credentials_encrypted = vault(settings).seal(
            {**old, "expires_at": int(time.time()) + 60})  # inside the refresh leeway
    github_api.authorizations.clear()

    synced = client.post("/api/v1/integrations/github/sync?wait=30", headers=auth)
    assert synced.status_code == 200 and synced.get_json()["success"] is True, synced.get_json()
    refreshes = [r for r in github_api.oauth.token_requests
                 if r["grant_type"] == "refresh_token"]
    assert [r["refresh_token"] for r in refreshes] == [old["refresh_token"]]
    new = stored_credentials(settings)
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert (new["organization"], new["base_url"]) == (ORGANIZATION, github_api.base_url)
    assert set(github_api.authorizations) == {new["access_token"]}
    assert found_verdicts(client, auth) == served.expected


# --- disconnect ----------------------------------------------------------------------------


def connect_through_oauth(client: FlaskClient, auth: dict[str, str], settings: Settings,
                          github_api: GithubServer) -> dict[str, Any]:
    """An active OAuth connection (jobs inline); its stored credentials."""
    answer = callback(client, authorize(start(client, auth, organization=ORGANIZATION,
                                              base_url=github_api.base_url)))
    assert answer["http"] == 200 and answer["status"] == "active", answer
    return stored_credentials(settings)


def disconnected(client: FlaskClient, auth: dict[str, str], settings: Settings,
                 *secrets_: str) -> bool:
    """Disconnect; check the credentials are gone and no secret was answered; credentialsRevoked."""
    resp = client.delete(DISCONNECT, headers=auth)
    assert resp.status_code == 200, resp.get_json()
    assert not any(secret in resp.get_data(as_text=True) for secret in secrets_)
    with session_factory(settings)() as s:
        (conn,) = s.scalars(select(Connection)).all()
    assert conn.status == ConnectionStatus.DISCONNECTED and conn.credentials_encrypted is None
    return bool(resp.get_json()["credentialsRevoked"])


@pytest.mark.parametrize("expiring", [False, True], ids=["oauth-app", "github-app"])
def test_disconnect_revokes_the_grant_at_github_and_its_token_stops_working(
        api, auth, settings, github_api, caplog, expiring):
    github_api.serve(seed_estate(github_api.base_url, allowed_public_repos=()),
                     GithubOAuth(expiring=expiring))
    client = api(inline=True)
    creds = connect_through_oauth(client, auth, settings, github_api)
    issued = creds["access_token"]
    connector(creds).verify()  # the token works until the grant is deleted

    with caplog.at_level(logging.DEBUG):
        assert disconnected(client, auth, settings, issued, OAUTH_CLIENT_SECRET) is True

    # One DELETE on the connection's API host, Basic auth with the app's client id and secret,
    # the token in a JSON body.
    assert github_api.hits(REVOKE) == [f"DELETE /api/v3/applications/{OAUTH_CLIENT_ID}/grant"]
    assert github_api.oauth.revocations == [{
        "client_id": OAUTH_CLIENT_ID, "username": OAUTH_CLIENT_ID,
        "password": OAUTH_CLIENT_SECRET, "access_token": issued,
        "content_type": "application/json"}]
    with pytest.raises(AuthFailed):
        connector(creds).verify()
    if expiring:  # the grant's refresh token went with it
        refreshed = requests.post(f"{github_api.root}/login/oauth/access_token", timeout=10,
                                  headers={"Accept": "application/json"},
                                  data={"grant_type": "refresh_token",
                                        "refresh_token": creds["refresh_token"],
                                        "client_id": OAUTH_CLIENT_ID,
                                        "client_secret": OAUTH_CLIENT_SECRET})
        assert refreshed.json()["error"] == "bad_refresh_token"
    assert issued not in caplog.text and OAUTH_CLIENT_SECRET not in caplog.text


def test_disconnecting_a_personal_access_token_revokes_nothing(api, auth, settings, estate,
                                                               github_api):
    client = api(inline=True)  # the OAuth app is configured, but this token is the account's
    raw = {"token": TOKEN, "organization": ORGANIZATION, "base_url": github_api.base_url}
    connected = client.post("/api/v1/integrations/github/connect", headers=auth,
                            json={"credentials": raw})
    assert connected.status_code in (200, 202), connected.get_json()
    assert settled_status(client, auth)["status"] == "active"

    assert disconnected(client, auth, settings, TOKEN) is False
    assert github_api.hits(r"/applications/") == [] and github_api.oauth.revocations == []
    connector(raw).verify()  # still the account's working token


def test_a_revoke_github_answers_with_5xx_still_disconnects(api, auth, settings, estate,
                                                            github_api, caplog):
    client = api(inline=True)
    creds = connect_through_oauth(client, auth, settings, github_api)
    github_api.fail(r"/applications/[^/]+/grant$", 502)

    with caplog.at_level(logging.WARNING, logger="engine.oauth"):
        assert disconnected(client, auth, settings, creds["access_token"],
                            OAUTH_CLIENT_SECRET) is False
    assert len(github_api.hits(REVOKE)) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "engine.oauth"] == [
        "revoking the github grant failed: GitHub is unavailable to revoke the OAuth grant "
        "(HTTP 502)"]
    assert creds["access_token"] not in caplog.text and OAUTH_CLIENT_SECRET not in caplog.text
    github_api.faults.clear()
    connector(creds).verify()  # GitHub did not revoke it, and the answer said so


def test_a_token_the_user_already_revoked_at_github_is_not_reported_revoked(
        api, auth, settings, estate, github_api, caplog):
    client = api(inline=True)
    creds = connect_through_oauth(client, auth, settings, github_api)
    github_api.oauth.access.clear()  # the user revoked the app under Settings > Applications

    with caplog.at_level(logging.WARNING, logger="engine.oauth"):
        assert disconnected(client, auth, settings, creds["access_token"]) is False
    assert [r["access_token"] for r in github_api.oauth.revocations] == [creds["access_token"]]
    assert "HTTP 422" in caplog.text and "already revoked" in caplog.text


def test_a_wrong_client_secret_is_not_reported_revoked(api, auth, settings, estate,
                                                       github_api, caplog):
    creds = connect_through_oauth(api(inline=True), auth, settings, github_api)
    other = oauth_settings(github_api)["oauth_clients"]["github"].model_copy(
        update={"client_secret": SecretStr("f" * 40)})
    client = api(inline=True, oauth_clients={"github": other})

    with caplog.at_level(logging.WARNING, logger="engine.oauth"):
        assert disconnected(client, auth, settings, creds["access_token"], "f" * 40) is False
    assert [r["password"] for r in github_api.oauth.revocations] == ["f" * 40]
    assert "HTTP 404" in caplog.text and "f" * 40 not in caplog.text
    connector(creds).verify()  # the grant stands


def test_the_grant_is_deleted_on_the_connections_api_host():
    github_com = GithubCredentials.model_validate(
        {"access_token": "gho_" + "a" * 36, "organization": ORGANIZATION})
    ghe = github_com.model_copy(update={"base_url": "https://ghe.example.com/api/v3"})
    assert grant_url(github_com, "Ov23li/x") == (
        "https://api.github.com/applications/Ov23li%2Fx/grant")
    assert grant_url(ghe, OAUTH_CLIENT_ID) == (
        f"https://ghe.example.com/api/v3/applications/{OAUTH_CLIENT_ID}/grant")
    assert GithubConnector.oauth is not None and GithubConnector.oauth.revoke is revoke_grant
    assert GithubConnector.oauth.revoke_url is None


# --- refusals ------------------------------------------------------------------------------


def refused(resp: Any, status: int, code: str, fields: list[str] | None = None) -> None:
    body = resp.get_json()
    assert resp.status_code == status, body
    assert body["success"] is False and body["error"]["code"] == code, body
    if fields is not None:
        assert [f["field"] for f in body["error"]["fields"]] == fields, body


@pytest.mark.parametrize("params, code, fields", [
    ({}, "invalid_credentials", ["organization"]),
    ({"organization": "not an org!"}, "invalid_credentials", ["organization"]),
    ({"organization": ORGANIZATION, "base_url": "ftp://ghe.example.com"},
     "invalid_credentials", ["base_url"]),
    ({"organisation": ORGANIZATION}, "invalid_request", ["organisation"]),
    ({"organization": ORGANIZATION, "access_token": "gho_" + "a" * 36}, "invalid_request",
     ["access_token"]),
    ({"organization": ORGANIZATION, "base_url": "https://ghe.example.com/" + "a" * 3000},
     "invalid_request", None),
    ({"Organization": ORGANIZATION}, "invalid_request", None),
])
def test_oauth_url_refuses_bad_parameters_before_sending_anyone_to_github(
        api, auth, settings, estate, params, code, fields):
    refused(api().get(OAUTH_URL, headers=auth, query_string=params), 422, code, fields)
    assert count(settings, OAuthState) == 0


def test_the_organization_is_bound_to_the_state_not_taken_from_the_callback(
        api, auth, settings, estate, github_api):
    client = api(inline=True)
    query = authorize(start(client, auth, organization=ORGANIZATION,
                            base_url=github_api.base_url))
    answer = callback(client, {**query, "organization": "evil-corp",
                               "base_url": "http://127.0.0.1:9/api/v3"})
    assert answer["http"] == 200 and answer["status"] == "active", answer
    creds = stored_credentials(settings)
    assert (creds["organization"], creds["base_url"]) == (ORGANIZATION, github_api.base_url)


def test_a_user_who_denies_access_at_github_connects_nothing(api, auth, settings, github_api):
    github_api.serve(seed_estate(github_api.base_url), GithubOAuth(deny=True))
    client = api()
    query = authorize(start(client, auth, organization=ORGANIZATION))
    assert query["error"] == "access_denied"
    refused(client.get(CALLBACK, query_string=query), 400, "oauth_denied")
    assert count(settings, Connection) == 0


def test_a_code_github_rejects_with_http_200_is_refused(api, auth, settings, estate):
    client = api()
    query = authorize(start(client, auth, organization=ORGANIZATION))
    refused(client.get(CALLBACK, query_string={**query, "code": "0" * 20}), 400,
            "oauth_code_rejected")
    assert count(settings, Connection) == 0


def test_an_oauth_app_the_organization_has_not_approved_fails_verification_saying_so(
        github, github_api):
    github_api.fail(r"/orgs/acme-corp$", 403, message=(
        "Although you appear to have the correct authorization credentials, the `acme-corp` "
        "organization has enabled OAuth App access restrictions, meaning that data access to "
        "third-parties is limited."))
    raw = {"access_token": "gho_" + "b" * 36, "organization": ORGANIZATION,
           "base_url": github.base_url}
    with pytest.raises(PermissionMissing) as failed:
        connector(raw).verify()
    assert "approves this app" in failed.value.message
    assert failed.value.details["permission"] == "oauth_app_approval"


# --- the custom endpoint gate on base_url --------------------------------------------------


def test_github_enterprise_over_https_is_accepted_without_the_custom_endpoint_flag(
        api, auth, settings):
    locked = api(allow_custom_endpoints=False)
    auth_url = start(locked, auth, organization=ORGANIZATION,
                     base_url="https://ghe.example.com/api/v3")
    assert auth_url.startswith("http")
    assert count(settings, OAuthState) == 1


@pytest.mark.parametrize("base_url", [
    "http://ghe.example.com/api/v3",
    "https://127.0.0.1/api/v3",
    "https://169.254.169.254/latest",
    "https://ghe/api/v3",
])
def test_a_base_url_on_http_or_a_local_address_needs_the_flag(api, auth, settings, estate,
                                                             github_api, base_url):
    locked = api(allow_custom_endpoints=False)
    resp = locked.get(OAUTH_URL, headers=auth,
                      query_string={"organization": ORGANIZATION, "base_url": base_url})
    refused(resp, 422, "invalid_credentials", ["base_url"])
    assert "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS" in resp.get_json()["error"]["message"]
    connected = locked.post("/api/v1/integrations/github/connect", headers=auth, json={
        "credentials": {"token": TOKEN, "organization": ORGANIZATION, "base_url": base_url}})
    refused(connected, 422, "invalid_credentials", ["base_url"])
    assert count(settings, OAuthState) == count(settings, Connection) == 0
    assert TOKEN not in connected.get_data(as_text=True)


def test_the_flag_lets_the_local_server_through(api, auth, settings, github_api):
    assert settings.allow_custom_endpoints
    start(api(), auth, organization=ORGANIZATION, base_url=github_api.base_url)
    assert count(settings, OAuthState) == 1


def test_github_declares_its_oauth_app():
    spec = GithubConnector.oauth
    assert spec is not None
    assert (spec.authorize_url, spec.token_url) == (
        "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token")
    assert spec.scopes == ("repo", "admin:org") and spec.pkce
    assert spec.params == ("organization", "base_url")
    assert set(spec.params) <= set(GithubConnector.credentials_model.model_fields)
