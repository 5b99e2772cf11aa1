"""Wait slots on the real test Redis: a share per account over every process, a share per
process, given back however the wait ends, and freed by time when a holder dies."""

from __future__ import annotations

import time
import uuid

import pytest

from engine.waits import WaitSlots, wait_slots


def until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture
def slots(settings):
    def make(**changes) -> WaitSlots:
        prefix = f"{settings.redis_key_prefix}{uuid.uuid4().hex[:8]}:"
        return wait_slots(settings.model_copy(update={"redis_key_prefix": prefix, **changes}))

    return make


def test_an_account_waits_at_most_its_share_and_others_still_may(slots):
    gate = slots(sync_wait_per_account=2, sync_wait_per_process=10)
    with gate.hold("acme", 30) as a, gate.hold("acme", 30) as b, gate.hold("acme", 30) as c:
        assert (a, b, c) == (30, 30, 0.0)
        assert gate.count("acme") == 2
        with gate.hold("globex", 30) as other:
            assert other == 30
    assert gate.count("acme") == 0 and gate.count("globex") == 0


def test_two_processes_share_one_accounts_count(slots, settings):
    first = slots(sync_wait_per_account=1, sync_wait_per_process=10)
    second = WaitSlots(first.redis, first.key_prefix, per_account=1, per_process=10,
                       max_seconds=120)
    with first.hold("acme", 30) as granted, second.hold("acme", 30) as refused:
        assert (granted, refused) == (30, 0.0)


def test_a_process_lends_at_most_its_share_of_threads_to_waiting(slots):
    gate = slots(sync_wait_per_account=5, sync_wait_per_process=1)
    with gate.hold("acme", 30) as granted, gate.hold("globex", 30) as refused:
        assert (granted, refused) == (30, 0.0)
        assert gate.count("globex") == 0
    with gate.hold("globex", 30) as granted:
        assert granted == 30


def test_the_slot_is_given_back_when_the_wait_fails(slots):
    gate = slots(sync_wait_per_account=1, sync_wait_per_process=1)
    with pytest.raises(RuntimeError), gate.hold("acme", 30):
        assert gate.count("acme") == 1
        raise RuntimeError("the run vanished")
    assert gate.count("acme") == 0
    with gate.hold("acme", 30) as again:
        assert again == 30


def test_a_holder_that_died_stops_counting_when_its_wait_would_have_ended(slots):
    gate = slots(sync_wait_per_account=1)
    gate.margin_seconds = 0.0
    assert gate._acquire("acme", 0.3) is not None  # never released, as by a killed process
    assert gate.count("acme") == 1

    until(lambda: gate.count("acme") == 0)
    with gate.hold("acme", 30) as granted:
        assert granted == 30


def test_a_long_wait_is_cut_to_the_longest_allowed(slots):
    gate = slots(sync_wait_max_seconds=45)
    with gate.hold("acme", 120) as granted:
        assert granted == 45


def test_without_redis_nobody_waits_and_nothing_fails(slots):
    gate = slots(redis_url="redis://127.0.0.1:1/0")
    with gate.hold("acme", 30) as granted:
        assert granted == 0.0
    with gate.hold("acme", 30) as granted:  # the process share was given back
        assert granted == 0.0
    assert all(gate._process.acquire(blocking=False) for _ in range(gate.per_process))
