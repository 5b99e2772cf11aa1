"""When a connection is next due: its period plus a stable per-connection offset."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from engine.models import Frequency

PERIODS = {
    Frequency.HOURLY: timedelta(hours=1),
    Frequency.DAILY: timedelta(days=1),
    Frequency.WEEKLY: timedelta(weeks=1),
}
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def offset_of(connection_id: str, period: timedelta) -> timedelta:
    """A stable offset in [0, period): spreads connections evenly over their period."""
    seconds = int(period.total_seconds())
    value = int.from_bytes(hashlib.sha256(connection_id.encode()).digest()[:8], "big")
    return timedelta(seconds=value % seconds)


def next_due(connection_id: str, frequency: Frequency, after: datetime) -> datetime:
    """The first slot of this connection strictly after `after` (one slot, however late)."""
    period = PERIODS[Frequency(frequency)]
    anchor = _EPOCH + offset_of(connection_id, period)
    elapsed = (after - anchor) // period
    due = anchor + (elapsed + 1) * period
    return due
