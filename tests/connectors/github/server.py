"""A local GitHub REST server answering the shapes the connector reads, from an emulated estate.

It serves under /api/v3 like GitHub Enterprise Server, checks the token, pages every list through
`Link` headers with a small page size (whatever per_page the client asks), sends GitHub's
rate-limit headers, and can be told to answer given paths with given statuses (429 then 200,
401, 403, 503 forever) so the connector's limits are tested over real HTTP.

Like GitHub Enterprise Server it also serves the OAuth web flow at /login/oauth/authorize and
/login/oauth/access_token (see `GithubOAuth`), the API accepts the tokens it issues, and the
app revokes a grant with DELETE /api/v3/applications/{client_id}/grant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connectors.github.emulated import Estate, Repo
from tests.emulators import free_port

PREFIX = "/api/v3"
OAUTH_CLIENT_ID = "Ov23liEvidenceTest01"  # the shape of a github.com OAuth app's client id
OAUTH_CLIENT_SECRET = "0123456789abcdef0123456789abcdef01234567"  # noqa: S105 - test app
OAUTH_CALLBACK = "https://evidence.example.com/api/v1/integrations/callback"
DOCS = "https://docs.github.com/rest"
ROLES = ("read", "triage", "write", "maintain", "admin")
PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")
_GRANT = re.compile(re.escape(PREFIX) + r"/applications/(?P<client_id>[^/]+)/grant")


@dataclass
class Fault:
    """Answer requests whose path?query matches `pattern` with `status` (`times` times, or
    always when None)."""

    pattern: str
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None

    def matches(self, path: str) -> bool:
        return (self.times is None or self.times > 0) and re.search(self.pattern, path) is not None


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
            return _text(404, "Not Found")  # GitHub shows a 404 page for an unknown app
        redirect = args.get("redirect_uri", self.callback_url)
        if not _under(redirect, self.callback_url):
            return _text(400, "The redirect_uri MUST match the registered callback URL for "
                              "this application.")
        if "code_challenge" in args and args.get("code_challenge_method") != "S256":
            return _text(400, "code_challenge_method must be S256")
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
            return _error(404, "Not Found")
        if not isinstance(token, str) or not self.is_valid(token):
            return _error(422, "Validation Failed")
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
            return _json(body)
        return Response(urlencode({k: str(v) for k, v in body.items()}), status=200,
                        content_type="application/x-www-form-urlencoded; charset=utf-8")


class GithubServer:
    """The estate over HTTP on a free loopback port; `base_url` is what credentials point at."""

    def __init__(self, page_size: int = 5) -> None:
        self.page_size = page_size
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root + PREFIX
        self.estate: Estate | None = None
        self.oauth = GithubOAuth()
        self.authorizations: list[str] = []  # the token of every authenticated API request
        self.faults: list[Fault] = []
        self.requests: list[str] = []  # "GET /api/v3/orgs/acme-corp?…" in arrival order
        self._lock = threading.Lock()
        self._routes = Map([Rule(PREFIX + path, endpoint=name) for path, name in (
            ("/orgs/<org>", "org"),
            ("/orgs/<org>/repos", "org_repos"),
            ("/orgs/<org>/actions/permissions", "actions_permissions"),
            ("/repos/<owner>/<repo>", "repo"),
            ("/repos/<owner>/<repo>/branches/<path:branch>/protection", "protection"),
            ("/repos/<owner>/<repo>/branches/<path:branch>", "branch"),
            ("/repos/<owner>/<repo>/collaborators", "collaborators"),
            ("/repos/<owner>/<repo>/contents/<path:path>", "contents"),
            ("/repos/<owner>/<repo>/vulnerability-alerts", "vulnerability_alerts"),
            ("/repos/<owner>/<repo>/automated-security-fixes", "security_fixes"),
        )], strict_slashes=False)
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> GithubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def serve(self, estate: Estate, oauth: GithubOAuth | None = None) -> None:
        self.estate = estate
        self.oauth = oauth or GithubOAuth()
        self.faults.clear()
        self.requests.clear()
        self.authorizations.clear()

    def fail(self, pattern: str, status: int, *, times: int | None = None,
             message: str | None = None, headers: dict[str, str] | None = None) -> Fault:
        fault = Fault(pattern, status, {"message": message or _REASONS.get(status, "Error"),
                                        "documentation_url": DOCS, "status": str(status)},
                      headers or {}, times)
        self.faults.append(fault)
        return fault

    def hits(self, pattern: str) -> list[str]:
        return [r for r in self.requests if re.search(pattern, r)]

    # --- WSGI ---------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self._lock:
            query = request.query_string.decode()
            self.requests.append(f"{request.method} {request.path}" + (f"?{query}" if query
                                                                        else ""))
        response = self._answer(request)
        for name, value in self._rate_headers().items():
            response.headers.setdefault(name, value)  # a fault's own headers win
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        query = request.query_string.decode()
        target = request.path + (f"?{query}" if query else "")
        with self._lock:
            fault = next((f for f in self.faults if f.matches(target)), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
        if fault is not None:
            return _json(fault.body, fault.status, fault.headers)
        with self._lock:
            if request.path == "/login/oauth/authorize" and request.method == "GET":
                return self.oauth.authorize(request)
            if request.path == "/login/oauth/access_token" and request.method == "POST":
                return self.oauth.token(request)
            grant = _GRANT.fullmatch(request.path)
            if grant is not None and request.method == "DELETE":
                return self.oauth.revoke_grant(request, grant["client_id"])
        estate = self.estate
        if estate is None:
            return _error(503, "No estate loaded")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            valid = token == estate.token or self.oauth.is_valid(token)
            if valid and scheme.lower() in ("token", "bearer"):
                self.authorizations.append(token)
            else:
                return _error(401, "Bad credentials")
        try:
            endpoint, args = self._routes.bind_to_environ(request.environ).match(
                method="GET")
        except NotFound:
            return _error(404, "Not Found")
        except HTTPException as exc:
            return _error(exc.code or 400, exc.description or "Bad request")
        return getattr(self, f"_{endpoint}")(request, estate, **args)

    def _rate_headers(self) -> dict[str, str]:
        used = len(self.requests)
        return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(max(0, 5000 - used)),
                "X-RateLimit-Used": str(used), "X-RateLimit-Resource": "core",
                "X-RateLimit-Reset": str(int(time.time()) + 3600),
                "X-GitHub-Api-Version-Selected": "2022-11-28"}

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """One page of a list, with GitHub's Link header (first/prev/next/last)."""
        per_page = min(int(request.args.get("per_page", 30)), 100, self.page_size)
        page = max(1, int(request.args.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        body = items[(page - 1) * per_page: page * per_page]
        links = []
        for rel, number in (("prev", page - 1), ("next", page + 1), ("last", last),
                            ("first", 1)):
            if 1 <= number <= last and not (rel in ("last", "first") and number == page):
                params = {**request.args.to_dict(), "per_page": str(per_page),
                          "page": str(number)}
                url = f"{request.host_url.rstrip('/')}{request.path}?{urlencode(params)}"
                links.append(f'<{url}>; rel="{rel}"')
        return _json(body, 200, {"Link": ", ".join(links)} if links else {})

    # --- endpoints ----------------------------------------------------------------------------

    def _org(self, request: Request, estate: Estate, org: str) -> Response:
        if org.lower() != estate.organization.login.lower():
            return _error(404, "Not Found")
        spec = estate.organization
        public = sum(1 for r in estate.repos if r.visibility == "public")
        private = len(estate.repos) - public
        api = estate.base_url
        return _json({
            "login": spec.login, "id": 90210, "node_id": "O_kgDOAAFgIg",
            "url": f"{api}/orgs/{spec.login}", "repos_url": f"{api}/orgs/{spec.login}/repos",
            "hooks_url": f"{api}/orgs/{spec.login}/hooks",
            "members_url": f"{api}/orgs/{spec.login}/members{{/member}}",
            "avatar_url": "https://avatars.githubusercontent.com/u/90210?v=4",
            "description": "Acme builds things", "name": spec.name, "company": None,
            "blog": "https://acme.example", "location": "Remote", "email": "it@acme.example",
            "is_verified": True, "has_organization_projects": True,
            "has_repository_projects": True, "public_repos": public, "public_gists": 0,
            "followers": 12, "following": 0, "html_url": f"https://github.com/{spec.login}",
            "created_at": "2018-03-01T09:00:00Z", "updated_at": "2025-01-15T10:00:00Z",
            "type": "Organization", "total_private_repos": private,
            "owned_private_repos": private, "private_gists": 0, "disk_usage": 48213,
            "collaborators": 11, "billing_email": "billing@acme.example",
            "default_repository_permission": "read", "members_can_create_repositories": False,
            "two_factor_requirement_enabled": spec.two_factor_required,
            "plan": {"name": spec.plan, "space": 976562499, "private_repos": 999999,
                     "filled_seats": 42, "seats": 50},
        })

    def _org_repos(self, request: Request, estate: Estate, org: str) -> Response:
        if org.lower() != estate.organization.login.lower():
            return _error(404, "Not Found")
        return self._page(request, [self._repo_json(estate, r) for r in estate.repos])

    def _actions_permissions(self, request: Request, estate: Estate, org: str) -> Response:
        spec = estate.organization
        body: dict[str, Any] = {"enabled_repositories": spec.enabled_repositories}
        if spec.enabled_repositories != "none":
            body["allowed_actions"] = spec.allowed_actions
            if spec.allowed_actions == "selected":
                body["selected_actions_url"] = (f"{estate.base_url}/orgs/{spec.login}/actions/"
                                                "permissions/selected-actions")
        return _json(body)

    def _repo(self, request: Request, estate: Estate, owner: str, repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return _error(404, "Not Found")
        body = self._repo_json(estate, spec)
        on = {True: {"status": "enabled"}, False: {"status": "disabled"}}
        body.update({
            "subscribers_count": 7, "network_count": 0, "watchers_count": 3,
            "organization": {"login": estate.organization.login, "id": 90210,
                             "type": "Organization",
                             "url": f"{estate.base_url}/orgs/{estate.organization.login}"},
            "security_and_analysis": {
                "advanced_security": on[spec.secret_scanning and spec.visibility != "public"],
                "secret_scanning": on[spec.secret_scanning],
                "secret_scanning_push_protection": on[spec.push_protection],
                "secret_scanning_non_provider_patterns": on[False],
                "dependabot_security_updates": on[spec.security_updates == "on"],
            },
        })
        return _json(body)

    def _branch(self, request: Request, estate: Estate, owner: str, repo: str,
                branch: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None or spec.empty or branch != spec.default_branch:
            return _error(404, "Branch not found")
        url = f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/branches/{branch}"
        protected = spec.protection is not None or spec.ruleset_only
        sha = hashlib.sha1(spec.name.encode(), usedforsecurity=False).hexdigest()
        return _json({
            "name": branch,
            "commit": {"sha": sha, "url": f"{estate.base_url}/repos/{estate.organization.login}"
                                          f"/{spec.name}/commits/{sha}"},
            "_links": {"self": url, "html": f"https://github.com/{estate.organization.login}/"
                                            f"{spec.name}/tree/{branch}"},
            "protected": protected,
            "protection": {"enabled": protected,
                           "required_status_checks": {"enforcement_level": "off",
                                                      "contexts": [], "checks": []}},
            "protection_url": f"{url}/protection",
        })

    def _protection(self, request: Request, estate: Estate, owner: str, repo: str,
                    branch: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None or spec.empty or branch != spec.default_branch:
            return _error(404, "Branch not found")
        rule = spec.protection
        if rule is None or spec.ruleset_only:
            return _error(404, "Branch not protected")
        url = (f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/branches/"
               f"{branch}/protection")
        body: dict[str, Any] = {
            "url": url,
            "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": rule.enforce_admins},
            "required_linear_history": {"enabled": False},
            "allow_force_pushes": {"enabled": rule.force_pushes},
            "allow_deletions": {"enabled": False},
            "block_creations": {"enabled": False},
            "required_conversation_resolution": {"enabled": True},
            "lock_branch": {"enabled": False},
            "allow_fork_syncing": {"enabled": False},
        }
        if rule.approvals > 0:
            body["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews",
                "dismiss_stale_reviews": rule.dismiss_stale, "require_code_owner_reviews": False,
                "required_approving_review_count": rule.approvals,
                "require_last_push_approval": False,
            }
        return _json(body)

    def _collaborators(self, request: Request, estate: Estate, owner: str,
                       repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return _error(404, "Not Found")
        if request.args.get("affiliation", "all") != "outside":
            return _error(422, "this server only lists outside collaborators")
        return self._page(request, [_user(estate, login, role, index)
                                    for index, (login, role)
                                    in enumerate(spec.outside_collaborators)])

    def _contents(self, request: Request, estate: Estate, owner: str, repo: str,
                  path: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return _error(404, "Not Found")
        if spec.empty:
            return _error(404, "This repository is empty.")
        if path != spec.codeowners:
            return _error(404, "Not Found")
        text = b"* @acme-corp/platform\n/infra/ @acme-corp/sre\n"
        url = f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/contents/{path}"
        sha = hashlib.sha1(text, usedforsecurity=False).hexdigest()
        html = f"https://github.com/{estate.organization.login}/{spec.name}/blob/main/{path}"
        return _json({
            "type": "file", "encoding": "base64", "size": len(text),
            "name": path.rsplit("/", 1)[-1], "path": path,
            "content": base64.b64encode(text).decode(), "sha": sha, "url": url,
            "git_url": f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/git/"
                       f"blobs/{sha}",
            "html_url": html, "download_url": None,
            "_links": {"self": url, "git": None, "html": html},
        })

    def _vulnerability_alerts(self, request: Request, estate: Estate, owner: str,
                              repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return _error(404, "Not Found")
        if not spec.dependabot_alerts:
            return _error(404, "Vulnerability alerts are disabled.")
        return Response(status=204)

    def _security_fixes(self, request: Request, estate: Estate, owner: str,
                        repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None or spec.security_updates == "off":
            return _error(404, "Not Found")
        return _json({"enabled": True, "paused": spec.security_updates == "paused"})

    def _repo_json(self, estate: Estate, spec: Repo) -> dict[str, Any]:
        org = estate.organization.login
        api = f"{estate.base_url}/repos/{org}/{spec.name}"
        index = estate.repos.index(spec)
        return {
            "id": 700100 + index, "node_id": f"R_kgDO{700100 + index}", "name": spec.name,
            "full_name": f"{org}/{spec.name}", "private": spec.visibility != "public",
            "visibility": spec.visibility,
            "owner": {"login": org, "id": 90210, "type": "Organization",
                      "url": f"{estate.base_url}/users/{org}", "site_admin": False},
            "html_url": f"https://github.com/{org}/{spec.name}", "description": None,
            "fork": False, "url": api, "archived": spec.archived, "disabled": False,
            "default_branch": spec.default_branch, "language": "Python", "size": 1024,
            "created_at": "2020-05-01T12:00:00Z", "updated_at": "2025-01-10T08:00:00Z",
            "pushed_at": None if spec.empty else "2025-01-10T08:00:00Z",
            "has_issues": True, "has_wiki": False, "topics": [], "forks_count": 0,
            "stargazers_count": 0, "open_issues_count": 0, "is_template": False,
            "permissions": {"admin": True, "maintain": True, "push": True, "triage": True,
                            "pull": True},
        }


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """The server's request list is the log; stderr stays quiet."""


_REASONS = {401: "Bad credentials", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Server Error", 503: "Service Unavailable"}


def _find(estate: Estate, owner: str, name: str) -> Repo | None:
    if owner.lower() != estate.organization.login.lower():
        return None
    return next((r for r in estate.repos if r.name.lower() == name.lower()), None)


def _user(estate: Estate, login: str, role: str, index: int) -> dict[str, Any]:
    rank = ROLES.index(role)
    return {
        "login": login, "id": 5_000_000 + index, "node_id": f"U_kgDO{5_000_000 + index}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{5_000_000 + index}?v=4",
        "url": f"{estate.base_url}/users/{login}", "html_url": f"https://github.com/{login}",
        "type": "User", "site_admin": False, "role_name": role,
        "permissions": {p: i <= rank for i, p in enumerate(PERMISSIONS)},
    }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


def _text(status: int, body: str) -> Response:
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


def _error(status: int, message: str) -> Response:
    return _json({"message": message, "documentation_url": DOCS, "status": str(status)}, status)


@contextmanager
def github_server(page_size: int = 5) -> Iterator[GithubServer]:
    server = GithubServer(page_size).start()
    try:
        yield server
    finally:
        server.stop()
