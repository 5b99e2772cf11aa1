"""A local Okta API server: the shapes the connector reads, served from an emulated estate.

It speaks what the real okta SDK sends over HTTP: SSWS API tokens and OAuth 2.0 service apps
(private_key_jwt client assertions checked against the app's public key, scoped access tokens),
lists paged through `Link: <…?after=…>; rel="next"` headers (or `_links.next` in the body, where
Okta does that), Okta's error bodies, and the rate-limit headers of every answer. Tests can script
faults: answer a path with 429, 401, 403 or 503 a number of times, or always.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization

from connectors.okta.kit.estate import Estate, build_estate


def _scope_for(path: str) -> str | None:
    """The OAuth scope an endpoint needs (OAuth for Okta)."""
    if path.startswith("/api/v1/iam/") or (path.startswith("/api/v1/users/")
                                           and path.endswith("/roles")):
        return "okta.roles.read"
    if path.startswith("/api/v1/users"):
        return "okta.users.read"
    if path.startswith("/api/v1/policies"):
        return "okta.policies.read"
    return None


@dataclass
class Fault:
    """Answer paths starting with `prefix` with `status`, `times` times (None: always)."""

    prefix: str
    status: int
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Seen:
    """One request the server answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str
    status: int
    at: float


_SUMMARIES = {
    400: ("E0000001", "Api validation failed"),
    401: ("E0000011", "Invalid token provided"),
    403: ("E0000006", "You do not have permission to perform the requested action"),
    404: ("E0000007", "Not found: Resource not found"),
    429: ("E0000047", "API call exceeded rate limit due to too many requests."),
    500: ("E0000009", "Internal Server Error"),
    503: ("E0000010", "Service is temporarily unavailable"),
}


class OktaServer:
    """An Okta org on a loopback port, serving an estate; `url` is its org URL."""

    def __init__(self, page_size: int = 2, rate_limit: int | None = None,
                 rate_window: float = 60.0) -> None:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.okta = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.page_size = page_size
        self.estate: Estate = build_estate(self.url)
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.granted_scopes: set[str] = set(self.estate.granted_scopes)
        self._public_key = serialization.load_pem_private_key(
            self.estate.private_key_pem.encode(), password=None).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._tokens: dict[str, set[str]] = {}  # access token -> its scopes
        self._used_jtis: set[str] = set()
        self._lock = threading.Lock()
        self.rate_limit = rate_limit
        """Requests per endpoint and window, as Okta counts them (None: unlimited); the
        X-Rate-Limit-* headers then tell the truth, and a request over the limit gets a 429."""
        self.rate_window = rate_window
        self._windows: dict[str, tuple[float, int]] = {}  # bucket -> (window start, used)
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,),
                                        daemon=True)

    def start(self) -> OktaServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def fail(self, prefix: str, status: int, *, times: int | None = 1,
             headers: dict[str, str] | None = None) -> Fault:
        fault = Fault(prefix, status, times, dict(headers or {}))
        with self._lock:
            self.faults.append(fault)
        return fault

    def requests_to(self, prefix: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(prefix)]

    # --- what the handler calls -------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.prefix) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def spend(self, path: str) -> dict[str, str] | None:
        """Count one request against its endpoint's window: the X-Rate-Limit-* headers of the
        answer, or None when the server is not rate-limited."""
        if self.rate_limit is None:
            return None
        parts = path.strip("/").split("/")
        bucket = "/".join(parts[:3] + parts[4:]) if len(parts) > 3 else path  # ids dropped
        with self._lock:
            now = time.time()
            start, used = self._windows.get(bucket, (now, 0))
            if now - start >= self.rate_window:
                start, used = now, 0
            self._windows[bucket] = (start, used + 1)
        reset = math.ceil(start + self.rate_window)
        return {"X-Rate-Limit-Limit": str(self.rate_limit),
                "X-Rate-Limit-Remaining": str(max(0, self.rate_limit - used - 1)),
                "X-Rate-Limit-Reset": str(reset), "X-Over-Limit": str(used >= self.rate_limit)}

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def issue_token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """The client credentials grant with a private_key_jwt client assertion."""
        def one(name: str) -> str:
            return (form.get(name) or [""])[0]

        if one("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "The grant type is not supported."}
        if one("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:" \
                                           "jwt-bearer":
            return 401, {"error": "invalid_client",
                         "error_description": "Client authentication failed."}
        try:
            claims = jwt.decode(one("client_assertion"), self._public_key,
                                algorithms=["RS256"], audience=f"{self.url}/oauth2/v1/token",
                                issuer=self.estate.client_id,
                                options={"require": ["exp", "iat", "jti", "sub"]})
        except jwt.InvalidTokenError:
            return 401, {"error": "invalid_client",
                         "error_description": "The client_assertion signature is invalid."}
        with self._lock:
            if claims["sub"] != self.estate.client_id or claims["jti"] in self._used_jtis:
                return 401, {"error": "invalid_client",
                             "error_description": "The client_assertion token is invalid."}
            self._used_jtis.add(claims["jti"])
        scopes = set(one("scope").split())
        if not scopes or not scopes <= self.granted_scopes:
            return 400, {"error": "invalid_scope", "error_description":
                         "One or more scopes are not configured for the authorization server "
                         "resource."}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = scopes
        return 200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token,
                     "scope": " ".join(sorted(scopes))}

    def authorize(self, header: str, path: str) -> int | None:
        """None when the Authorization header may read path, else the error status."""
        kind, _, credential = header.partition(" ")
        if kind == "SSWS":
            return None if credential == self.estate.api_token else 401
        if kind == "Bearer":
            with self._lock:
                scopes = self._tokens.get(credential)
            if scopes is None:
                return 401
            needed = _scope_for(path)
            return None if needed is None or needed in scopes else 403
        return 401

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, list[str]]:
        """(status, body, Link header values) for a GET on the management API."""
        estate = self.estate
        parts = path.strip("/").split("/")  # api, v1, ...
        if path == "/api/v1/users":
            listed = [u for u in estate.users if u["status"] != "DEPROVISIONED"]
            wanted = (query.get("filter") or [""])[0]
            if wanted:  # the one filter the connector sends: status eq "ACTIVE"
                status, _, value = wanted.partition(" eq ")
                if status != "status" or not value.startswith('"'):
                    return _error(400)
                listed = [u for u in estate.users if u["status"] == value.strip('"')]
            return self._page(path, query, listed)
        if len(parts) == 5 and parts[2] == "users" and parts[4] == "factors":
            if not any(u["id"] == parts[3] for u in estate.users):
                return _error(404)
            return 200, estate.factors.get(parts[3], []), []
        if len(parts) == 4 and parts[2] == "users":
            user = next((u for u in estate.users if u["id"] == parts[3]), None)
            return (200, user, []) if user else _error(404)
        if len(parts) == 5 and parts[2] == "users" and parts[4] == "roles":
            return 200, estate.roles.get(parts[3], []), []
        if path == "/api/v1/policies":
            policy_type = (query.get("type") or [""])[0]
            if policy_type not in estate.policies:
                return _error(400)
            return self._page(path, query, estate.policies[policy_type])
        if len(parts) == 5 and parts[2] == "policies" and parts[4] == "rules":
            if parts[3] not in estate.rules:
                return _error(404)
            return 200, estate.rules[parts[3]], []
        if path == "/api/v1/iam/assignees/users":
            return self._assignees(query)
        return _error(404)

    def _page(self, path: str, query: dict[str, list[str]],
              items: list[dict[str, Any]]) -> tuple[int, Any, list[str]]:
        limit = min(int((query.get("limit") or [str(self.page_size)])[0]), self.page_size)
        after = query.get("after")
        start = 0
        if after:
            ids = [item["id"] for item in items]
            if after[0] not in ids:
                return _error(400)
            start = ids.index(after[0]) + 1
        page = items[start:start + limit]
        others = {k: v for k, v in query.items() if k not in ("after", "limit")}
        base = {**{k: v[0] for k, v in others.items()}, "limit": str(limit)}
        links = [f'<{self.url}{path}?{urlencode(base)}>; rel="self"']
        if start + limit < len(items):
            links.append(f'<{self.url}{path}?{urlencode({**base, "after": page[-1]["id"]})}>; '
                         'rel="next"')
        return 200, page, links

    def _assignees(self, query: dict[str, list[str]]) -> tuple[int, Any, list[str]]:
        admins = [u for u in self.estate.users if u["id"] in self.estate.roles]
        status, page, links = self._page("/api/v1/iam/assignees/users", query, admins)
        if status != 200:
            return status, page, links
        body: dict[str, Any] = {"value": [
            {"id": u["id"], "orn": f"orn:okta:directory:00o1acme:users:{u['id']}",
             "_links": {"self": {"href": f"{self.url}/api/v1/users/{u['id']}"},
                        "roles": {"href": f"{self.url}/api/v1/users/{u['id']}/roles"}}}
            for u in page], "_links": {}}
        for link in links:
            if link.endswith('rel="next"'):
                body["_links"]["next"] = {"href": link.split(">")[0].lstrip("<")}
        return 200, body, []


def _error(status: int) -> tuple[int, dict[str, Any], list[str]]:
    code, summary = _SUMMARIES.get(status, ("E0000009", "Internal Server Error"))
    return status, {"errorCode": code, "errorSummary": summary, "errorLink": code,
                    "errorId": "oae" + secrets.token_hex(8), "errorCauses": []}, []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "nginx"
    sys_version = ""

    @property
    def okta(self) -> OktaServer:
        return self.server.okta  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return  # quiet: the test records what it needs in OktaServer.seen

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        fault = self.okta.take_fault(parts.path)
        if fault is not None:
            status, body, _ = _error(fault.status)
            self._send(parts.path, query, status, fault.body or body, [], fault.headers)
            return
        denied = self.okta.authorize(self.headers.get("Authorization", ""), parts.path)
        if denied is not None:
            status, body, _ = _error(denied)
            extra = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'} \
                if denied == 403 else {}
            self._send(parts.path, query, status, body, [], extra)
            return
        limits = self.okta.spend(parts.path)
        if limits is not None and limits.pop("X-Over-Limit") == "True":
            status, body, _ = _error(429)
            self._send(parts.path, query, status, body, [], limits)
            return
        status, body, links = self.okta.answer(parts.path, query)
        self._send(parts.path, query, status, body, links, limits)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        fault = self.okta.take_fault(parts.path)
        if fault is not None:
            status, body, _ = _error(fault.status)
            self._send(parts.path, {}, status, fault.body or body, [], fault.headers)
            return
        if parts.path != "/oauth2/v1/token":
            self._send(parts.path, {}, *_error(404))
            return
        status, body = self.okta.issue_token(form)
        self._send(parts.path, {}, status, body, [], {"Cache-Control": "no-store"})

    def _send(self, path: str, query: dict[str, list[str]], status: int, body: Any,
              links: list[str], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.okta.record(Seen(self.command, path, query, self.headers.get("Authorization", ""),
                              status, time.time()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Okta-Request-Id", secrets.token_hex(10))
        given = {k.lower() for k in (headers or {})}
        if "x-rate-limit-reset" not in given:
            self.send_header("X-Rate-Limit-Limit", "600")
            self.send_header("X-Rate-Limit-Remaining", "599")
            self.send_header("X-Rate-Limit-Reset", str(int(time.time()) + 60))
        for link in links:
            self.send_header("Link", link)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def okta_server(page_size: int = 2, rate_limit: int | None = None,
                rate_window: float = 60.0) -> Iterator[OktaServer]:
    """A started local Okta server with a freshly built estate (optionally rate-limited)."""
    server = OktaServer(page_size, rate_limit, rate_window).start()
    try:
        yield server
    finally:
        server.stop()
