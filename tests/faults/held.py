"""Servers that hold a worker's call until the test lets it go, so the test can kill the worker
while the call is in flight: an HTTP proxy in front of moto (for the real AWS SDK and the
S3-compatible evidence store) and an SMTP server (aiosmtpd) that holds each message's DATA.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from aiosmtpd.controller import Controller

from tests.emulators import free_port

HOLD_LIMIT = 300.0  # a held call is let go after this long whatever happens (no hung threads)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Gate:
    """Open or closed (to every call, or only to those matching a text); counts the calls it
    holds and those it let through."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._matching: str | None = None
        self.held: list[str] = []
        self.passed = 0

    def reset(self) -> None:
        with self._lock:
            self.held, self.passed = [], 0

    def close(self, matching: str | None = None) -> None:
        """Hold every call from now on, or only the calls whose description (method, path and
        the body's start) contains `matching`: the others go through."""
        self._matching = matching
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wait(self, call: str) -> None:
        """Called on each call: returns once the gate is open (noting `call` held if it was not)."""
        matching = self._matching
        if not self._open.is_set() and (matching is None or matching in call):
            with self._lock:
                self.held.append(call)
            self._open.wait(HOLD_LIMIT)
        with self._lock:
            self.passed += 1


class _ProxyServer(ThreadingHTTPServer):
    """A killed worker resets its connections to the proxy: that is the test, not an error to
    print a traceback for."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HeldProxy:
    """A loopback HTTP proxy to `upstream` (moto's server): every request waits at the gate."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.gate, self.port = upstream, Gate(), free_port()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.gate.wait(f"{self.command} {self.path} {body[:200]!r}")
                answer = requests.request(
                    self.command, proxy.upstream + self.path, data=body, timeout=60,
                    headers={k: v for k, v in self.headers.items()
                             if k.lower() not in HOP_BY_HOP}, allow_redirects=False)
                with contextlib.suppress(OSError):  # the caller may have been killed meanwhile
                    self.send_response(answer.status_code)
                    for key, value in answer.headers.items():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-encoding":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815

            def log_message(self, *_: Any) -> None:
                pass

        self.server = _ProxyServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HeldProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.gate.open()
        self.server.shutdown()
        self.server.server_close()


class HeldInbox:
    """An aiosmtpd handler that holds each message's DATA at the gate, then accepts it.

    A client that goes away while its DATA is held (a killed worker) never gets its 250: aiosmtpd
    cancels the session and the message is not accepted, as a real server drops a transaction
    whose client left before the reply. (A server that had already queued it would deliver it:
    that is SMTP's at-least-once edge, which the same Message-ID makes recognisable.)
    """

    def __init__(self) -> None:
        self.gate = Gate()
        self.messages: list[EmailMessage] = []
        self.abandoned = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self.gate.wait, f"DATA to {envelope.rcpt_tos}")
        except asyncio.CancelledError:
            self.abandoned += 1
            raise
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def held_smtp() -> Iterator[tuple[HeldInbox, int]]:
    """A loopback SMTP server with a gate on DATA; yields its inbox and port."""
    inbox, port = HeldInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        inbox.gate.open()
        controller.stop()
