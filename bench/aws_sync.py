"""AWS sync at scale: the connector against moto's server holding 1,000 buckets and 500 users.

Seeds the acme estate (every check has resources to judge) in three regions, adds N buckets spread
over those regions and M IAM users, then syncs it four ways:

1. in process, everything one at a time (max_parallel 1: one collector, one bucket or user read
   at a time);
2. in process, collectors and per-resource reads in threads (max_parallel P);
3. as the engine runs it: a real sync through Redis and a Celery worker pool of W processes,
   one worker running the whole sync (EVIDENCE_SYNC_PARTS=1; its collectors in threads);
4. the same sync fanned out over the pool (EVIDENCE_SYNC_PARTS=W): its checks split into
   parts, each a task, spread over the W worker processes.

Prints sync time, the API calls the emulator answered, evidence rows, and the speed-ups
(2 against 1, and 4 against 3, the worker pool's gain on the same engine path).

    python bench/aws_sync.py [--buckets 1000] [--users 500] [--parallel 16] [--pool 4]
                             [--server thread|process] [--latency-ms 0] [--skip-sequential]

moto answers in a few milliseconds where AWS takes tens; `--latency-ms 30` makes the emulator
wait that long before each answer (as the network would), which is where running reads in
parallel pays off. `--server thread` (the default) runs moto in this process: it then shares
an interpreter lock with the in-process syncs, so their speed-up is a floor; `--server process`
runs it in a child. Steps 3 and 4 use DATABASE_URL / REDIS_URL, or embedded servers when unset,
on a private Redis key prefix and account, and delete their rows afterwards.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from connectors.aws import AwsConnector
from connectors.aws.kit import ACCESS_KEY_ID, SECRET_ACCESS_KEY, seed_estate

console = Console(width=120)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
SEED_THREADS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ROOT = Path(__file__).resolve().parent.parent
CALLS_PATH = "/__bench__/calls"


class Emulator:
    """WSGI middleware before moto: waits `latency_s` before each answer, counts requests."""

    def __init__(self, app: Callable[..., Iterable[bytes]], latency_s: float) -> None:
        self.app, self.latency_s = app, latency_s
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CALLS_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(self.calls).encode()]
        with self._lock:
            self.calls += 1
        if self.latency_s:
            time.sleep(self.latency_s)  # the round trip a real endpoint would take
        return self.app(environ, start_response)


def make_emulator(port: int, latency_s: float) -> Any:
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Emulator(DomainDispatcherApplication(create_backend_app), latency_s)
    return make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


def api_calls(endpoint: str) -> int:
    return int(requests.get(endpoint + CALLS_PATH, timeout=10).text)


@contextmanager
def moto(kind: str, latency_s: float) -> Iterator[str]:
    """moto's server on a free loopback port, in this process or a child; yields its URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if kind == "thread":
        server = make_emulator(port, latency_s)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield endpoint
        finally:
            server.shutdown()
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve-moto", str(port),
                              "--latency-ms", str(latency_s * 1000)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                api_calls(endpoint)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        child.terminate()
        child.wait(timeout=10)


class Clients:
    """Thread-safe boto3 clients on the emulator, one per (service, region)."""

    def __init__(self, endpoint: str) -> None:
        self._session = boto3.Session(aws_access_key_id=ACCESS_KEY_ID,
                                      aws_secret_access_key=SECRET_ACCESS_KEY)
        self._endpoint = endpoint
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str = REGIONS[0]) -> Any:
        with self._lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = self._session.client(
                    service, region_name=region, endpoint_url=self._endpoint,
                    config=Config(max_pool_connections=SEED_THREADS * 2,
                                  retries={"mode": "standard", "max_attempts": 3}))
            return self._clients[(service, region)]


def seed_bucket(client: Clients, i: int) -> None:
    """A bucket with a mix of settings: encryption, versioning, public access block, TLS."""
    region = REGIONS[i % len(REGIONS)]
    name = f"bench-{i:05d}-{region}"
    s3 = client("s3", region)
    create: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    if i % 3 == 0:
        s3.delete_bucket_encryption(Bucket=name)
    if i % 2 == 0:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if i % 4 == 0:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    if i % 5 == 0:
        arn = f"arn:aws:s3:::{name}"
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))


def seed_user(client: Clients, i: int) -> None:
    """A user; every other one with a console password, every third with an access key."""
    iam = client("iam")
    name = f"bench-user-{i:04d}"
    iam.create_user(UserName=name)
    if i % 2 == 0:
        iam.create_login_profile(UserName=name, Password="Bench-Console-Passw0rd!")
    if i % 3 == 0:
        iam.create_access_key(UserName=name)


def seed(endpoint: str, buckets: int, users: int) -> tuple[int, float]:
    """The acme estate in three regions plus the bulk; returns (resources, seconds)."""
    start = time.perf_counter()
    estate = seed_estate(endpoint, regions=REGIONS)
    client = Clients(endpoint)
    with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
        for future in [*(pool.submit(seed_bucket, client, i) for i in range(buckets)),
                       *(pool.submit(seed_user, client, i) for i in range(users))]:
            future.result()
    return estate.resources + buckets + users, time.perf_counter() - start


@dataclass(frozen=True)
class Run:
    label: str
    seconds: float
    calls: int
    rows: int
    errors: int


def credentials(endpoint: str) -> dict[str, Any]:
    return {"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
            "regions": list(REGIONS), "endpoint_url": endpoint}


def sync_in_process(endpoint: str, parallel: int) -> Run:
    connector = AwsConnector(AwsConnector.parse_credentials(credentials(endpoint)))
    connector.max_parallel = parallel  # type: ignore[misc]  # per-run override of the ClassVar
    before = api_calls(endpoint)
    start = time.perf_counter()
    outcomes = list(connector.run_checks())
    seconds = time.perf_counter() - start
    label = ("in process, one at a time" if parallel == 1
             else f"in process, {parallel} threads")
    return Run(label=label, seconds=seconds, calls=api_calls(endpoint) - before,
               rows=sum(len(o.results) for o in outcomes),
               errors=sum(len(o.errors) for o in outcomes))


def sync_on_pool(endpoint: str, workers: int) -> list[Run]:
    """The engine's own path: request a run, a Celery pool of `workers` processes executes it;
    once whole (one worker), once fanned out into `workers` parts. Each is measured on its second
    sync (the first loads every process's SDK clients, as a long-running worker already has).
    Seconds are the run's own duration (claim to close), as the sync_run row records it."""
    from cli.main import worker_command
    from engine.db import session_factory, set_job_sender
    from engine.embedded import start_postgres, start_redis
    from engine.migrate import upgrade
    from engine.models import Account, Connection, ConnectionStatus
    from engine.settings import get_settings
    from engine.vault import vault
    from workers.celery_app import make_celery

    base = get_settings()
    tmp = base.data_dir / "bench-aws-sync"  # embedded servers stop themselves at exit
    tmp.mkdir(parents=True, exist_ok=True)
    settings = base.model_copy(update={
        "database_url": base.database_url or start_postgres(tmp),
        "redis_url": base.redis_url or start_redis(tmp),
        "encryption_keys": base.encryption_keys or SecretStr(Fernet.generate_key().decode())})
    upgrade(settings)
    assert settings.encryption_keys
    account = f"bench-aws-{uuid.uuid4().hex[:6]}"
    factory = session_factory(settings)
    with factory() as s, s.begin():
        s.add(Account(id=account))
        s.flush()
        conn = Connection(account_id=account, integration_id="aws",
                          status=ConnectionStatus.ACTIVE,
                          credentials_encrypted=vault(settings).seal(credentials(endpoint)))
        s.add(conn)
        s.flush()
        conn_id = conn.id
    runs = []
    try:
        for parts in (1, workers):
            prefix = f"bench-aws-{uuid.uuid4().hex[:6]}:"
            run_settings = settings.model_copy(update={"redis_key_prefix": prefix})
            env = {**os.environ, "DATABASE_URL": settings.database_url or "",
                   "REDIS_URL": settings.redis_url or "", "EVIDENCE_REDIS_KEY_PREFIX": prefix,
                   "EVIDENCE_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
                   "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS": "true",
                   "EVIDENCE_SYNC_PARTS": str(parts)}
            log = tmp / f"worker-{parts}.log"
            with log.open("wb") as out:
                pool = subprocess.Popen(
                    worker_command(run_settings, "sync,default", pool="prefork",
                                   concurrency=workers), cwd=ROOT, env=env, stdout=out,
                    stderr=out)
            try:
                while b"ready." not in log.read_bytes():
                    if pool.poll() is not None:
                        raise SystemExit("the worker pool did not start:\n" + log.read_text())
                    time.sleep(0.1)
                celery = make_celery(run_settings)
                set_job_sender(lambda job: celery.send_task(  # noqa: B023
                    job.name, args=list(job.args), queue=job.queue))
                sync_once(factory, conn_id, settings)  # warm: each process's clients loaded
                before = api_calls(endpoint)
                done = sync_once(factory, conn_id, settings)
                label = ("engine, one worker runs the sync" if parts == 1
                         else f"engine, fanned out into {parts} parts over {workers} workers")
                runs.append(Run(label=label, seconds=(done.duration_ms or 0) / 1000,
                                calls=api_calls(endpoint) - before, rows=done.evidence_count,
                                errors=len(done.errors)))
            finally:
                pool.terminate()
                pool.wait(timeout=60)
    finally:
        delete_account(factory, account)
    return runs


def delete_account(factory: Any, account: str) -> None:
    """Every row of a bench account, in every table that names one (the ledger's triggers and
    the foreign keys off for it: a bench's rows are scratch, not a record)."""
    with factory() as s, s.begin():
        s.execute(text("SET LOCAL session_replication_role = replica"))
        tables = s.scalars(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'account_id'")).all()
        for table in tables:
            s.execute(text(f'DELETE FROM "{table}" WHERE account_id = :a'),  # noqa: S608
                      {"a": account})
        s.execute(text("DELETE FROM account WHERE id = :a"), {"a": account})


def sync_once(factory: Any, conn_id: str, settings: Any) -> Any:
    """Request a run of the connection and wait until it has finished; the run row."""
    from engine.db import unit_of_work
    from engine.models import Connection, SyncRun, Trigger
    from engine.sync import request_sync

    with unit_of_work(settings) as s:
        run, _ = request_sync(s, s.get_one(Connection, conn_id), Trigger.MANUAL)
        run_id = run.id
    while True:
        with factory() as s:
            done = s.get_one(SyncRun, run_id)
            if done.status.is_finished:
                return done
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=16,
                        help="max_parallel of the parallel in-process run")
    parser.add_argument("--pool", type=int, default=4,
                        help="worker processes of the engine runs (and parts of the fanned one)")
    parser.add_argument("--server", choices=["thread", "process"], default="thread")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="network round trip added to every request (AWS: tens of ms)")
    parser.add_argument("--skip-sequential", action="store_true",
                        help="leave out the one-at-a-time run (slow with --latency-ms)")
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:  # the child of --server process
        make_emulator(args.serve_moto, args.latency_ms / 1000).serve_forever()
        return

    with moto(args.server, args.latency_ms / 1000) as endpoint:
        with console.status(f"seeding {args.buckets:,} buckets and {args.users:,} users in "
                            f"{len(REGIONS)} regions…"):
            resources, seed_s = seed(endpoint, args.buckets, args.users)
        console.print(f"seeded {resources:,} resources in {seed_s:.1f} s "
                      f"(moto in a {args.server})")
        runs = []
        for parallel in ((args.parallel,) if args.skip_sequential else (1, args.parallel)):
            with console.status(f"syncing in process, max_parallel={parallel}…"):
                runs.append(sync_in_process(endpoint, parallel))
        with console.status(f"syncing through a pool of {args.pool} workers…"):
            runs.extend(sync_on_pool(endpoint, args.pool))

    table = Table(title=f"AWS sync: {args.buckets:,} buckets, {args.users:,} users, "
                        f"{len(REGIONS)} regions, {len(AwsConnector.checks)} checks, "
                        f"+{args.latency_ms:g} ms per request")
    for column in ("run", "sync s", "API calls", "calls/s", "evidence rows", "errors"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in runs:
        table.add_row(run.label, f"{run.seconds:.1f}", f"{run.calls:,}",
                      f"{run.calls / run.seconds:,.0f}", f"{run.rows:,}", str(run.errors))
    console.print(table)
    *in_process, whole, fanned = runs
    if len(in_process) == 2:
        sequential, threaded = in_process
        console.print(f"threads in one process (max_parallel={args.parallel}): "
                      f"[bold]{sequential.seconds / threaded.seconds:.2f}×[/] "
                      f"({sequential.seconds:.1f} s → {threaded.seconds:.1f} s); "
                      f"same evidence rows: {sequential.rows == threaded.rows}")
    console.print(f"fan-out over the pool ({args.pool} workers): "
                  f"[bold]{whole.seconds / fanned.seconds:.2f}×[/] "
                  f"({whole.seconds:.1f} s → {fanned.seconds:.1f} s); "
                  f"same evidence rows: {whole.rows == fanned.rows}")


if __name__ == "__main__":
    main()
