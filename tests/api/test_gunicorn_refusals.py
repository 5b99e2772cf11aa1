"""What gunicorn refuses before the app sees it is JSON in the API's error shape too: the API
run the way `evidence api` runs it (cli/stack.py api_command), spoken to over a raw socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import api_command
from engine.settings import Settings
from tests.conftest import ROOT, settings_env
from tests.emulators import free_port


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (gunicorn closes after a refusal)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")]
            if sep and lengths and len(body) >= int(lengths[0]):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


@pytest.fixture(scope="module")
def api_port(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    served = settings.model_copy(update={"api_host": "127.0.0.1", "api_port": port})
    log: Path = tmp_path_factory.mktemp("gunicorn") / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(api_command(served, workers=1), cwd=ROOT,
                                env={**os.environ, **settings_env(settings)},
                                stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                  b"Connection: close\r\n\r\n")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start:\n" + log.read_text())
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def refused_as_json(port: int, raw: bytes, status: int, code: str) -> None:
    got, headers, body = exchange(port, raw)
    assert got == status, body[:300]
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["success"] is False and answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert b"xxxx" not in body and b"<html" not in body.lower()


def test_a_request_line_over_4_kb_is_a_json_414(api_port):
    raw = b"GET /api/v1/integrations?q=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    refused_as_json(api_port, raw, 414, "request_line_too_long")


def test_a_header_over_8_kb_is_a_json_431(api_port):
    raw = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"x" * 9000 + b"\r\n\r\n")
    refused_as_json(api_port, raw, 431, "header_too_large")


def test_malformed_http_is_a_json_400(api_port):
    refused_as_json(api_port, b"GET /healthz HTTP/9.x\r\nHost: x\r\n\r\n", 400, "bad_request")


def test_an_oauth_callback_with_the_longest_state_fits_the_request_line(api_port):
    """The callback's bounds fit inside what gunicorn reads: the app answers, not gunicorn."""
    from api.schemas.integrations import STATE_MAX_LENGTH

    query = f"code={'c' * 512}&state={'s' * STATE_MAX_LENGTH}&error={'e' * 200}"
    raw = f"GET /api/v1/integrations/callback?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    got, headers, body = exchange(api_port, raw)
    assert got == 400 and json.loads(body)["error"]["code"] == "oauth_state_invalid"


def test_a_body_over_the_limit_is_a_json_413_through_gunicorn(api_port):
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    raw = (b"POST /api/v1/auditor/accept-invitation HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
           + b"\r\nConnection: close\r\n\r\n" + body)
    got, headers, answer = exchange(api_port, raw)
    assert got == 413 and json.loads(answer)["error"]["code"] == "body_too_large"
