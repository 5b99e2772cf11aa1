"""Provider limits, handled once for every provider session: one retry policy (tenacity) and one
reader of the waits providers ask for (Retry-After, rate-limit reset headers).

A session runs each provider call through `call` (or `call_async`) with a `translate` function
that turns the provider's own failures into SDK errors (connectors.errors): that translation is
all a provider writes. A retryable error (RateLimited, ProviderUnavailable) is tried again after
the wait the provider asked for (`retry_after`), else after a capped, jittered exponential
backoff; a wait longer than the policy's cap ends the retries at once (a sync does not sleep for
an hour), and every other error leaves at once. Only what `translate` claims in this call is
retried: a provider's translate claims only its own exceptions, so an SDK error a nested `call`
gave up on leaves at once and attempts never multiply.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from connectors.errors import ConnectorError

__all__ = ["RESET_HEADERS", "RetryPolicy", "Translate", "call", "call_async", "retry_after"]

T = TypeVar("T")

RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset")
"""Rate-limit reset headers (epoch seconds): Okta's X-Rate-Limit-Reset, GitHub's
x-ratelimit-reset."""

Translate = Callable[[Exception], ConnectorError | None]
"""A provider's failure as an SDK error, or None for an exception that is not a provider
failure (it leaves the call untouched)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a throttled or failing call is tried again."""

    attempts: int = 5
    initial_wait: float = 0.5  # a backoff waits about 0.5, 1, 2, 4 … seconds
    max_wait: float = 30.0  # no single wait is longer; a longer one asked for is not awaited

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` (1-based) when the provider asked none:
        exponential, capped at `max_wait`, with equal jitter (half fixed, half random)."""
        base = min(self.max_wait, self.initial_wait * 2 ** max(0, attempt - 1))
        return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not security

    def delay(self, error: ConnectorError, attempt: int) -> float | None:
        """Seconds to wait before trying again after `error` on attempt `attempt`; None when
        retrying cannot help: the error is not retryable, or the provider asked for a longer
        wait than `max_wait` (more patience than a sync should spend)."""
        if not error.retryable:
            return None
        asked = error.retry_after
        if asked is not None:
            return asked if asked <= self.max_wait else None
        return self.backoff(attempt)


def call(policy: RetryPolicy, fn: Callable[[], T], translate: Translate) -> T:
    """Run `fn` under `policy`; a provider failure leaves as the SDK error `translate` made."""

    def attempt() -> T:
        try:
            return fn()
        except Exception as exc:
            raise _failure(exc, translate) from _cause(exc)

    try:
        return Retrying(**_options(policy))(attempt)
    except _Failed as failed:
        raise failed.error from failed.__cause__


async def call_async(policy: RetryPolicy, fn: Callable[[], Awaitable[T]],
                     translate: Translate) -> T:
    """`call` for a coroutine: waits sleep on the event loop."""

    async def attempt() -> T:
        try:
            return await fn()
        except Exception as exc:
            raise _failure(exc, translate) from _cause(exc)

    try:
        return await AsyncRetrying(**_options(policy))(attempt)
    except _Failed as failed:
        raise failed.error from failed.__cause__


def retry_after(headers: Mapping[str, Any], *, reset: bool = False,
                now: float | None = None) -> float | None:
    """Seconds an answer asks us to wait, or None when it asks nothing readable.

    `Retry-After` (delta-seconds or an HTTP-date) wins. With `reset` (the answer is a rate
    limit), a rate-limit reset epoch (RESET_HEADERS) counts next, measured against the answer's
    `Date` (the provider's clock), else ours. Providers send reset headers on every answer, so
    only the caller knows when one means "wait until then".
    """
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    clock = time.time() if now is None else now
    asked = lowered.get("retry-after")
    if asked:
        seconds = _number(asked)
        if seconds is None and (when := _http_date(asked)) is not None:
            seconds = when - clock
        if seconds is not None:
            return max(0.0, seconds)
    epoch = next((_number(lowered[h]) for h in RESET_HEADERS if h in lowered), None)
    if reset and epoch is not None:
        return max(0.0, epoch - (_http_date(lowered.get("date", "")) or clock))
    return None


class _Failed(Exception):
    """A provider failure translated in this attempt: only these are retried, never an error
    that escaped a nested call (already retried there)."""

    def __init__(self, error: ConnectorError) -> None:
        super().__init__(error.message)
        self.error = error


def _failure(exc: Exception, translate: Translate) -> Exception:
    error = translate(exc)
    return exc if error is None else _Failed(error)


def _cause(exc: Exception) -> BaseException | None:
    """What the raised failure is chained to: the provider's exception, unless it was already
    an SDK error (raised by the session itself)."""
    return exc.__cause__ if isinstance(exc, ConnectorError) else exc


class _GiveUp(stop_base):
    """Stop when the last error may not be retried or asks for a wait beyond the cap."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> bool:
        return _delay(self.policy, retry_state) is None


def _delay(policy: RetryPolicy, state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return policy.delay(exc.error, state.attempt_number) if isinstance(exc, _Failed) else None


def _options(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "retry": retry_if_exception(lambda exc: isinstance(exc, _Failed)),
        "stop": stop_after_attempt(max(1, policy.attempts)) | _GiveUp(policy),
        "wait": lambda state: _delay(policy, state) or 0.0,
        "reraise": True,
    }


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _http_date(text: str) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
