"""AWS sync at scale: the connector against moto's server holding 1,000 buckets and 500 users.

Seeds the acme estate (every check has resources to judge) in three regions, adds N buckets spread
over those regions and M IAM users, then runs the AWS connector's `run_checks()` twice: with
everything one at a time (max_parallel 1: one collector, one bucket or user read at a time) and
with collectors and per-resource reads in parallel (max_parallel P). Prints sync time, the API
calls botocore sent (counted on the session's `before-send` event, retries included), evidence
rows, and the speed-up.

    python bench/aws_sync.py [--buckets 1000] [--users 500] [--parallel 16]
                             [--server thread|process] [--latency-ms 0]

`--server thread` (the default) runs moto's ThreadedMotoServer in this process, so the emulator
and the connector share one interpreter lock: the speed-up it shows is a floor. `--server
process` runs moto in a child process. moto answers in a few milliseconds where AWS takes tens;
`--latency-ms 30` adds that round trip to every request (a `before-send` handler that waits, as
the network would), which is where running reads in parallel pays off.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from connectors.aws import AwsConnector
from connectors.aws.emulated import ACCESS_KEY_ID, SECRET_ACCESS_KEY, seed_estate
from connectors.aws.session import AwsSession

console = Console()
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
SEED_THREADS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto(kind: str) -> Iterator[str]:
    """moto's server on a free loopback port, in this process or a child; yields its URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if kind == "thread":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield endpoint
        finally:
            server.stop()
        return
    child = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                              "-p", str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/data.json", timeout=1)
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


class CountedAws(AwsConnector):
    """The AWS connector, counting every HTTP request botocore sends on its sessions."""

    calls: Counter[str]
    latency_s: float = 0.0

    def session(self) -> AwsSession:
        session = super().session()
        lock = threading.Lock()

        def count(event_name: str = "", **_: Any) -> None:
            service = event_name.split(".")[1] if event_name.count(".") >= 1 else "?"
            with lock:
                self.calls[service] += 1
            if self.latency_s:
                time.sleep(self.latency_s)  # the round trip a real endpoint would take

        session.events.register("before-send", count)
        return session


@dataclass(frozen=True)
class Run:
    label: str
    parallel: int
    seconds: float
    calls: Counter[str]
    rows: int
    errors: int


def sync(endpoint: str, parallel: int, latency_s: float) -> Run:
    connector = CountedAws(CountedAws.parse_credentials({
        "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
        "regions": list(REGIONS), "endpoint_url": endpoint}))
    connector.calls = Counter()
    connector.latency_s = latency_s
    connector.max_parallel = parallel  # type: ignore[misc]  # per-run override of the ClassVar
    start = time.perf_counter()
    outcomes = list(connector.run_checks())
    seconds = time.perf_counter() - start
    label = "one at a time" if parallel == 1 else f"parallel ({parallel} threads)"
    return Run(label=label, parallel=parallel, seconds=seconds, calls=connector.calls,
               rows=sum(len(o.results) for o in outcomes),
               errors=sum(len(o.errors) for o in outcomes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=16,
                        help="max_parallel of the parallel run (collectors and per-resource "
                             "reads at once)")
    parser.add_argument("--server", choices=["thread", "process"], default="thread")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="network round trip added to every request (AWS: tens of ms)")
    args = parser.parse_args()

    with moto(args.server) as endpoint:
        with console.status(f"seeding {args.buckets:,} buckets and {args.users:,} users in "
                            f"{len(REGIONS)} regions…"):
            resources, seed_s = seed(endpoint, args.buckets, args.users)
        console.print(f"seeded {resources:,} resources in {seed_s:.1f} s "
                      f"(moto in a {args.server})")
        runs = []
        for parallel in (1, args.parallel):
            with console.status(f"syncing, max_parallel={parallel}…"):
                runs.append(sync(endpoint, parallel, args.latency_ms / 1000))

    table = Table(title=f"AWS sync: {args.buckets:,} buckets, {args.users:,} users, "
                        f"{len(REGIONS)} regions, {len(AwsConnector.checks)} checks, "
                        f"+{args.latency_ms:g} ms per request")
    for column in ("run", "sync s", "API calls", "calls/s", "evidence rows", "errors"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in runs:
        total = sum(run.calls.values())
        table.add_row(run.label, f"{run.seconds:.1f}", f"{total:,}",
                      f"{total / run.seconds:,.0f}", f"{run.rows:,}", str(run.errors))
    console.print(table)

    by_service = Table(title="API calls by service (one sync)")
    by_service.add_column("service")
    by_service.add_column("calls", justify="right")
    for service, count in runs[0].calls.most_common():
        by_service.add_row(service, f"{count:,}")
    console.print(by_service)
    sequential, parallel_run = runs
    console.print(f"speed-up with max_parallel={args.parallel}: "
                  f"[bold]{sequential.seconds / parallel_run.seconds:.2f}×[/] "
                  f"({sequential.seconds:.1f} s → {parallel_run.seconds:.1f} s); "
                  f"same evidence rows: {sequential.rows == parallel_run.rows}")


if __name__ == "__main__":
    main()
