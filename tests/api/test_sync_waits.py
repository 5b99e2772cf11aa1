"""`POST .../sync?wait=` is rationed: beyond the account's (or the process's) share of waiting
requests the answer is 202 at once with the run to poll, the same body as without `wait`; a
slot is given back when its wait ends, whether the run finished or the wait failed."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import delete

from engine.db import session_factory
from engine.models import SyncRun
from engine.sync import run_sync
from engine.verification import verify_connection
from tests.api.conftest import SECOND_ACCOUNT

FAKE = "/api/v1/integrations/fake"


def until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


class Waiter(threading.Thread):
    """One `sync?wait=` request on a client of its own."""

    def __init__(self, client, auth, wait: int) -> None:
        super().__init__(daemon=True)
        self.client, self.auth, self.wait = client, auth, wait
        self.response = None

    def run(self) -> None:
        self.response = self.client.post(f"{FAKE}/sync?wait={self.wait}", headers=self.auth)


@pytest.fixture
def waits(app_client, settings, jobs, fake_connector):
    """An app with its own wait counts; jobs are recorded, so a queued run stays queued until
    the test runs it."""

    def make(**changes):
        prefix = f"{settings.redis_key_prefix}{uuid.uuid4().hex[:8]}:"
        return app_client(redis_key_prefix=prefix, **changes)

    return make


def queued_run(client, auth, settings) -> str:
    """Connect the fake integration and verify it; its first run is queued (not run)."""
    resp = client.post(f"{FAKE}/connect?wait=0", headers=auth,
                       json={"credentials": {"token": "t0k3n"}, "sync_frequency": "hourly"})
    assert resp.status_code == 202, resp.get_json()
    verify_connection(session_factory(settings), resp.get_json()["connectionId"], settings)
    plain = client.post(f"{FAKE}/sync", headers=auth)
    assert plain.status_code == 202
    return str(plain.get_json()["run"]["id"])


def test_a_wait_beyond_the_accounts_share_answers_202_at_once_with_the_run(waits, auth,
                                                                          settings):
    client = waits(sync_wait_per_account=1, sync_wait_per_process=4)
    run_id = queued_run(client, auth, settings)
    slots = client.application.extensions["wait_slots"]
    first = Waiter(client.application.test_client(), auth, wait=60)
    first.start()
    until(lambda: slots.count("acme") == 1)

    second = client.post(f"{FAKE}/sync?wait=120", headers=auth)

    # Had it waited, it would still wait: the run is queued and the first waiter waits on.
    assert first.is_alive()
    assert second.status_code == 202
    plain = client.post(f"{FAKE}/sync", headers=auth)
    assert second.get_json() == plain.get_json()
    assert second.get_json()["run"]["id"] == run_id
    assert second.get_json()["run"]["status"] == "queued"

    run_sync(session_factory(settings), run_id, worker="test", settings=settings)
    first.join(timeout=60)
    assert not first.is_alive() and first.response.status_code == 200
    assert first.response.get_json()["run"]["id"] == run_id
    assert slots.count("acme") == 0


def test_a_process_keeps_threads_for_others_when_its_waiting_share_is_taken(waits, auth,
                                                                           second_auth,
                                                                           settings):
    client = waits(sync_wait_per_account=5, sync_wait_per_process=1)
    queued_run(client, auth, settings)
    queued_run(client, second_auth, settings)
    slots = client.application.extensions["wait_slots"]
    first = Waiter(client.application.test_client(), auth, wait=60)
    first.start()
    until(lambda: slots.count("acme") == 1)

    other = client.post(f"{FAKE}/sync?wait=120", headers=second_auth)

    assert first.is_alive()
    assert other.status_code == 202
    assert slots.count(SECOND_ACCOUNT) == 0
    with session_factory(settings)() as s, s.begin():
        s.execute(delete(SyncRun))  # ends the first wait (404), so the test does not idle
    first.join(timeout=60)
    assert not first.is_alive()


def test_the_slot_is_given_back_when_the_wait_fails(waits, auth, settings):
    client = waits(sync_wait_per_account=1)
    queued_run(client, auth, settings)
    slots = client.application.extensions["wait_slots"]
    first = Waiter(client.application.test_client(), auth, wait=60)
    first.start()
    until(lambda: slots.count("acme") == 1)

    with session_factory(settings)() as s, s.begin():
        s.execute(delete(SyncRun))  # the run vanishes under the waiter
    first.join(timeout=60)

    assert not first.is_alive()
    assert first.response.status_code == 404
    assert first.response.get_json()["error"]["code"] == "run_not_found"
    assert slots.count("acme") == 0


def test_a_connect_beyond_the_share_answers_202_pending_at_once(waits, auth, settings):
    client = waits(sync_wait_per_account=0)

    resp = client.post(f"{FAKE}/connect?wait=120", headers=auth,
                       json={"credentials": {"token": "t0k3n"}, "sync_frequency": "hourly"})

    assert resp.status_code == 202 and resp.get_json()["status"] == "pending"
