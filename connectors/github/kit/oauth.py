"""GitHub's OAuth web flow, as the local GitHub server of the kit answers it (`GithubOAuth`)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

OAUTH_CLIENT_ID = "Ov23liEvidenceTest01"  # the shape of a github.com OAuth app's client id
OAUTH_CLIENT_SECRET = "0123456789abcdef0123456789abcdef01234567"  # noqa: S105 - test app
DOCS = "https://docs.github.com/rest"
OAUTH_CALLBACK = "https://evidence.example.com/api/v1/integrations/callback"


@dataclass
class GithubOAuth:
    """GitHub's OAuth web flow as github.com and GitHub Enterprise Server answer it.

    One registered app (client id, secret, callback URL). The authorize page approves at once
    (or denies, when `deny` is set) and redirects with a code; PKCE is S256 only. The token
    endpoint answers HTTP 200 even for errors (`{"error": "bad_verification_code"}`), and
    form-encoded unless asked for `Accept: application/json`. An OAuth app's token never
    expires; with `expiring` (a GitHub App with expiring user tokens) it lasts `expires_in`
    seconds and comes with a refresh token that works once. DELETE /applications/{client_id}/grant
    (HTTP Basic with the app's client id and secret, `{"access_token": …}`) deletes the grant:
    every token issued so far stops working (this server has one user).
    """

    client_id: str = OAUTH_CLIENT_ID
    client_secret: str = OAUTH_CLIENT_SECRET
    callback_url: str = OAUTH_CALLBACK
    expiring: bool = False
    expires_in: int = 28800
    deny: bool = False
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: dict[str, float | None] = field(default_factory=dict)  # token -> expiry
    refresh: set[str] = field(default_factory=set)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)  # form + "accept"
    revocations: list[dict[str, str]] = field(default_factory=list)  # what each DELETE carried

    def is_valid(self, token: str) -> bool:
        if token not in self.access:
            return False
        expiry = self.access[token]
        return expiry is None or expiry > time.time()

    def authorize(self, request: Request) -> Response:
        args = request.args.to_dict()
        self.authorize_requests.append(args)
        if args.get("client_id") != self.client_id:
            return text_response(404, "Not Found")  # GitHub shows a 404 page for an unknown app
        redirect = args.get("redirect_uri", self.callback_url)
        if not _under(redirect, self.callback_url):
            return text_response(400, "The redirect_uri MUST match the registered callback URL for "
                              "this application.")
        if "code_challenge" in args and args.get("code_challenge_method") != "S256":
            return text_response(400, "code_challenge_method must be S256")
        state = {"state": args["state"]} if "state" in args else {}
        if self.deny:
            return _redirect(redirect, {"error": "access_denied", "error_description":
                                        "The user has denied your application access.",
                                        **state})
        code = secrets.token_hex(10)
        self.codes[code] = {"redirect_uri": redirect, "scope": args.get("scope", ""),
                            "challenge": args.get("code_challenge", "")}
        return _redirect(redirect, {"code": code, **state})

    def token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_requests.append({**form, "accept": request.headers.get("Accept", "")})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                   self.client_secret):
            return self._answer(request, _oauth_error("incorrect_client_credentials"))
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh:
                return self._answer(request, _oauth_error("bad_refresh_token"))
            self.refresh.discard(form["refresh_token"])  # GitHub rotates refresh tokens
            return self._answer(request, self._issue(""))
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None:
            return self._answer(request, _oauth_error("bad_verification_code"))
        if "redirect_uri" in form and form["redirect_uri"] != grant["redirect_uri"]:
            return self._answer(request, _oauth_error("redirect_uri_mismatch"))
        if grant["challenge"] and _s256(form.get("code_verifier", "")) != grant["challenge"]:
            return self._answer(request, _oauth_error("bad_verification_code"))
        return self._answer(request, self._issue(grant["scope"]))

    def revoke_grant(self, request: Request, client_id: str) -> Response:
        """GitHub's "Delete an app authorization": 204, 422 for a token that is not valid."""
        auth = request.authorization
        user, password = ((auth.username or "", auth.password or "")
                          if auth is not None and auth.type == "basic" else ("", ""))
        body = request.get_json(silent=True)
        token = body.get("access_token") if isinstance(body, dict) else None
        self.revocations.append({
            "client_id": client_id, "content_type": request.mimetype, "username": user,
            "password": password, "access_token": token if isinstance(token, str) else ""})
        if (client_id, user, password) != (self.client_id, self.client_id, self.client_secret):
            return error_response(404, "Not Found")
        if not isinstance(token, str) or not self.is_valid(token):
            return error_response(422, "Validation Failed")
        self.access.clear()  # the grant's every token, and its refresh tokens
        self.refresh.clear()
        return Response(status=204)

    def _issue(self, requested: str) -> dict[str, Any]:
        access = "gho_" + secrets.token_hex(18)
        if not self.expiring:
            self.access[access] = None
            scopes = ",".join(sorted(s for s in requested.replace(",", " ").split() if s))
            return {"access_token": access, "token_type": "bearer", "scope": scopes}
        access = "ghu_" + access[4:]
        refresh = "ghr_" + secrets.token_hex(36)
        self.access[access] = time.time() + self.expires_in
        self.refresh.add(refresh)
        return {"access_token": access, "expires_in": self.expires_in,
                "refresh_token": refresh, "refresh_token_expires_in": 15897600,
                "token_type": "bearer", "scope": ""}

    @staticmethod
    def _answer(request: Request, body: dict[str, Any]) -> Response:
        if "application/json" in request.headers.get("Accept", ""):
            return json_response(body)
        return Response(urlencode({k: str(v) for k, v in body.items()}), status=200,
                        content_type="application/x-www-form-urlencoded; charset=utf-8")



def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


def text_response(status: int, body: str) -> Response:
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def _redirect(target: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in target else "?"
    return Response(status=302, headers={"Location": target + separator + urlencode(params)})


def _under(url: str, registered: str) -> bool:
    """GitHub: same scheme, host and port as the callback URL, path at or below its path."""
    a, b = urlsplit(url), urlsplit(registered)
    return ((a.scheme, a.netloc) == (b.scheme, b.netloc)
            and (a.path == b.path or a.path.startswith(b.path.rstrip("/") + "/")))


def _oauth_error(code: str) -> dict[str, str]:
    return {"error": code, "error_description": code.replace("_", " ").capitalize() + ".",
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/"
                         "troubleshooting-oauth-app-access-token-request-errors/#" + code}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def error_response(status: int, message: str) -> Response:
    """An error as GitHub's REST API answers one."""
    return json_response({"message": message, "documentation_url": DOCS, "status": str(status)},
                         status)
