"""The periodic schedule, readable at a glance (celery beat reads `schedule(settings)`).

Intervals come from settings (EVIDENCE_DISPATCH_SECONDS, EVIDENCE_REAP_SECONDS) so fault tests
can run them every second. Every entry expires before its next tick, so a beat that was down
or a busy `default` queue never runs a backlog of stale ticks.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from engine.settings import Settings


def schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        # Queue one run for every connection whose slot has come (period + stable jitter),
        # then move it to its next slot. Several beats are safe: rows are claimed SKIP LOCKED.
        "dispatch-due-syncs": _every(settings.dispatch_seconds, "schedule.dispatch_due"),
        # Give runs whose worker died (stale heartbeat) back to the queue, or fail them after
        # EVIDENCE_MAX_RUN_ATTEMPTS; send again runs whose message was lost. The same for the
        # leased tasks: connection verifies, mail, the upload expiry (engine/lease.py).
        "reap-stale-runs": _every(settings.reap_seconds, "maintenance.reap_stale_runs"),
        # Delete finished runs and control history older than EVIDENCE_HISTORY_RETENTION_DAYS.
        "prune-history": {"task": "maintenance.prune_history",
                          "schedule": crontab(hour=3, minute=17),
                          "options": {"queue": "default", "expires": 3600}},
        # Delete pushed uploads nobody verified within EVIDENCE_UPLOAD_VERIFY_WINDOW_SECONDS
        # (their objects from storage; their rows stay as `expired`).
        "expire-unverified-uploads": {"task": "maintenance.expire_unverified_uploads",
                                      "schedule": crontab(minute=41),
                                      "options": {"queue": "default", "expires": 3600}},
        # Sign a ledger checkpoint (length and head) of every account whose chain grew.
        "checkpoint-ledgers": {"task": "ledger.checkpoint", "schedule": crontab(hour=0, minute=5),
                               "options": {"queue": "default", "expires": 3600}},
    }


def _every(seconds: float, task: str) -> dict[str, Any]:
    return {"task": task, "schedule": seconds,
            "options": {"queue": "default", "expires": max(seconds * 0.9, 1.0)}}
