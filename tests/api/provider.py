"""A local OAuth 2.0 provider (authorization code + PKCE S256, refresh, revoke, a tiny API) and
an in-process connector that connects to it through OAuth.

The provider is a real HTTP server on loopback; the engine reaches it through authlib and the
connector through requests, exactly as it would reach GitHub or Okta.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast
from urllib.parse import urlencode

import requests
from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server

from connectors.base import (
    AuthFailed,
    AuthType,
    Category,
    ConfigParam,
    Connector,
    OAuthSpec,
    OAuthToken,
    Result,
    Severity,
    check,
    collector,
)
from tests.emulators import free_port

CLIENT_ID = "evidence-test-client"
CLIENT_SECRET = "client-secret-for-tests"


@dataclass
class Issued:
    access: str
    refresh: str
    expires: float


@dataclass
class ProviderState:
    """Everything the provider knows; tests read and steer it."""

    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)
    revoked: list[str] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    expires_in: int = 3600
    repos: list[dict[str, Any]] = field(default_factory=lambda: [
        {"name": "api", "private": True}, {"name": "docs", "private": False}])


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def provider_app(state: ProviderState) -> Flask:
    app = Flask("oauth-provider")

    def error(code: str, status: int = 400) -> Any:
        return jsonify({"error": code, "error_description": code.replace("_", " ")}), status

    def issue() -> dict[str, Any]:
        access, refresh = "at-" + secrets.token_hex(16), "rt-" + secrets.token_hex(16)
        state.access[access] = time.time() + state.expires_in
        state.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer",
                "expires_in": state.expires_in, "scope": "read:org repo"}

    @app.get("/authorize")
    def authorize() -> Any:
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            return error("unauthorized_client")
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return error("invalid_request")
        code = "code-" + secrets.token_hex(8)
        state.codes[code] = {"challenge": args["code_challenge"],
                             "redirect_uri": args["redirect_uri"]}
        target = args["redirect_uri"] + "?" + urlencode({"code": code, "state": args["state"]})
        return redirect(target)

    @app.post("/token")
    def token() -> Any:
        form = request.form.to_dict()
        state.token_requests.append(form)
        auth = request.authorization
        client_id = form.get("client_id") or (auth.username if auth else None)
        secret = form.get("client_secret") or (auth.password if auth else None)
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            return error("invalid_client", 401)
        if form.get("grant_type") == "authorization_code":
            grant = state.codes.pop(form.get("code", ""), None)  # a code works once
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return error("invalid_grant")
            if _s256(form.get("code_verifier", "")) != grant["challenge"]:
                return error("invalid_grant")
            return jsonify(issue())
        if form.get("grant_type") == "refresh_token":
            old = form.get("refresh_token", "")
            if old not in state.refresh:
                return error("invalid_grant")
            state.refresh.discard(old)  # rotating refresh tokens, like most providers
            for access in list(state.access):
                state.access[access] = min(state.access[access], time.time())
            return jsonify(issue())
        return error("unsupported_grant_type")

    @app.post("/revoke")
    def revoke() -> Any:
        token = request.form.get("token", "")
        state.revoked.append(token)
        state.refresh.discard(token)
        state.access.pop(token, None)
        return "", 200

    def bearer_ok() -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").removeprefix("bearer ")
        return state.access.get(token, 0) > time.time()

    @app.get("/api/me")
    def me() -> Any:
        return jsonify({"login": "octocat"}) if bearer_ok() else error("invalid_token", 401)

    @app.get("/api/repos")
    def repos() -> Any:
        return jsonify(state.repos) if bearer_ok() else error("invalid_token", 401)

    return app


@dataclass
class Provider:
    url: str
    state: ProviderState

    def reset(self) -> None:
        self.state.__init__()  # type: ignore[misc]


@contextmanager
def oauth_provider() -> Iterator[Provider]:
    """The provider on a free loopback port for as long as the context lasts."""
    state = ProviderState()
    port = free_port()
    server = make_server("127.0.0.1", port, provider_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{port}", state)
    finally:
        server.shutdown()


# --- the connector -------------------------------------------------------------------------

API: dict[str, str] = {"url": "http://127.0.0.1:9"}
"""Where the connector finds the provider's API (set by the fixture that starts it)."""


@dataclass(frozen=True)
class ProviderSession:
    token: str

    def get(self, path: str) -> Any:
        resp = requests.get(API["url"] + path, timeout=10,
                            headers={"Authorization": f"Bearer {self.token}"})
        if resp.status_code == 401:
            raise AuthFailed("the provider refused the access token")
        resp.raise_for_status()
        return resp.json()


@collector()
def collect_repos(session: ProviderSession) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], session.get("/api/repos"))


@check(id="oauthfake.repo.private", severity=Severity.MEDIUM, resource_type="oauthfake.repo",
       remediation="Make the repository private.", needs=collect_repos)
def repo_private(repos: list[dict[str, Any]]) -> Iterator[Result]:
    """Repositories are private."""
    for repo in repos:
        yield Result.of(f"repo:{repo['name']}", passing=repo["private"],
                        title=f"Repository {repo['name']} is "
                        + ("private" if repo["private"] else "public"),
                        data={"private": repo["private"]})


class OAuthFakeConnector(Connector):
    """Connects through OAuth to the local provider; its URLs come from the OAuth client
    settings (as an Okta org's would)."""

    id: ClassVar[str] = "oauthfake"
    name = "OAuth Fake"
    category = Category.DEVOPS
    auth_type = AuthType.OAUTH2
    icon = "oauthfake"
    credentials_model = OAuthToken
    oauth = OAuthSpec(authorize_url="http://127.0.0.1:9/authorize",
                      token_url="http://127.0.0.1:9/token", scopes=("read:org", "repo"),
                      revoke_url="http://127.0.0.1:9/revoke")
    config_params = (ConfigParam("org", "The organisation to audit"),
                     ConfigParam("webhook_key", "Signs webhook deliveries", secret=True))
    checks = (repo_private,)

    def session(self) -> ProviderSession:
        creds = cast(OAuthToken, self.credentials)
        return ProviderSession(creds.access_token.get_secret_value())

    def verify(self) -> dict[str, Any]:
        me = self.session().get("/api/me")
        return {"login": me["login"], "org": self.config.get("org")}
