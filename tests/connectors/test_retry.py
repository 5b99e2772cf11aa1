"""The SDK's one retry policy and its reader of the waits providers ask for (connectors.retry)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from connectors.base import (
    AuthFailed,
    ConnectorError,
    PermissionMissing,
    ProviderUnavailable,
    RateLimited,
    RetryPolicy,
)
from connectors.retry import call, call_async, retry_after

NOW = 1_800_000_000.0  # a fixed clock for the header tests
NO_WAIT = RetryPolicy(attempts=4, initial_wait=0.0, max_wait=30.0)


class Throttled(Exception):
    """A provider's own exception, as its client library raises it."""

    def __init__(self, asked: float | None = None) -> None:
        super().__init__("throttled")
        self.asked = asked


def translate(exc: Exception) -> ConnectorError | None:
    if isinstance(exc, Throttled):
        return RateLimited("throttled after retries", retry_after=exc.asked)
    if isinstance(exc, PermissionError):
        return PermissionMissing("no permission", permission="read")
    return None


def failing(errors: list[Exception], answer: str = "read") -> tuple[list[int], Callable[[], str]]:
    """A call that raises each of `errors` in turn, then answers; counts its attempts."""
    tried: list[int] = []

    def read() -> str:
        tried.append(1)
        if len(tried) <= len(errors):
            raise errors[len(tried) - 1]
        return answer

    return tried, read


# --- the headers ------------------------------------------------------------------------------

def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after({"Retry-After": "7"}, now=NOW) == 7.0
    assert retry_after({"retry-after": "1.5"}, now=NOW) == 1.5
    date = format_datetime(datetime.fromtimestamp(NOW + 20, UTC), usegmt=True)
    assert retry_after({"Retry-After": date}, now=NOW) == 20.0
    assert retry_after({"Retry-After": "-3"}, now=NOW) == 0.0


@pytest.mark.parametrize("value", ["soon", "inf", "nan", ""])
def test_an_unreadable_retry_after_asks_nothing(value):
    assert retry_after({"Retry-After": value}, now=NOW) is None


@pytest.mark.parametrize("header", ["X-Rate-Limit-Reset", "x-ratelimit-reset"])
def test_a_reset_epoch_counts_only_for_a_rate_limit_and_on_the_providers_clock(header):
    reset = {header: str(int(NOW) + 12)}
    assert retry_after(reset, now=NOW) is None  # sent on every answer: not a request to wait
    assert retry_after(reset, reset=True, now=NOW) == 12.0
    server_clock = format_datetime(datetime.fromtimestamp(NOW + 10, UTC), usegmt=True)
    assert retry_after({**reset, "Date": server_clock}, reset=True, now=NOW) == 2.0
    assert retry_after({**reset, "Retry-After": "3"}, reset=True, now=NOW) == 3.0


# --- the policy -------------------------------------------------------------------------------

def test_the_wait_asked_for_is_honoured_up_to_the_cap():
    policy = RetryPolicy(max_wait=30)
    assert policy.delay(RateLimited("slow down", retry_after=7), attempt=1) == 7
    assert policy.delay(RateLimited("slow down", retry_after=31), attempt=1) is None


def test_backoff_is_exponential_jittered_and_capped():
    policy = RetryPolicy(initial_wait=1, max_wait=30)
    waits = [policy.delay(ProviderUnavailable("down"), attempt=n) for n in range(1, 8)]
    assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 15 <= waits[6] <= 30


@pytest.mark.parametrize("error", [AuthFailed("refused"), PermissionMissing("denied"),
                                   ConnectorError("odd"),
                                   ProviderUnavailable("retried by its library", retryable=False)])
def test_errors_retrying_cannot_help_are_not_retried(error):
    assert RetryPolicy().delay(error, attempt=1) is None


# --- calls ------------------------------------------------------------------------------------

def test_a_throttled_call_is_tried_again_and_answers():
    tried, read = failing([Throttled(0), Throttled()])
    assert call(NO_WAIT, read, translate) == "read"
    assert len(tried) == 3


def test_after_the_last_attempt_the_translated_error_leaves_chained_to_the_providers():
    tried, read = failing([Throttled(0)] * 10)
    with pytest.raises(RateLimited, match="after retries") as caught:
        call(NO_WAIT, read, translate)
    assert len(tried) == NO_WAIT.attempts
    assert isinstance(caught.value.__cause__, Throttled)


def test_a_wait_beyond_the_cap_gives_up_at_once():
    tried, read = failing([Throttled(3600)])
    with pytest.raises(RateLimited):
        call(NO_WAIT, read, translate)
    assert len(tried) == 1


def test_a_refusal_is_not_retried_and_other_exceptions_pass_untouched():
    tried, read = failing([PermissionError()])
    with pytest.raises(PermissionMissing):
        call(NO_WAIT, read, translate)
    assert len(tried) == 1
    tried, read = failing([IndexError("end of the listing")])
    with pytest.raises(IndexError):
        call(NO_WAIT, read, translate)
    assert len(tried) == 1


def test_an_error_a_nested_call_gave_up_on_is_not_retried_again():
    inner_tried, inner = failing([Throttled(0)] * 10)
    outer_tried: list[int] = []

    def outer() -> str:
        outer_tried.append(1)
        return call(NO_WAIT, inner, translate)

    with pytest.raises(RateLimited):
        call(NO_WAIT, outer, translate)
    assert len(outer_tried) == 1 and len(inner_tried) == NO_WAIT.attempts


def test_a_coroutine_is_retried_the_same_way():
    tried: list[int] = []

    async def read() -> str:
        tried.append(1)
        if len(tried) < 3:
            raise Throttled(0)
        return "read"

    assert asyncio.run(call_async(NO_WAIT, read, translate)) == "read"
    assert len(tried) == 3
