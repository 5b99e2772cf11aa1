"""`evidence demo`: an emulated AWS estate connected and synced through the public API; at a
terminal (or with --keep-running) the stack stays up and the demo ends by printing a sign-in
link to the web console for the demo account."""

from __future__ import annotations

import logging
import socket
import sys
import time
from typing import Any

import requests
from moto.server import ThreadedMotoServer
from rich.console import Console
from rich.table import Table

from cli.stack import (
    api_command,
    child_env,
    console_sign_in,
    migrate,
    start_services,
    worker_command,
)
from cli.supervisor import Children
from connectors.aws.kit import seed_estate
from engine.settings import Settings
from engine.tokens import mint

console = Console()
ACCOUNT = "demo"
STATUS_STYLE = {"passing": "green", "failing": "red", "error": "yellow",
                "not_evaluated": "dim", "not_applicable": "dim"}


def _free_port(preferred: int) -> int:
    """`preferred` if it is free, else any free loopback port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free loopback port")


def _wait_healthy(base: str, proc: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API process exited; see its output above")
        try:
            if requests.get(f"{base}/healthz", timeout=10).ok:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.3)
    raise RuntimeError("the API did not answer /healthz in time")


def _interactive() -> bool:
    """A person at a terminal: the demo then stays up, so the console link it prints works."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _call(method: str, url: str, token: str, **kwargs: Any) -> dict[str, Any]:
    resp = requests.request(method, url, headers={"Authorization": f"Bearer {token}"},
                            timeout=180, **kwargs)
    body: dict[str, Any] = resp.json()
    if resp.status_code >= 400:
        raise RuntimeError(f"{method} {url} answered {resp.status_code}: {body}")
    return body


def _controls_table(controls: list[dict[str, Any]]) -> Table:
    table = Table(title="Control results (AWS)", show_lines=False)
    for col in ("Control", "Framework", "Name", "Status", "Passing"):
        table.add_column(col)
    for c in controls:
        style = STATUS_STYLE.get(c["status"], "")
        table.add_row(c["controlId"], c["frameworkId"], c["controlName"],
                      f"[{style}]{c['status']}[/]", f"{c['passing']}/{c['total']}")
    return table


def _failing_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Failing resources", show_lines=False)
    table.add_column("Check", no_wrap=True)
    table.add_column("Why", overflow="fold")
    for e in items:
        table.add_row(e["check_id"].removeprefix("aws."), e["title"])
    return table


def run_demo(settings: Settings, keep_running: bool = False) -> int:
    """Start the stack and moto's server, connect and sync through the API, print the results."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    children = Children()
    moto = None
    try:
        with console.status("starting PostgreSQL and Redis…"):
            settings, services = start_services(settings)
            migrate(settings)
        port = _free_port(settings.api_port)
        base = f"http://127.0.0.1:{port}"  # the port it found free: links must name it
        settings = settings.model_copy(update={"api_port": port, "public_base_url": base})
        env = child_env(services, EVIDENCE_ALLOW_CUSTOM_ENDPOINTS="true",
                         EVIDENCE_API_PORT=str(port), EVIDENCE_PUBLIC_BASE_URL=base)
        with console.status("starting the API and a worker…"):
            api = children.start("api", api_command(settings, workers=1), env, quiet=True)
            children.start("worker", worker_command(settings), env, quiet=True)
            _wait_healthy(base, api)
        console.log(f"API up on {base}")

        moto_port = _free_port(0)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        endpoint = f"http://127.0.0.1:{moto_port}"
        with console.status("seeding an emulated AWS account (moto)…"):
            estate = seed_estate(endpoint)
        console.log(f"emulated AWS estate: {estate.resources} resources in "
                    f"{', '.join(estate.regions)}")

        token = mint(settings, ACCOUNT)
        with console.status("connecting AWS through the API (verify + first sync)…"):
            connected = _call("POST", f"{base}/api/v1/integrations/aws/connect?wait=60", token,
                              json={"credentials": estate.credentials(),
                                    "sync_frequency": "daily"})
        meta = connected.get("metadata") or {}
        console.log(f"connected {connected['connectionId']}: account "
                    f"{meta.get('accountAlias')} regions {meta.get('regions')}")
        with console.status("syncing through the API…"):
            synced = _call("POST", f"{base}/api/v1/integrations/aws/sync?wait=120", token)
        if "evidenceCount" not in synced:
            raise RuntimeError(f"the sync did not finish in time: {synced}")
        console.log(f"sync finished: {synced['evidenceCount']} evidence items, "
                    f"{len(synced['errors'])} errors, {synced['duration']} ms")

        controls = _call("GET", f"{base}/api/v1/integrations/aws/controls", token)
        failing: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = _call("GET", f"{base}/api/v1/integrations/aws/evidence", token,
                         params={"status": "failing", "limit": 200, "offset": offset})
            failing.extend(page["evidence"])
            offset += page["limit"]
            if offset >= page["total"]:
                break
        console.print(_controls_table(controls["controlResults"]))
        console.print(_failing_table(failing))
        summary = {s: sum(1 for c in controls["controlResults"] if c["status"] == s)
                   for s in ("passing", "failing", "error")}
        console.print(f"[bold]{summary['passing']} controls passing, {summary['failing']} "
                      f"failing, {summary['error']} with errors; {len(failing)} failing "
                      "resources.[/]")
        keep_running = keep_running or _interactive()
        if not keep_running:
            console.print("\nThe demo has stopped its stack. `evidence demo --keep-running` "
                          "leaves it up and prints a sign-in link to the web console.")
            return 0
        console.print(f"\nThe API stays up on {base}. Try:\n  curl -H 'Authorization: "
                      f"Bearer {token}' {base}/api/v1/integrations")
        console.print("\nOpen the web console for the demo account (Ctrl-C stops the demo):")
        sys.stdout.flush()
        print(console_sign_in(settings, ACCOUNT, base_url=base), flush=True)
        children.wait_any()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        children.stop()
        if moto is not None:
            moto.stop()
