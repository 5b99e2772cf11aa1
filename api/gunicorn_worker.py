"""gunicorn's threaded worker, answering the requests gunicorn itself refuses (a request line
over --limit-request-line, a header over --limit-request-field_size, malformed HTTP) in the
API's one JSON error shape instead of gunicorn's HTML page.

Run with `--worker-class api.gunicorn_worker.JsonErrorWorker` (cli/stack.py, Dockerfile,
docker-compose.yml). gunicorn still decides the status and logs the refusal; only the body
written to the client changes, and it never echoes what the client sent.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

WORKER_CLASS = f"{__name__}.JsonErrorWorker"


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML answer, to read the
    status gunicorn chose."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def refusal(status: int, cfg: Any) -> tuple[str, str]:
    """The stable code and an actionable message for a status gunicorn answered."""
    if status == 414:
        return ("request_line_too_long",
                f"the request line (method, path and query) is over {cfg.limit_request_line} "
                "bytes; send long values in a JSON body")
    if status == 431:
        return ("header_too_large",
                f"a request header is over {cfg.limit_request_field_size} bytes, or there are "
                f"over {cfg.limit_request_fields} headers")
    if status == 403:
        return "forbidden", "request forbidden"
    if status == 417:
        return "expectation_failed", "the Expect header is not supported"
    if status == 501:
        return "not_implemented", "the request's transfer coding is not supported"
    if status >= 500:
        return "internal_error", "the server failed; see its log"
    return "bad_request", "the request is not valid HTTP/1.1"


def json_error(status: int, reason: str, cfg: Any) -> bytes:
    """A complete HTTP response carrying the API's error body; the connection closes."""
    code, message = refusal(status, cfg)
    body = json.dumps({"success": False, "error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class JsonErrorWorker(ThreadWorker):
    """gunicorn's gthread worker with JSON refusals."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)  # logs, access-logs, picks the status
        status, reason = 500, "Internal Server Error"
        parts = captured.data.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(parts) == 3 and parts[1].isdigit():
            status, reason = int(parts[1]), parts[2].decode("latin-1")
        try:
            util.write_nonblock(client, json_error(status, reason, self.cfg))
        except OSError:  # the client may be gone; gunicorn closes the socket next
            self.log.debug("Failed to send error message.")
