"""API latency under load: the list and evidence endpoints behind gunicorn on loopback.

Seeds one account with a connected AWS integration and 10,000 evidence rows, starts gunicorn
(`cli.wsgi:app`), warms every worker up, then sends requests at a fixed rate (open loop: a
request is due at its slot whether or not earlier ones have answered, and its latency counts
from that slot, so a stalled server cannot hide queueing). Prints p50/p90/p99/max latency and
the achieved throughput per endpoint. Target: p99 < 50 ms at 300 req/s. No asserts.

Uses DATABASE_URL (a private database is created there and dropped after) or an embedded
PostgreSQL; REDIS_URL or an embedded Redis.

    python bench/api_load.py [--rate 300] [--seconds 20] [--rows 10000] [--workers 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
import requests
from cryptography.fernet import Fernet
from psycopg import Connection as PgConnection
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from engine.db import session_factory
from engine.embedded import start_postgres, start_redis
from engine.evidence import Item
from engine.migrate import upgrade
from engine.models import Account, CheckState, Connection, ConnectionStatus
from engine.registry import get_connector
from engine.settings import Settings, get_settings
from engine.tokens import mint

console = Console(width=120)
ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "bench"


@contextmanager
def database(base: Settings, tmp: Path) -> Iterator[str]:
    """A private database on DATABASE_URL (dropped afterwards), else an embedded one."""
    if not base.database_url:
        yield start_postgres(tmp)
        return
    url = make_url(base.database_url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        session_factory(base.model_copy(update={"database_url": url.set(
            database=name).render_as_string(hide_password=False)})).kw["bind"].dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(settings: Settings, rows: int, account: str = ACCOUNT) -> None:
    """One active AWS connection of `account` with `rows` current evidence rows over the AWS
    checks (and their per-check result-set rows, as a sync writes them)."""
    checks = [c.id for c in get_connector("aws").checks]
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        s.add(Account(id=account))
        s.flush()
        conn = Connection(account_id=account, integration_id="aws",
                          status=ConnectionStatus.ACTIVE, last_sync_at=now,
                          meta={"accountAlias": "bench", "regions": ["us-east-1"]})
        s.add(conn)
        s.flush()
        raw = s.connection().connection.driver_connection
        assert isinstance(raw, PgConnection)
        with raw.cursor() as cur, cur.copy(
            "COPY evidence (account_id, connection_id, check_id, resource_id, resource_type, "
            "status, title, data, content_hash, first_seen_at, last_changed_at) FROM STDIN"
        ) as copy:
            for i in range(rows):
                status = "failing" if i % 7 == 0 else "passing"
                item = Item.of(f"arn:aws:s3:::bench-{i:06d}", "aws.s3.bucket", status,
                               f"Bucket bench-{i:06d} is {status}",
                               {"region": "us-east-1", "rules": [{"SSEAlgorithm": "aws:kms"}],
                                "index": i})
                copy.write_row((account, conn.id, checks[i % len(checks)], item.resource_id,
                                item.resource_type, item.status, item.title, item.data_json,
                                item.content_hash, now, now))
        s.add_all([CheckState(connection_id=conn.id, check_id=check, account_id=account,
                              set_hash="0" * 64, last_verified_at=now,
                              resource_count=len(range(n, rows, len(checks))))
                   for n, check in enumerate(checks)])
    with psycopg.connect(settings.database_url or "", autocommit=True) as raw_conn:
        raw_conn.execute("VACUUM ANALYZE evidence")  # the statistics a live table has


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(env: dict[str, str], workers: int, threads: int) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "cli.wsgi:app", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class",
         "gthread" if threads > 1 else "sync", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass  # not listening yet, or still importing
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@dataclass(frozen=True)
class Sample:
    endpoint: str
    latency: float
    """Seconds from the request's scheduled slot to its answer."""
    service: float
    """Seconds from actually sending it to its answer."""
    ok: bool


PATHS = [
    ("list", "/api/v1/integrations"),
    ("evidence", "/api/v1/integrations/aws/evidence?limit=50&offset={offset}"),
    ("evidence?status", "/api/v1/integrations/aws/evidence?status=failing&limit=50"
                        "&offset={small}"),
]
"""Half the requests list the catalog; half page through evidence (a quarter filtered)."""


def run_load(base: str, token: str, rate: float, seconds: float, rows: int,
             concurrency: int) -> tuple[list[Sample], float]:
    """Send the plan at `rate` from one asyncio loop (aiohttp, keep-alive connections), so the
    client's own overhead stays far below the server's."""
    last_page = max(0, rows - 50)
    rng = random.Random(7)  # noqa: S311 - a reproducible workload, not security
    plan = []
    for i in range(int(rate * seconds)):
        name, path = PATHS[0] if i % 2 == 0 else PATHS[1 + (i // 2) % 2]
        plan.append((name, path.format(offset=rng.randrange(0, last_page + 1),
                                       small=rng.randrange(0, 1000))))
    return asyncio.run(_send_plan(base, token, plan, rate, concurrency))


async def _send_plan(base: str, token: str, plan: list[tuple[str, str]], rate: float,
                     concurrency: int) -> tuple[list[Sample], float]:
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout,
                                     headers={"Authorization": f"Bearer {token}"}) as http:

        async def send(name: str, path: str, due: float) -> Sample:
            sent = loop.time()
            try:
                async with http.get(path) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            done = loop.time()
            return Sample(name, done - due, done - sent, ok)

        start = loop.time()
        tasks = []
        for i, (name, path) in enumerate(plan):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(name, path, due)))
        samples = list(await asyncio.gather(*tasks))
        return samples, loop.time() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(samples: list[Sample], elapsed: float, rate: float, workers: int,
           threads: int) -> None:
    table = Table(title=f"API under load: {rate:.0f} req/s offered for {elapsed:.1f} s, "
                        f"gunicorn {workers} worker(s) × {threads} thread(s)")
    for col in ("endpoint", "requests", "req/s", "errors", "p50 ms", "p90 ms", "p99 ms",
                "max ms", "p99 service ms"):
        table.add_column(col, justify="right")
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.endpoint].append(s)
        groups["all"].append(s)
    for name, group in groups.items():
        lat = [s.latency for s in group]
        table.add_row(name, str(len(group)), f"{len(group) / elapsed:.0f}",
                      str(sum(not s.ok for s in group)), f"{pct(lat, 0.5):.1f}",
                      f"{pct(lat, 0.9):.1f}", f"{pct(lat, 0.99):.1f}", f"{max(lat) * 1000:.1f}",
                      f"{pct([s.service for s in group], 0.99):.1f}")
    console.print(table)
    overall = pct([s.latency for s in samples], 0.99)
    console.print(f"p99 {overall:.1f} ms (target < 50 ms at 300 req/s); mean "
                  f"{statistics.mean(s.latency for s in samples) * 1000:.1f} ms. Latency counts "
                  "from each request's scheduled slot (open loop).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="client connections")
    args = parser.parse_args()
    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp, database(base, Path(tmp)) as db_url:
        redis_url = base.redis_url or start_redis(Path(tmp))
        secret = (base.jwt_secret.get_secret_value() if base.jwt_secret
                  else f"bench-{uuid.uuid4().hex}")
        settings = base.model_copy(update={
            "database_url": db_url, "redis_url": redis_url, "data_dir": Path(tmp),
            "jwt_secret": SecretStr(secret)})
        upgrade(settings)
        seed(settings, args.rows)
        env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "EVIDENCE_DATA_DIR": tmp,
               "EVIDENCE_JWT_SECRET": secret,
               "EVIDENCE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
               "EVIDENCE_LOG_LEVEL": "WARNING"}
        token = mint(settings, ACCOUNT)
        console.print(f"seeded {args.rows:,} evidence rows; starting gunicorn")
        with gunicorn(env, args.workers, args.threads) as url:
            console.print("warming up every worker (connector imports, pools)")
            run_load(url, token, rate=50, seconds=4, rows=args.rows,
                     concurrency=args.workers * args.threads)
            samples, elapsed = run_load(url, token, args.rate, args.seconds, args.rows,
                                        args.concurrency)
        report(samples, elapsed, args.rate, args.workers, args.threads)


if __name__ == "__main__":
    main()
