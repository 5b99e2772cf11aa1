"""Dispatch tick: one `dispatch_due` tick at 10k, 100k and 1M connections with 1/60 due.

For each size it prints the tick's time (database work: claim with SKIP LOCKED, advance the
slot, insert the runs; the job sender is a counter, so no broker time), the rows it touched,
and a second tick right after (nothing due): the cost follows the number due, not the number of
connections. Rows are generated with one INSERT ... SELECT generate_series per table.

Runs in a scratch database created (and dropped) on DATABASE_URL's server, or in an embedded
PostgreSQL when DATABASE_URL is unset.

    python bench/dispatch.py [--sizes 10000 100000 1000000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url

from engine.db import Job, session_factory, set_job_sender
from engine.dispatch import dispatch_due
from engine.embedded import start_postgres
from engine.migrate import upgrade
from engine.settings import Settings, get_settings

console = Console(width=150)
DUE_EVERY = 60  # one connection in 60 is due: an hourly estate dispatched every minute

GENERATE = [
    "TRUNCATE sync_run, connection, account RESTART IDENTITY CASCADE",
    "INSERT INTO account (id) SELECT 'acct-' || g FROM generate_series(0, :n / 4) g",
    """INSERT INTO connection (id, account_id, integration_id, status, sync_frequency, config,
                              metadata, next_sync_at)
       SELECT 'conn-' || lpad(g::text, 8, '0'), 'acct-' || (g / 4), 'provider' || (g % 4),
               'active', 'hourly', '{}', '{}',
               CASE WHEN g % :due_every = 0
                    THEN now() - make_interval(secs => 1 + g % 3000)
                    ELSE now() + make_interval(secs => 60 + (g::bigint * 7919) % 3500) END
        FROM generate_series(0, :n - 1) g""",
]


@contextmanager
def scratch_database(base: Settings) -> Iterator[Settings]:
    """A database of the bench's own: on DATABASE_URL's server, or embedded."""
    if base.database_url is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield base.model_copy(update={"database_url": start_postgres(Path(tmp))})
        return
    url = make_url(base.database_url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"evidence_bench_dispatch_{uuid.uuid4().hex[:8]}"
    admin = url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.model_copy(update={
            "database_url": url.set(database=name).render_as_string(hide_password=False)})
    finally:
        session_factory(base.model_copy(update={"database_url": url.set(
            database=name).render_as_string(hide_password=False)})).kw["bind"].dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def generate(settings: Settings, n: int) -> float:
    started = time.perf_counter()
    with session_factory(settings)() as s, s.begin():
        for statement in GENERATE:
            s.execute(text(statement), {"n": n, "due_every": DUE_EVERY})
    engine = session_factory(settings).kw["bind"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE connection, sync_run, account"))
    return time.perf_counter() - started


def tick(settings: Settings, batch: int, now: datetime) -> tuple[float, int, int, int]:
    """One dispatch tick, batch after batch until a batch comes back short."""
    claimed = queued = batches = 0
    started = time.perf_counter()
    while True:
        with session_factory(settings)() as s, s.begin():
            result = dispatch_due(s, now, batch)
        claimed, queued, batches = claimed + result.claimed, queued + len(result.queued), \
            batches + 1
        if result.claimed < batch:
            return time.perf_counter() - started, claimed, queued, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=get_settings().dispatch_batch)
    args = parser.parse_args()
    sent: list[Job] = []
    set_job_sender(sent.append)
    table = Table(title=f"One dispatch tick, 1/{DUE_EVERY} of the connections due "
                        f"(batches of {args.batch})")
    for col in ("connections", "due", "generate s", "tick s", "batches", "connections advanced",
                "runs inserted", "jobs", "ms per due", "next tick s (0 due)"):
        table.add_column(col, justify="right")
    with scratch_database(get_settings()) as settings:
        upgrade(settings)
        for n in args.sizes:
            gen_s = generate(settings, n)
            sent.clear()
            now = datetime.now(UTC)
            tick_s, claimed, queued, batches = tick(settings, args.batch, now)
            idle_s, _, _, _ = tick(settings, args.batch, now)  # the same minute, again
            due = (n + DUE_EVERY - 1) // DUE_EVERY
            table.add_row(f"{n:,}", f"{due:,}", f"{gen_s:.1f}", f"{tick_s:.3f}", str(batches),
                          f"{claimed:,}", f"{queued:,}", f"{len(sent):,}",
                          f"{1000 * tick_s / max(claimed, 1):.3f}", f"{idle_s:.4f}")
            console.log(f"{n:,} connections: tick {tick_s:.3f} s for {claimed:,} due")
    console.print(table)
    console.print("rows touched per tick = connections advanced (one UPDATE each) + runs "
                  "inserted; a connection with a run still open keeps it. Jobs are counted, not "
                  "published: sending them to Redis adds roughly one round trip each.")


if __name__ == "__main__":
    main()
