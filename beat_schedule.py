"""The periodic schedule, readable at a glance (celery beat reads SCHEDULE)."""

from __future__ import annotations

from typing import Any

SCHEDULE: dict[str, dict[str, Any]] = {
    # Queue a run for every connection whose next slot has come (hourly/daily/weekly + jitter).
    "dispatch-due-syncs": {"task": "schedule.dispatch_due", "schedule": 60.0,
                           "options": {"queue": "default", "expires": 55}},
}
