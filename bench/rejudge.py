"""Rejudge against a fresh sync: the 1,000-bucket AWS estate judged again from its stored
snapshots, and synced again from the provider, in the same run.

Seeds moto's server (in this process, behind a counter of the requests it answers) with the
acme estate in three regions plus N buckets, connects it, syncs it twice through the engine
(`run_sync` in process: collectors, checks, snapshots, evidence), then runs `evidence rejudge`
over the connection: every check on every stored snapshot state, no provider call. Prints
seconds and provider requests of each, and the ratio of the unchanged re-sync (the cheaper of
the two syncs) to the rejudge (goal ≥ 10×, with 0 requests during the rejudge).

    python bench/rejudge.py [--buckets 1000] [--latency-ms 0]

Uses DATABASE_URL, or an embedded PostgreSQL; its rows go under a private account, deleted
afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aws_sync import (  # bench/ is on the path
    REGIONS,
    api_calls,
    credentials,
    delete_account,
    moto,
    seed,
)
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.aws import AwsConnector
from engine.db import session_factory, set_job_sender
from engine.embedded import start_postgres
from engine.migrate import upgrade
from engine.models import Account, Connection, ConnectionStatus, SnapshotSeen, SyncRun, Trigger
from engine.rejudge import rejudge
from engine.settings import Settings, get_settings
from engine.sync import request_sync, run_sync
from engine.vault import vault

console = Console(width=120)


@dataclass(frozen=True)
class Timed:
    label: str
    seconds: float
    requests: int
    detail: str


def sync(factory: sessionmaker[Session], settings: Settings, conn_id: str) -> SyncRun:
    with factory() as s, s.begin():
        run, _ = request_sync(s, s.get_one(Connection, conn_id), Trigger.MANUAL)
        run_id = run.id
    run_sync(factory, run_id, worker="bench", settings=settings)
    with factory() as s:
        return s.get_one(SyncRun, run_id)


def timed_sync(label: str, factory: sessionmaker[Session], settings: Settings, conn_id: str,
               endpoint: str) -> Timed:
    before, start = api_calls(endpoint), time.perf_counter()
    run = sync(factory, settings, conn_id)
    seconds = time.perf_counter() - start
    with factory() as s:
        changed = s.scalars(select(SnapshotSeen.collector).distinct().where(
            SnapshotSeen.connection_id == conn_id, SnapshotSeen.run_id == run.id,
            SnapshotSeen.valid_from > select(func.min(SnapshotSeen.valid_from)).where(
                SnapshotSeen.connection_id == conn_id).scalar_subquery())).all()
    return Timed(label, seconds, api_calls(endpoint) - before,
                 f"{run.status.value}, {run.evidence_count:,} results, "
                 f"{run.changed_count:,} rows written"
                 + (f"; snapshots changed: {', '.join(sorted(changed))}" if changed else ""))


def timed_rejudge(factory: sessionmaker[Session], settings: Settings, conn_id: str,
                  endpoint: str) -> Timed:
    before, start = api_calls(endpoint), time.perf_counter()
    with factory() as s:
        report = rejudge(s, settings, connection_id=conn_id)
    seconds = time.perf_counter() - start
    return Timed("rejudge from stored snapshots", seconds, api_calls(endpoint) - before,
                 f"{report.intervals} snapshot states of {report.checks} checks, "
                 f"{len(report.changes)} verdicts would change, "
                 f"{len(report.failures)} failures")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="network round trip added to every provider request")
    args = parser.parse_args()
    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp, moto("thread", args.latency_ms / 1000) as endpoint:
        settings = base.model_copy(update={
            "database_url": base.database_url or start_postgres(Path(tmp)),
            "encryption_keys": base.encryption_keys or SecretStr(Fernet.generate_key().decode()),
            "allow_custom_endpoints": True, "sync_parts": 1})
        upgrade(settings)
        set_job_sender(lambda job: None)  # runs are executed here, in process
        with console.status(f"seeding {args.buckets:,} buckets in {len(REGIONS)} regions…"):
            resources, seed_s = seed(endpoint, args.buckets, 0)
        console.print(f"seeded {resources:,} resources in {seed_s:.1f} s")
        factory = session_factory(settings)
        account = f"bench-rejudge-{uuid.uuid4().hex[:6]}"
        with factory() as s, s.begin():
            s.add(Account(id=account))
            s.flush()
            conn = Connection(account_id=account, integration_id="aws",
                              status=ConnectionStatus.ACTIVE,
                              credentials_encrypted=vault(settings).seal(credentials(endpoint)))
            s.add(conn)
            s.flush()
            conn_id = conn.id
        try:
            with console.status("first sync…"):
                first = timed_sync("first sync (writes everything)", factory, settings,
                                   conn_id, endpoint)
            with console.status("unchanged re-sync…"):
                again = timed_sync("fresh sync of the same estate", factory, settings,
                                   conn_id, endpoint)
            with console.status("rejudging…"):
                judged = timed_rejudge(factory, settings, conn_id, endpoint)
        finally:
            delete_account(factory, account)
    table = Table(title=f"Rejudge vs sync: {args.buckets:,} buckets + the acme estate, "
                        f"{len(REGIONS)} regions, {len(AwsConnector.checks)} checks, "
                        f"+{args.latency_ms:g} ms per request ({datetime.now(UTC):%Y-%m-%d})")
    for column in ("run", "seconds", "provider requests", "what it did"):
        table.add_column(column, justify="left" if column in ("run", "what it did") else "right")
    for row in (first, again, judged):
        table.add_row(row.label, f"{row.seconds:.2f}", f"{row.requests:,}", row.detail)
    console.print(table)
    console.print(f"rejudge is [bold]{again.seconds / judged.seconds:.1f}×[/] faster than a "
                  f"fresh sync of the same estate (goal ≥ 10×); provider requests during the "
                  f"rejudge: [bold]{judged.requests}[/] (must be 0)")


if __name__ == "__main__":
    main()
