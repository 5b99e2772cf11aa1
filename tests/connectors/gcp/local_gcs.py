"""A local HTTP server answering the Cloud Storage JSON API shape, with scripted failures.

It serves what the connector calls (bucket list with pagination, bucket IAM policies) and an
OAuth token endpoint for service account keys, and can answer any of them with an error status
and headers first, so provider limits are tested through the real google-cloud-storage client.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REASONS = {400: "invalid", 401: "required", 403: "forbidden", 404: "notFound",
           429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
ACCESS_TOKEN = "ya29.local-test-token"


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1  # None: every time
    reason: str | None = None
    after: int = 0  # matching requests answered normally before this fault starts


@dataclass
class Seen:
    method: str
    route: str
    path: str
    authorization: str | None
    body: str = ""


class LocalGcs:
    """The server's state: buckets, policies, scripted faults and every request seen."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, list[dict[str, Any]]] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.seen: list[Seen] = []
        self.require_token = False
        self.endpoint = ""
        self._lock = threading.Lock()

    def add_bucket(self, name: str, **properties: Any) -> None:
        self.buckets[name] = {"kind": "storage#bucket", "id": name, "name": name,
                              "location": "US", "projectNumber": "1234",
                              "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True},
                                                   "publicAccessPrevention": "enforced"},
                              **properties}
        self.policies.setdefault(name, [])

    def fail(self, route: str, status: int, *, times: int | None = 1, after: int = 0,
             headers: dict[str, str] | None = None, reason: str | None = None) -> None:
        """Answer `route` ("list", "iam", "iam:<bucket>", "token") with `status`.

        The fault starts after `after` normal answers and lasts `times` answers (None: forever).
        """
        self.faults.setdefault(route, []).append(
            Fault(status, dict(headers or {}), times, reason, after))

    def requests_to(self, route: str) -> list[Seen]:
        return [s for s in self.seen if s.route == route or s.route.startswith(route + ":")]

    def take_fault(self, *routes: str) -> Fault | None:
        with self._lock:
            for route in routes:
                queue = self.faults.get(route) or []
                if queue:
                    fault = queue[0]
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            queue.pop(0)
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        gcs = self.server.gcs
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        iam = re.fullmatch(r"/storage/v1/b/([-.\w]+)/iam", url.path)
        routes: tuple[str, ...]
        if method == "GET" and url.path == "/storage/v1/b":
            route, routes = "list", ("list",)
        elif method == "GET" and iam:
            route, routes = f"iam:{iam.group(1)}", (f"iam:{iam.group(1)}", "iam")
        elif method == "POST" and url.path == "/token":
            route, routes = "token", ("token",)
        else:
            route, routes = "unknown", ()
        gcs.seen.append(Seen(method, route, self.path, self.headers.get("Authorization"), body))
        fault = gcs.take_fault(*routes)
        if fault is not None:
            return self._error(fault.status, fault.headers, fault.reason)
        if route == "token":
            return self._json(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600,
                                     "token_type": "Bearer"})
        if gcs.require_token and self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._error(401, {"WWW-Authenticate": "Bearer"}, None)
        if route == "list":
            return self._list(gcs, query)
        if route.startswith("iam:"):
            name = route.split(":", 1)[1]
            if name not in gcs.buckets:
                return self._error(404, {}, None)
            return self._json(200, {"kind": "storage#policy", "version": 3, "etag": "CAE=",
                                    "resourceId": f"projects/_/buckets/{name}",
                                    "bindings": gcs.policies.get(name, [])})
        return self._error(404, {}, None)

    def _list(self, gcs: LocalGcs, query: dict[str, str]) -> None:
        names = sorted(gcs.buckets)
        start = int(query.get("pageToken") or 0)
        size = int(query.get("maxResults") or 1000)
        page = names[start:start + size]
        answer: dict[str, Any] = {"kind": "storage#buckets",
                                  "items": [gcs.buckets[n] for n in page]}
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        self._json(200, answer)

    def _error(self, status: int, headers: dict[str, str], reason: str | None) -> None:
        message = f"local server answers {status}"
        self._json(status, {"error": {"code": status, "message": message, "errors": [
            {"domain": "global", "reason": reason or REASONS.get(status, "error"),
             "message": message}]}}, headers)

    def _json(self, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, gcs: LocalGcs) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.gcs = gcs


@contextmanager
def local_gcs_server() -> Iterator[LocalGcs]:
    """A LocalGcs on a free loopback port; its `endpoint` is set while it runs."""
    gcs = LocalGcs()
    server = _Server(gcs)
    gcs.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield gcs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
