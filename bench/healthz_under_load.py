"""/healthz latency while one tenant holds 20 waits open (issue 15 item 5).

Seeds ten accounts with an AWS connection and 1,000 evidence rows each (the replay load pages
through them, as bench/api_load.py does, spread over the accounts so none passes its rate
limit), and one more account whose integration `slow` has a run that takes a minute (a Celery
worker runs it). Starts gunicorn with the flags of `evidence up` (2 workers × 8 threads) and the
worker, then measures two phases of the same length in one run:

1. baseline: the replay load and /healthz from another client;
2. under waits: the same, plus 20 clients of the slow account each sending
   `POST .../slow/sync?wait=90` again as soon as it is answered (after Retry-After on a 429,
   after a second on a 202, as a client that then polls).

Prints p50/p99/max of /healthz (open loop: latency counts from each request's scheduled slot)
and of the replay load for both phases, and what the waiters were answered. Target: /healthz
p99 under 100 ms under waits. With --uncapped a third phase runs on a gunicorn whose waits and
rate limits are lifted (the behaviour before the fix). No asserts. Traffic only to 127.0.0.1.

Uses DATABASE_URL (a private database is created there and dropped after) or an embedded
PostgreSQL; REDIS_URL (a private key prefix) or an embedded Redis.

    python bench/healthz_under_load.py [--seconds 20] [--rate 80] [--healthz-rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import requests
from cryptography.fernet import Fernet
from pydantic import BaseModel, SecretStr
from rich.console import Console
from rich.table import Table

from cli.main import api_command, worker_command
from connectors.base import AuthType, Category, Connector, Result, Severity, check, collector
from engine.db import session_factory
from engine.embedded import start_redis
from engine.migrate import upgrade
from engine.models import Account, Connection, ConnectionStatus
from engine.settings import Settings, get_settings
from engine.tokens import mint
from engine.vault import vault

console = Console(width=160)
ROOT = Path(__file__).resolve().parent.parent
SLOW_RUN_SECONDS = 60.0
WAITERS = 20
REPLAY_ACCOUNTS = 10
ROWS_PER_ACCOUNT = 1_000
TENANT = "noisy-tenant"
MAX_REQUESTS_PER_WAITER = 2_000
"""Each waiting client's loop is bounded in count as well as by the phase's time."""


class SlowCredentials(BaseModel):
    token: SecretStr


@collector()
def read_slowly(session: dict[str, Any]) -> float:
    time.sleep(SLOW_RUN_SECONDS)  # a provider that takes a minute to answer
    return time.time()


@check(id="slow.bench.answered", severity=Severity.INFO, resource_type="slow.answer",
       remediation="None.", needs=read_slowly)
def answered(at: float) -> Iterator[Result]:
    """The slow provider answered."""
    yield Result.of("slow:answer", passing=True, title="answered", data={"at": at})


class SlowConnector(Connector):
    """Loaded by the bench's API and worker as EVIDENCE_EXTRA_CONNECTORS=bench.healthz_...:"""

    id: ClassVar[str] = "slow"
    name = "Slow"
    category = Category.MONITORING
    auth_type = AuthType.API_KEY
    icon = "slow"
    credentials_model = SlowCredentials
    checks = (answered,)

    def verify(self) -> dict[str, Any]:
        return {}

    def session(self) -> dict[str, Any]:
        return {}


@dataclass
class Phase:
    name: str
    healthz: list[float] = field(default_factory=list)
    healthz_failed: int = 0
    replay: list[float] = field(default_factory=list)
    replay_status: Counter[int] = field(default_factory=Counter)
    waiter_status: Counter[int | str] = field(default_factory=Counter)
    waiter_202_ms: list[float] = field(default_factory=list)


def seed(settings: Settings) -> None:
    from api_load import seed as seed_evidence  # bench/ is this script's import path

    for n in range(REPLAY_ACCOUNTS):
        seed_evidence(settings, ROWS_PER_ACCOUNT, account=f"replay-{n}")
    with session_factory(settings)() as s, s.begin():
        s.add(Account(id=TENANT))
        s.flush()
        s.add(Connection(account_id=TENANT, integration_id="slow",
                         status=ConnectionStatus.ACTIVE,
                         credentials_encrypted=vault(settings).seal({"token": "t"})))


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path, ready: Any,
            stop_seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (stdout and stderr to `log`), waited for, then stopped (killed if it
    does not stop within `stop_seconds`)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{argv[2]} did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


async def open_loop(http: aiohttp.ClientSession, paths: list[tuple[str, dict[str, str]]],
                    rate: float, latencies: list[float], statuses: Counter[int]) -> None:
    """Send `paths` at `rate`, each due at its slot whether or not earlier ones answered."""
    loop = asyncio.get_running_loop()

    async def send(path: str, headers: dict[str, str], due: float) -> None:
        try:
            async with http.get(path, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            statuses[0] += 1
        latencies.append(loop.time() - due)

    start = loop.time()
    tasks = []
    for i, (path, headers) in enumerate(paths):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(path, headers, due)))
    await asyncio.gather(*tasks)


async def waiter(http: aiohttp.ClientSession, headers: dict[str, str], until: float,
                 phase: Phase) -> None:
    """One stubborn client: sync?wait=90 again as soon as it is answered (bounded)."""
    loop = asyncio.get_running_loop()
    for _ in range(MAX_REQUESTS_PER_WAITER):
        if loop.time() >= until:
            return
        sent = loop.time()
        pause = 0.0
        try:
            async with http.post("/api/v1/integrations/slow/sync?wait=90",
                                 headers=headers) as resp:
                await resp.read()
                phase.waiter_status[resp.status] += 1
                if resp.status == 202:
                    phase.waiter_202_ms.append((loop.time() - sent) * 1000)
                    pause = 1.0
                elif resp.status == 429:
                    pause = float(resp.headers.get("Retry-After", "1"))
        except (aiohttp.ClientError, TimeoutError):
            phase.waiter_status["error"] += 1
            pause = 1.0
        except asyncio.CancelledError:
            phase.waiter_status["still waiting"] += 1  # the phase ended during its wait
            raise
        await asyncio.sleep(min(pause, max(0.0, until - loop.time())))


async def run_phase(base: str, phase: Phase, seconds: float, rate: float, healthz_rate: float,
                    tokens: list[str], tenant_token: str | None) -> None:
    rng = random.Random(7)  # noqa: S311 - a reproducible workload, not security
    replay = []
    for i in range(int(rate * seconds)):
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        if i % 2 == 0:
            replay.append(("/api/v1/integrations", headers))
        else:
            offset = rng.randrange(0, ROWS_PER_ACCOUNT - 50)
            replay.append((f"/api/v1/integrations/aws/evidence?limit=50&offset={offset}",
                           headers))
    probes = [("/healthz", {})] * int(healthz_rate * seconds)
    timeout = aiohttp.ClientTimeout(total=100)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(base, timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=64)) as load, \
            aiohttp.ClientSession(base, timeout=timeout,
                                  connector=aiohttp.TCPConnector(limit=8)) as probe, \
            aiohttp.ClientSession(base, timeout=timeout,
                                  connector=aiohttp.TCPConnector(limit=WAITERS)) as noisy:
        waiters = []
        if tenant_token:
            until = loop.time() + seconds
            headers = {"Authorization": f"Bearer {tenant_token}"}
            waiters = [asyncio.create_task(waiter(noisy, headers, until, phase))
                       for _ in range(WAITERS)]
            await asyncio.sleep(1.0)  # the waits are in place before measuring
        healthz_status: Counter[int] = Counter()
        await asyncio.gather(
            open_loop(load, replay, rate, phase.replay, phase.replay_status),
            open_loop(probe, probes, healthz_rate, phase.healthz, healthz_status))
        phase.healthz_failed = sum(n for s, n in healthz_status.items() if s != 200)
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def report(phases: list[Phase], seconds: float) -> None:
    table = Table(title=f"/healthz from another client ({seconds:.0f} s per phase, gunicorn as "
                        "`evidence up`: 2 workers × 8 threads)", width=160)
    for col in ("phase", "healthz n", "p50 ms", "p99 ms", "max ms", "failed",
                "replay n", "replay p50", "replay p99", "replay statuses", "waiters answered"):
        table.add_column(col, justify="right")
    for p in phases:
        waits = ", ".join(f"{k}: {v}" for k, v in sorted(p.waiter_status.items(), key=str))
        table.add_row(p.name, str(len(p.healthz)), f"{pct(p.healthz, 0.5):.1f}",
                      f"{pct(p.healthz, 0.99):.1f}",
                      f"{max(p.healthz, default=0) * 1000:.1f}", str(p.healthz_failed),
                      str(len(p.replay)), f"{pct(p.replay, 0.5):.1f}",
                      f"{pct(p.replay, 0.99):.1f}",
                      ", ".join(f"{k}: {v}" for k, v in sorted(p.replay_status.items())),
                      waits or "-")
    console.print(table)
    for p in phases:
        if p.waiter_202_ms:
            console.print(f"{p.name}: a refused wait answered 202 in p50 "
                          f"{pct([v / 1000 for v in p.waiter_202_ms], 0.5):.1f} ms, p99 "
                          f"{pct([v / 1000 for v in p.waiter_202_ms], 0.99):.1f} ms")
    console.print("Target: /healthz p99 < 100 ms under waits. Latency counts from each request's "
                  "scheduled slot (open loop). Load average (1, 5, 15 min) at the end: "
                  + ", ".join(f"{v:.1f}" for v in os.getloadavg())
                  + f" on {os.cpu_count()} cores (other jobs on the machine skew every phase).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=80.0,
                        help="replay requests per second (over the ten accounts)")
    parser.add_argument("--healthz-rate", type=float, default=20.0)
    parser.add_argument("--uncapped", action="store_true",
                        help="also measure with waits and rate limits lifted (before the fix)")
    args = parser.parse_args()
    seconds = min(args.seconds, SLOW_RUN_SECONDS - 10)  # the slow run outlasts every phase
    from api_load import database, free_port

    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp, database(base, Path(tmp)) as db_url:
        redis_url = base.redis_url or start_redis(Path(tmp))
        secret = f"bench-{uuid.uuid4().hex}"
        keys = Fernet.generate_key().decode()
        settings = base.model_copy(update={
            "database_url": db_url, "redis_url": redis_url, "data_dir": Path(tmp),
            "jwt_secret": SecretStr(secret), "encryption_keys": SecretStr(keys),
            "redis_key_prefix": f"bench-healthz-{uuid.uuid4().hex[:6]}:"})
        upgrade(settings)
        seed(settings)
        console.print(f"seeded {REPLAY_ACCOUNTS} accounts × {ROWS_PER_ACCOUNT:,} evidence rows "
                      f"and {TENANT}'s slow integration")
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
               "EVIDENCE_DATA_DIR": tmp, "EVIDENCE_JWT_SECRET": secret,
               "EVIDENCE_ENCRYPTION_KEYS": keys, "EVIDENCE_LOG_LEVEL": "WARNING",
               "EVIDENCE_REDIS_KEY_PREFIX": settings.redis_key_prefix,
               "EVIDENCE_EXTRA_CONNECTORS": "bench.healthz_under_load:SlowConnector"}
        tokens = [mint(settings, f"replay-{n}") for n in range(REPLAY_ACCOUNTS)]
        tenant = mint(settings, TENANT)
        worker_log = Path(tmp) / "worker.log"
        phases = []
        with process(worker_command(settings, "sync", concurrency=4), env, worker_log,
                     lambda: b"ready." in worker_log.read_bytes(), stop_seconds=10):
            phases += measure(settings, env, Path(tmp), free_port(), "", args, seconds,
                              tokens, tenant)
            if args.uncapped:
                lifted = {"EVIDENCE_SYNC_WAIT_PER_ACCOUNT": "1000",
                          "EVIDENCE_SYNC_WAIT_PER_PROCESS": "1000",
                          "EVIDENCE_RATE_LIMIT": "1000000/minute"}
                phases += measure(settings, {**env, **lifted}, Path(tmp), free_port(),
                                  "uncapped ", args, seconds, tokens, tenant)
        report(phases, seconds)


def measure(settings: Settings, env: dict[str, str], tmp: Path, port: int, label: str,
            args: argparse.Namespace, seconds: float, tokens: list[str],
            tenant: str) -> list[Phase]:
    """Baseline then under waits, on one gunicorn started as `evidence up` starts it."""
    api = settings.model_copy(update={"api_port": port, "api_host": "127.0.0.1"})
    base = f"http://127.0.0.1:{port}"
    log = tmp / f"gunicorn-{port}.log"
    with process(api_command(api), env, log, lambda: answers(f"{base}/healthz"),
                 stop_seconds=40):
        console.print(f"{label}gunicorn up on {base}; warming up")
        warm = Phase("warm-up")
        asyncio.run(run_phase(base, warm, 3, 20, 5, tokens, None))
        baseline, loaded = Phase(f"{label}baseline"), Phase(f"{label}20 waiters")
        asyncio.run(run_phase(base, baseline, seconds, args.rate, args.healthz_rate, tokens,
                              None))
        console.print(f"{label}baseline done; now with {WAITERS} waiting clients")
        asyncio.run(run_phase(base, loaded, seconds, args.rate, args.healthz_rate, tokens,
                              tenant))
    return [baseline, loaded]


if __name__ == "__main__":
    sys.exit(main())
