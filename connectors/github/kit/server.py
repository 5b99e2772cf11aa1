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
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connectors.github.kit.estate import Estate, Repo
from connectors.github.kit.oauth import (
    DOCS,
    GithubOAuth,
    error_response,
    json_response,
)
from connectors.github.kit.shapes import (
    commit_json,
    hook_json,
    key_json,
    protection_json,
    workflow_json,
)
from connectors.testkit import free_port

PREFIX = "/api/v3"
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
        self.points = 0  # rate-limit points spent: every answer but a 304, as GitHub counts
        self.not_modified = 0  # 304 answers to a matching If-None-Match
        self._lock = threading.Lock()
        self._routes = Map([Rule(PREFIX + path, endpoint=name) for path, name in (
            ("/orgs/<org>", "org"),
            ("/orgs/<org>/repos", "org_repos"),
            ("/orgs/<org>/actions/permissions", "actions_permissions"),
            ("/orgs/<org>/actions/permissions/workflow", "workflow_permissions"),
            ("/repos/<owner>/<repo>/actions/permissions/workflow", "repo_workflow_permissions"),
            ("/repos/<owner>/<repo>/hooks", "hooks"),
            ("/repos/<owner>/<repo>/keys", "keys"),
            ("/repos/<owner>/<repo>/commits", "commits"),
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
        self.points = self.not_modified = 0
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
        response = self._conditional(request, self._answer(request))
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
            return json_response(fault.body, fault.status, fault.headers)
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
            return error_response(503, "No estate loaded")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            valid = token == estate.token or self.oauth.is_valid(token)
            if valid and scheme.lower() in ("token", "bearer"):
                self.authorizations.append(token)
            else:
                return error_response(401, "Bad credentials")
        try:
            endpoint, args = self._routes.bind_to_environ(request.environ).match(
                method="GET")
        except NotFound:
            return error_response(404, "Not Found")
        except HTTPException as exc:
            return error_response(exc.code or 400, exc.description or "Bad request")
        return getattr(self, f"_{endpoint}")(request, estate, **args)

    def _conditional(self, request: Request, response: Response) -> Response:
        """Give a GET's 200 an ETag; answer 304 (no rate-limit point) when the client sent it."""
        if request.method == "GET" and response.status_code == 200 and response.is_json:
            etag = '"' + hashlib.sha256(response.get_data()).hexdigest()[:40] + '"'
            response.headers["ETag"] = etag
            if etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
                response = Response(status=304, headers={"ETag": etag})
        with self._lock:
            if response.status_code == 304:
                self.not_modified += 1
            else:
                self.points += 1
        return response

    def _rate_headers(self) -> dict[str, str]:
        used = self.points
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
        return json_response(body, 200, {"Link": ", ".join(links)} if links else {})

    # --- endpoints ----------------------------------------------------------------------------

    def _org(self, request: Request, estate: Estate, org: str) -> Response:
        if org.lower() != estate.organization.login.lower():
            return error_response(404, "Not Found")
        spec = estate.organization
        public = sum(1 for r in estate.repos if r.visibility == "public")
        private = len(estate.repos) - public
        api = estate.base_url
        return json_response({
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
            "default_repository_permission": spec.default_repository_permission,
            "members_can_create_repositories": True,
            "members_can_create_public_repositories":
                spec.members_can_create_public_repositories,
            "members_can_create_private_repositories": True,
            "members_can_create_internal_repositories": True,
            "two_factor_requirement_enabled": spec.two_factor_required,
            "plan": {"name": spec.plan, "space": 976562499, "private_repos": 999999,
                     "filled_seats": 42, "seats": 50},
        })

    def _org_repos(self, request: Request, estate: Estate, org: str) -> Response:
        if org.lower() != estate.organization.login.lower():
            return error_response(404, "Not Found")
        return self._page(request, [self._repo_json(estate, r) for r in estate.repos])

    def _actions_permissions(self, request: Request, estate: Estate, org: str) -> Response:
        spec = estate.organization
        body: dict[str, Any] = {"enabled_repositories": spec.enabled_repositories}
        if spec.enabled_repositories != "none":
            body["allowed_actions"] = spec.allowed_actions
            if spec.allowed_actions == "selected":
                body["selected_actions_url"] = (f"{estate.base_url}/orgs/{spec.login}/actions/"
                                                "permissions/selected-actions")
        return json_response(body)

    def _repo(self, request: Request, estate: Estate, owner: str, repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
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
        return json_response(body)

    def _branch(self, request: Request, estate: Estate, owner: str, repo: str,
                branch: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None or spec.empty or branch != spec.default_branch:
            return error_response(404, "Branch not found")
        url = f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/branches/{branch}"
        protected = spec.protection is not None or spec.ruleset_only
        sha = hashlib.sha1(spec.name.encode(), usedforsecurity=False).hexdigest()
        return json_response({
            "name": branch,
            "commit": {"sha": sha, "url": f"{estate.base_url}/repos/{estate.organization.login}"
                                          f"/{spec.name}/commits/{sha}"},
            "_links": {"self": url, "html": f"https://github.com/{estate.organization.login}/"
                                            f"{spec.name}/tree/{branch}"},
            "protected": protected,
            "protection": {"enabled": protected,
                           "required_status_checks": _status_checks_summary(spec)},
            "protection_url": f"{url}/protection",
        })

    def _protection(self, request: Request, estate: Estate, owner: str, repo: str,
                    branch: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None or spec.empty or branch != spec.default_branch:
            return error_response(404, "Branch not found")
        rule = spec.protection
        if rule is None or spec.ruleset_only:
            return error_response(404, "Branch not protected")
        url = (f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/branches/"
               f"{branch}/protection")
        body = protection_json(url, rule)
        return json_response(body)

    def _workflow_permissions(self, request: Request, estate: Estate, org: str) -> Response:
        if org.lower() != estate.organization.login.lower():
            return error_response(404, "Not Found")
        return json_response(workflow_json(estate))

    def _repo_workflow_permissions(self, request: Request, estate: Estate, owner: str,
                                   repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
        return json_response(workflow_json(estate, spec))

    def _hooks(self, request: Request, estate: Estate, owner: str, repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
        return self._page(request, [hook_json(estate, spec, i, h)
                                    for i, h in enumerate(spec.hooks)])

    def _keys(self, request: Request, estate: Estate, owner: str, repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
        return self._page(request, [key_json(estate, spec, i, title, read_only)
                                    for i, (title, read_only) in enumerate(spec.deploy_keys)])

    def _commits(self, request: Request, estate: Estate, owner: str, repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
        if spec.empty:
            return error_response(409, "Git Repository is empty.")
        author = request.args.get("author")
        return self._page(request, [commit_json(estate, spec, login, days)
                                    for login, days in spec.last_commits
                                    if author is None or login == author])

    def _collaborators(self, request: Request, estate: Estate, owner: str,
                       repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
        if request.args.get("affiliation", "all") != "outside":
            return error_response(422, "this server only lists outside collaborators")
        return self._page(request, [_user(estate, login, role, index)
                                    for index, (login, role)
                                    in enumerate(spec.outside_collaborators)])

    def _contents(self, request: Request, estate: Estate, owner: str, repo: str,
                  path: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None:
            return error_response(404, "Not Found")
        if spec.empty:
            return error_response(404, "This repository is empty.")
        if path != spec.codeowners:
            return error_response(404, "Not Found")
        text = b"* @acme-corp/platform\n/infra/ @acme-corp/sre\n"
        url = f"{estate.base_url}/repos/{estate.organization.login}/{spec.name}/contents/{path}"
        sha = hashlib.sha1(text, usedforsecurity=False).hexdigest()
        html = f"https://github.com/{estate.organization.login}/{spec.name}/blob/main/{path}"
        return json_response({
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
            return error_response(404, "Not Found")
        if not spec.dependabot_alerts:
            return error_response(404, "Vulnerability alerts are disabled.")
        return Response(status=204)

    def _security_fixes(self, request: Request, estate: Estate, owner: str,
                        repo: str) -> Response:
        spec = _find(estate, owner, repo)
        if spec is None or spec.security_updates == "off":
            return error_response(404, "Not Found")
        return json_response({"enabled": True, "paused": spec.security_updates == "paused"})

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


def _status_checks_summary(spec: Repo) -> dict[str, Any]:
    """The branch listing's summary of required status checks."""
    contexts = list(spec.protection.status_checks) if spec.protection else []
    return {"enforcement_level": "non_admins" if contexts else "off", "contexts": contexts,
            "checks": [{"context": c, "app_id": 15368} for c in contexts]}


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


@contextmanager
def github_server(page_size: int = 5) -> Iterator[GithubServer]:
    server = GithubServer(page_size).start()
    try:
        yield server
    finally:
        server.stop()
