"""Words a compliance lead reads: "3 controls failing", "synced 2 hours ago"."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

STATUS_WORDS = {
    "passing": "Passing", "failing": "Failing", "error": "Error",
    "not_evaluated": "Not yet tested", "not_applicable": "Not applicable",
    "active": "Active", "pending": "Being verified", "disconnected": "Disconnected",
    "queued": "Queued", "running": "Running", "succeeded": "Succeeded",
    "partial": "Partly succeeded", "failed": "Failed", "cancelled": "Cancelled",
}
STATUS_ICONS = {
    "passing": "✓", "succeeded": "✓", "active": "✓",
    "failing": "✗", "failed": "✗", "error": "!", "partial": "!",
    "not_evaluated": "○", "not_applicable": "–", "pending": "…", "queued": "…",
    "running": "↻", "disconnected": "–", "cancelled": "–",
}
STATUS_TONES = {
    "passing": "good", "succeeded": "good", "active": "good",
    "failing": "bad", "failed": "bad", "error": "warn", "partial": "warn",
}


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """`plural(3, "control")` -> "3 controls"."""
    return f"{n} {noun if n == 1 else (plural_form or noun + 's')}"


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return plural(int(seconds // size), unit)
    return ""


def ago(when: datetime | None, now: datetime) -> str:
    """"2 hours ago", "just now", or "never"."""
    if when is None:
        return "never"
    span = _span((now - when).total_seconds())
    return f"{span} ago" if span else "just now"


def ahead(when: datetime | None, now: datetime) -> str:
    """"in 40 minutes", "due now", or "not scheduled"."""
    if when is None:
        return "not scheduled"
    span = _span((when - now).total_seconds())
    return f"in {span}" if span else "due now"


def duration(ms: int | None) -> str:
    """"1 min 4 s", "850 ms", or "–" for a run that has not finished."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms} ms"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def percent(rate: float | None) -> str:
    return "no results yet" if rate is None else f"{round(rate * 100)}%"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(ago=ago, ahead=ahead, percent=percent, duration=duration)
    app.jinja_env.globals.update(
        plural=plural, STATUS_WORDS=STATUS_WORDS, STATUS_ICONS=STATUS_ICONS,
        STATUS_TONES=STATUS_TONES)
