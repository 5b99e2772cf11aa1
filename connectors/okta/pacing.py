"""Okta's rate limits, kept rather than hit: each answer's X-Rate-Limit-Remaining and
X-Rate-Limit-Reset say how much of the endpoint's window is left; when the rest (less the calls
still in flight) falls to a reserve, the next call waits for the reset instead of drawing a 429.

Okta counts per endpoint and per minute, and warns (then throttles harder) when an org keeps
hitting its limits, so a long read such as every user's factors paces itself. A 429 that happens
anyway is the retry policy's (connectors.retry waits for the reset it names).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.retry import retry_after

PACE_RESERVE = 10
"""Requests of a window left unspent (or a quarter of a smaller window): room for the org's
admins and other integrations, which share the limit."""


@dataclass
class _Window:
    """What is known of one action's current rate-limit window."""

    in_flight: int = 0  # calls sent and not yet answered
    remaining: int | None = None  # the least X-Rate-Limit-Remaining answered in this window
    reset: str = ""  # the window's X-Rate-Limit-Reset, as sent
    resets_at: float = 0.0  # time.monotonic() when it resets
    reserve: int = PACE_RESERVE


class RateBudget:
    """The rate-limit windows of one event loop's calls, by action (one endpoint each)."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self._windows: dict[str, _Window] = {}

    async def spend(self, action: str) -> None:
        """Take one call of `action`'s window, first waiting for its reset if it is spent."""
        window = self._windows.setdefault(action, _Window())
        while window.remaining is not None \
                and window.remaining - window.in_flight <= window.reserve:
            wait = window.resets_at - time.monotonic()
            if wait <= 0:
                window.remaining = None  # a new window: the next answer says what is left
                break
            await asyncio.sleep(min(wait, self.max_wait))
        window.in_flight += 1

    def settle(self, action: str, headers: Mapping[str, str] | None) -> None:
        """Record a call's answer (None: it failed before Okta's headers could be read)."""
        window = self._windows.setdefault(action, _Window(in_flight=1))
        window.in_flight = max(0, window.in_flight - 1)
        lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        try:
            remaining = int(lowered["x-rate-limit-remaining"])
            limit = int(lowered.get("x-rate-limit-limit") or 0)
        except (KeyError, ValueError):
            return
        reset = lowered.get("x-rate-limit-reset", "")
        wait = retry_after({k: v for k, v in lowered.items() if k != "retry-after"}, reset=True)
        if wait is None:
            return
        if window.remaining is not None and reset == window.reset:
            remaining = min(remaining, window.remaining)  # answers arrive out of order
        window.remaining, window.reset = remaining, reset
        window.resets_at = time.monotonic() + wait
        window.reserve = min(PACE_RESERVE, limit // 4) if limit else PACE_RESERVE
