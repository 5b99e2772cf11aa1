"""When a connection is next due: its period plus a stable per-connection offset, pushed out
exponentially while its provider keeps failing.

`next_due` and `next_due_sql` are the same formula, in Python (one connection) and in SQL (a
whole dispatch batch in one statement); tests hold them equal.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    SQLColumnExpression,
    String,
    case,
    cast,
    func,
    literal,
)
from sqlalchemy.dialects.postgresql import BIT

from engine.models import Connection, Frequency

PERIODS = {
    Frequency.HOURLY: timedelta(hours=1),
    Frequency.DAILY: timedelta(days=1),
    Frequency.WEEKLY: timedelta(weeks=1),
}
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_OFFSET_BYTES = 7  # 56 bits: a non-negative bigint in SQL, so both sides agree on the modulo


def offset_of(connection_id: str, period: timedelta) -> timedelta:
    """A stable offset in [0, period): spreads connections evenly over their period."""
    seconds = int(period.total_seconds())
    digest = hashlib.sha256(connection_id.encode()).digest()[:_OFFSET_BYTES]
    return timedelta(seconds=int.from_bytes(digest, "big") % seconds)


def next_due(connection_id: str, frequency: Frequency, after: datetime) -> datetime:
    """The first slot of this connection strictly after `after` (one slot, however late)."""
    period = PERIODS[Frequency(frequency)]
    anchor = _EPOCH + offset_of(connection_id, period)
    elapsed = (after - anchor) // period
    return anchor + (elapsed + 1) * period


def next_due_sql(connection_id: SQLColumnExpression[str], frequency: SQLColumnExpression[Any],
                 after: datetime) -> ColumnElement[datetime]:
    """`next_due` as a SQL expression, so one statement can advance a whole batch."""
    period = case({f.value: int(p.total_seconds()) for f, p in PERIODS.items()},
                  value=cast(frequency, String))
    digest = func.encode(func.sha256(func.convert_to(connection_id, "UTF8")), "hex")
    offset = cast(cast(literal("x") + func.substr(digest, 1, _OFFSET_BYTES * 2),
                       BIT(_OFFSET_BYTES * 8)), BigInteger) % period
    anchor = int(_EPOCH.timestamp()) + offset
    elapsed = func.floor((func.extract("epoch", cast(after, DateTime(timezone=True))) - anchor)
                         / period)
    return func.to_timestamp(anchor + (elapsed + 1) * period)


def backoff_delay(frequency: Frequency, failures: int, cap: timedelta) -> timedelta:
    """How far past `now` a failing connection's next slot is pushed: period x (2^n - 1), capped.

    One failure skips one slot, two skip three, three skip seven, and so on up to `cap` (never
    less than one period).
    """
    if failures <= 0:
        return timedelta(0)
    period = PERIODS[Frequency(frequency)]
    return min(period * (2 ** min(failures, 20) - 1), max(cap, period))


def record_run_outcome(conn: Connection, *, failed: bool, now: datetime,
                       backoff_cap: timedelta) -> None:
    """Count a failed run against the connection and push its next sync out; a good run resets.

    A run in which the provider answered nothing usable counts as failed.
    """
    if failed:
        conn.consecutive_failures = (conn.consecutive_failures or 0) + 1
    elif not conn.consecutive_failures:
        return
    else:
        conn.consecutive_failures = 0
    delay = backoff_delay(conn.sync_frequency, conn.consecutive_failures, backoff_cap)
    conn.next_sync_at = next_due(conn.id, conn.sync_frequency, now + delay)
