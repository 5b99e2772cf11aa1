"""Evidence ingest: the engine's upsert path against a raw COPY into the same table.

Prints rows/s for both and their ratio at 10k and 100k rows, then what an unchanged re-sync
writes (it must write 0 versions). The engine path keeps the collector's snapshot as a sync
does (canonical JSON of the buckets it judged, zstandard, stored only when it changed). Then,
for the 1,000-bucket estate, the bytes stored by a first, an unchanged and a changed sync
(one bucket's encryption removed). Uses DATABASE_URL, or an embedded PostgreSQL.

    python bench/ingest.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from psycopg import Connection as PgConnection
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

from connectors.aws.s3 import Bucket, collect_buckets
from connectors.base import Result
from connectors.runner import Collected
from engine.db import session_factory
from engine.embedded import start_postgres
from engine.evidence import Item, store_check_results
from engine.migrate import upgrade
from engine.models import (
    Account,
    CollectorSnapshot,
    Connection,
    ConnectionStatus,
    EvidenceVersion,
    SnapshotSeen,
)
from engine.settings import Settings, get_settings
from engine.snapshots import input_digest, record_collected

console = Console()
CHECK = "bench.s3.bucket_default_encryption"


def buckets(n: int, salt: str = "", unencrypted: int | None = None) -> list[Bucket]:
    """The snapshot behind `results(n)`: what collect_buckets would have read."""
    return [Bucket(name=f"bench-bucket-{i:07d}", arn=f"arn:aws:s3:::bench-bucket-{i:07d}",
                   region="us-east-1",
                   encryption_rules=[{"ApplyServerSideEncryptionByDefault": {
                       "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": f"key-{i % 17}"},
                       "BucketKeyEnabled": True}] if i % 3 and i != unencrypted else [],
                   versioning={"Status": "Enabled", "salt": salt},
                   public_access_block={"BlockPublicAcls": True} if i % 4 else None)
            for i in range(n)]


def results(n: int, salt: str = "") -> list[Result]:
    """Realistic evidence: a bucket's encryption configuration per resource."""
    return [Result.of(f"arn:aws:s3:::bench-bucket-{i:07d}", passing=i % 3 != 0,
                      title=f"Bucket bench-bucket-{i:07d} " + (
                          "encrypts at rest" if i % 3 else "has no default encryption"),
                      data={"rules": [{"ApplyServerSideEncryptionByDefault": {
                          "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": f"key-{i % 17}"},
                          "BucketKeyEnabled": True}] if i % 3 else [],
                          "region": "us-east-1", "versioning": "Enabled", "salt": salt})
            for i in range(n)]


def new_connection(settings: Settings) -> str:
    with session_factory(settings)() as s, s.begin():
        s.merge(Account(id="bench"))
        conn = Connection(account_id="bench", integration_id=f"bench-{uuid.uuid4().hex[:8]}",
                          status=ConnectionStatus.ACTIVE)
        s.add(conn)
        s.flush()
        return conn.id


def raw_copy(settings: Settings, items: list[Item]) -> float:
    """Baseline: COPY precomputed rows straight into `evidence`; returns seconds."""
    connection_id = new_connection(settings)
    now = datetime.now(UTC)
    with session_factory(settings)() as s, s.begin():
        raw = s.connection().connection.driver_connection
        assert isinstance(raw, PgConnection)
        start = time.perf_counter()
        with raw.cursor() as cur, cur.copy(
            "COPY evidence (account_id, connection_id, check_id, resource_id, resource_type, "
            "status, title, data, content_hash, first_seen_at, last_changed_at) FROM STDIN"
        ) as copy:
            for i in items:
                copy.write_row(("bench", connection_id, CHECK, i.resource_id, i.resource_type,
                                i.status, i.title, i.data_json, i.content_hash, now, now))
    return time.perf_counter() - start


def engine_ingest(settings: Settings, connection_id: str, batch: list[Result],
                  snapshot: list[Bucket] | None = None) -> float:
    """The engine's path from check results: keep the snapshot (hash, compare, store if
    changed), hash the results, stage, upsert, version, check state."""
    start = time.perf_counter()
    items = [Item.of(r.resource_id, "aws.s3.bucket", r.status.value, r.title, r.data)
             for r in batch]
    with session_factory(settings)() as s, s.begin():
        digest = None
        if snapshot is not None:
            now = datetime.now(UTC)
            pieces, _ = record_collected(
                s, settings, account_id="bench", connection_id=connection_id, run_id=None,
                now=now, collected={collect_buckets: Collected(((None, snapshot),), True)})
            digest = input_digest(pieces[collect_buckets])[0]
        store_check_results(s, account_id="bench", connection_id=connection_id, check_id=CHECK,
                            items=items, run_id=None, now=datetime.now(UTC),
                            snapshot_sha256=digest)
    return time.perf_counter() - start


def stored(settings: Settings) -> tuple[int, int]:
    """Compressed snapshot bytes and validity rows the bench account holds."""
    with session_factory(settings)() as s:
        size = s.scalar(select(func.coalesce(func.sum(CollectorSnapshot.stored_size), 0))
                        .where(CollectorSnapshot.account_id == "bench")) or 0
        rows = s.scalar(select(func.count()).select_from(SnapshotSeen)
                        .where(SnapshotSeen.account_id == "bench")) or 0
    return int(size), int(rows)


def snapshot_bytes(settings: Settings, n: int = 1000) -> list[tuple[str, int, int, int]]:
    """Bytes stored, validity rows and evidence versions written by a first, an unchanged and
    a changed sync of an n-bucket estate."""
    connection_id = new_connection(settings)
    rows = []
    for label, estate, unencrypted in (("first sync", buckets(n), None),
                                       ("unchanged re-sync", buckets(n), None),
                                       ("1 bucket changed", buckets(n, unencrypted=1), 1)):
        before, versions = stored(settings), count_versions(settings)
        batch = results(n)
        if unencrypted is not None:
            batch[1] = Result.of(batch[1].resource_id, passing=False, title="changed")
        engine_ingest(settings, connection_id, batch, estate)
        after = stored(settings)
        rows.append((label, after[0] - before[0], after[1] - before[1],
                     count_versions(settings) - versions))
    return rows


def count_versions(settings: Settings) -> int:
    with session_factory(settings)() as s:
        return s.scalar(select(func.count()).select_from(EvidenceVersion)) or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp:
        settings = base if base.database_url else base.model_copy(
            update={"database_url": start_postgres(Path(tmp))})
        upgrade(settings)
        table = Table(title="Evidence ingest (rows/s)")
        for col in ("rows", "raw COPY", "engine upsert", "ratio", "re-sync s",
                    "re-sync versions", "1 change versions"):
            table.add_column(col, justify="right")
        for n in args.sizes:
            batch = results(n)
            items = [Item.of(r.resource_id, "aws.s3.bucket", r.status.value, r.title, r.data)
                     for r in batch]
            copy_s = raw_copy(settings, items)
            connection_id = new_connection(settings)
            snapshot = buckets(n)
            ingest_s = engine_ingest(settings, connection_id, batch, snapshot)
            before = count_versions(settings)
            resync_s = engine_ingest(settings, connection_id, results(n), buckets(n))
            unchanged_versions = count_versions(settings) - before
            changed = results(n)
            changed[0] = Result.of(changed[0].resource_id, passing=True, title="changed")
            engine_ingest(settings, connection_id, changed, buckets(n, unencrypted=1))
            one_change = count_versions(settings) - before - unchanged_versions
            table.add_row(f"{n:,}", f"{n / copy_s:,.0f}", f"{n / ingest_s:,.0f}",
                          f"{copy_s / ingest_s:.2f}", f"{resync_s:.2f}",
                          str(unchanged_versions), str(one_change))
        sizes = snapshot_bytes(settings)
        with session_factory(settings)() as s, s.begin():
            s.execute(text("DELETE FROM snapshot_seen WHERE account_id = 'bench'"))
            s.execute(text("DELETE FROM collector_snapshot WHERE account_id = 'bench'"))
            s.execute(text("DELETE FROM evidence_version WHERE account_id = 'bench'"))
            s.execute(text("DELETE FROM evidence WHERE account_id = 'bench'"))
            s.execute(text("DELETE FROM check_state WHERE account_id = 'bench'"))
            s.execute(text("DELETE FROM connection WHERE account_id = 'bench'"))
        console.print(table)
        console.print("ratio = engine rows/s ÷ raw COPY rows/s (target ≥ 0.33). The engine "
                      "path includes keeping the snapshot (canonical JSON, SHA-256, zstandard, "
                      "stored only when changed), hashing, staging, versions and the "
                      "check-state row.")
        kept = Table(title="Snapshots kept, 1,000-bucket estate (one collector)")
        for col in ("sync", "snapshot bytes stored", "validity rows", "evidence versions"):
            kept.add_column(col, justify="right")
        for label, size, rows, versions in sizes:
            kept.add_row(label, f"{size:,}", str(rows), str(versions))
        console.print(kept)


if __name__ == "__main__":
    main()
