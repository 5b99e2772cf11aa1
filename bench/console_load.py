"""Console pages against the JSON API in the same run: the overview and the controls page of an
account with 10,000 evidence rows, behind gunicorn on loopback.

Seeds the account as bench/api_load.py does (one AWS connection, `--rows` current evidence rows,
their control results), signs a browser-like client in through a login link, then sends each
endpoint `--requests` requests from `--clients` threads (closed loop, the endpoints taken in
turn so the machine's load weighs on all alike) and prints p50/p99 per endpoint and each
page's cost as a multiple of the JSON evidence list (target: at most 2×).
No asserts.

    python bench/console_load.py [--rows 10000] [--requests 300] [--clients 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests
from api_load import ACCOUNT, database, gunicorn, pct, seed
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from engine.console_sessions import issue_login_link
from engine.controls import recompute_controls
from engine.db import unit_of_work
from engine.embedded import start_redis
from engine.migrate import upgrade
from engine.settings import Settings, get_settings
from engine.tokens import mint

console = Console(width=120)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ENDPOINTS = [
    ("JSON evidence list", "/api/v1/integrations/aws/evidence?limit=50"),
    ("JSON controls", "/api/v1/integrations/aws/controls"),
    ("console overview", "/console"),
    ("console controls", "/console/controls"),
    ("console controls, failing", "/console/controls?status=failing"),
]
BASELINE = "JSON evidence list"


def signed_in(base: str, settings: Settings) -> requests.Session:
    """A client signed in to the console through a login link, as a browser would be."""
    with unit_of_work(settings) as session:
        link = issue_login_link(session, settings, ACCOUNT, datetime.now(UTC))
    http = requests.Session()
    found = CSRF.search(http.get(f"{base}/console/login", timeout=30).text)
    assert found, "the sign-in page carries no CSRF token"
    answer = http.post(f"{base}/console/login", timeout=30, allow_redirects=False,
                       data={"token": link.url.split("#token=", 1)[1],
                             "csrf_token": found.group(1)})
    assert answer.status_code == 303, answer.text[:300]
    return http


def measure(base: str, clients: list[requests.Session], n: int) -> dict[str, list[float]]:
    """Latencies (s) of `n` GETs of every endpoint, spread over the clients (one thread each),
    the endpoints taken in turn (each thread starting at another one), so a change in the
    machine's load while the bench runs weighs on every endpoint alike."""

    def run(start: int, http: requests.Session) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {name: [] for name, _ in ENDPOINTS}
        for i in range(n // len(clients) * len(ENDPOINTS)):
            name, path = ENDPOINTS[(start + i) % len(ENDPOINTS)]
            sent = time.perf_counter()
            answer = http.get(base + path, timeout=60, allow_redirects=False)
            out[name].append(time.perf_counter() - sent)
            assert answer.status_code == 200, (path, answer.status_code)
        return out

    with ThreadPoolExecutor(len(clients)) as pool:
        parts = list(pool.map(run, range(len(clients)), clients))
    return {name: [t for part in parts for t in part[name]] for name, _ in ENDPOINTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300, help="per endpoint")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    args = parser.parse_args()
    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp, database(base, Path(tmp)) as db_url:
        redis_url = base.redis_url or start_redis(Path(tmp))
        secret = f"bench-{uuid.uuid4().hex}"
        settings = base.model_copy(update={
            "database_url": db_url, "redis_url": redis_url, "data_dir": Path(tmp),
            "jwt_secret": SecretStr(secret)})
        upgrade(settings)
        seed(settings, args.rows)
        with unit_of_work(settings) as session:
            recompute_controls(session, ACCOUNT, datetime.now(UTC))
        env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "EVIDENCE_DATA_DIR": tmp,
               "EVIDENCE_JWT_SECRET": secret,
               "EVIDENCE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
               "EVIDENCE_LOG_LEVEL": "WARNING", "EVIDENCE_RATE_LIMIT": "1000000/minute"}
        bearer = {"Authorization": f"Bearer {mint(settings, ACCOUNT)}"}
        console.print(f"seeded {args.rows:,} evidence rows; starting gunicorn")
        with gunicorn(env, args.workers, args.threads) as url:
            clients = [signed_in(url, settings) for _ in range(args.clients)]
            for http in clients:
                http.headers.update(bearer)  # the JSON API reads the bearer, the console the cookie
            measure(url, clients, 4 * args.workers * len(clients))  # warm every worker up
            results = measure(url, clients, args.requests)
    report(results, args)


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    table = Table(title=f"{args.rows:,} evidence rows, gunicorn {args.workers} worker(s) × "
                        f"{args.threads} thread(s), {args.clients} clients (closed loop)")
    for col in ("endpoint", "requests", "p50 ms", "p99 ms", f"p50 ÷ {BASELINE}"):
        table.add_column(col, justify="right")
    base_p50 = pct(results[BASELINE], 0.5)
    for name, latencies in results.items():
        table.add_row(name, str(len(latencies)), f"{pct(latencies, 0.5):.1f}",
                      f"{pct(latencies, 0.99):.1f}", f"{pct(latencies, 0.5) / base_p50:.1f}×")
    console.print(table)
    console.print("Target: a console page costs at most 2× the JSON evidence list.")


if __name__ == "__main__":
    main()
