"""Conditional requests through the real PyGithub: an unchanged re-sync is answered 304 for
each GET, spends almost no rate-limit points, and reaches the same verdicts; a change is read.
The answers outlive the worker in the connection's store (Postgres), so a new worker process
still sends If-None-Match."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.base import EndpointPolicy
from connectors.github import GithubConnector
from connectors.github.etags import EtagCache, Stored, forget_etag_caches
from connectors.github.kit import seed_estate
from connectors.github.kit.estate import REPOS, Protection
from engine.conditional_cache import PostgresConditionalCache
from engine.connections import disconnect
from engine.db import session_factory
from engine.models.conditional_cache import ConditionalCacheEntry
from engine.settings import Settings
from engine.tenancy import scope_to_account
from tests.conftest import settings_env
from tests.connectors.github.conftest import connector
from tests.engine import fake

ROOT = Path(__file__).parents[3]


def sync_with(conn: GithubConnector):
    outcomes = list(conn.run_checks())
    assert all(o.errors == [] for o in outcomes)
    return {o.check.id: {r.resource_id: r.status.value for r in o.results} for o in outcomes}


def sync(estate):
    return sync_with(connector(estate.credentials(), estate.config()))


def test_an_unchanged_resync_is_answered_not_modified_and_costs_almost_no_points(github,
                                                                                 github_api):
    forget_etag_caches()
    assert sync(github) == github.expected
    first_requests, first_points = len(github_api.requests), github_api.points
    assert github_api.not_modified == 0

    assert sync(github) == github.expected
    again = len(github_api.requests) - first_requests
    spent = github_api.points - first_points
    assert again == first_requests  # the same reads ...
    assert spent + github_api.not_modified == again
    # ... every 200 of the first answered 304; only 404s ("not protected", no CODEOWNERS at
    # this path, alerts off) and 204s, which carry no ETag, still cost a point
    assert github_api.not_modified >= 2 * spent
    assert github_api.hits(r"/orgs/acme-corp/repos\?.*page=3")  # paging follows stored Links


def test_a_changed_resource_is_read_again_and_judged_anew(github_api):
    forget_etag_caches()
    estate = seed_estate(github_api.base_url)
    github_api.serve(estate)
    sync(estate)
    changed = tuple(replace(r, protection=Protection(2, True, False, True, ("ci",), True, True,
                                                     True))
                    if r.name == "payments-service" else r for r in REPOS)
    estate = seed_estate(github_api.base_url, repos=changed)
    github_api.serve(estate)
    got = sync(estate)
    assert got == estate.expected
    assert got["github.branch.signed_commits_required"][
        "github:acme-corp/payments-service"] == "passing"


def test_answers_are_replayed_only_to_the_token_that_was_shown_them(github):
    forget_etag_caches()
    sync(github)
    mine = connector(github.credentials()).session().etags
    other = connector({**github.credentials(), "token": "ghp_" + "y" * 36}).session().etags
    assert mine is not None and len(mine) > 0
    assert other is not None and len(other) == 0 and other is not mine


def test_the_cache_is_bounded_in_bytes_and_round_trips_as_plain_json():
    cache = EtagCache(max_bytes=10)
    cache.put("a", Stored('"1"', {"Link": "<x>"}, b"123456"))
    cache.put("b", Stored('"2"', {}, b"7890"))
    cache.put("c", Stored('"3"', {}, b"xyz"))  # over 10 bytes: the oldest goes
    assert cache.get("a") is None and cache.get("c") is not None
    changed, dropped = cache.take_changes()  # what a run saves to the connection's store
    assert (set(changed), dropped) == ({"b", "c"}, {"a"})
    assert cache.take_changes() == ({}, set())
    again = EtagCache()
    again.load(cache.dump())
    again.load({"bad": {"etag": 1}})
    assert again.get("b") == Stored('"2"', {}, b"7890") and len(again) == 2
    assert again.take_changes() == ({}, set())  # loaded answers are not changes


# --- the cache outlives the worker: the connection's store in Postgres ------------------------

@pytest.fixture
def store(settings: Settings, db: None) -> PostgresConditionalCache:
    factory = session_factory(settings)
    return PostgresConditionalCache(factory, fake.add_connection(factory, settings, "github"))


def stored_rows(store: PostgresConditionalCache) -> list[tuple[str, str, datetime]]:
    with store.factory() as s:
        return sorted(s.execute(select(ConditionalCacheEntry.url, ConditionalCacheEntry.scope,
                                       ConditionalCacheEntry.stored_at).where(
            ConditionalCacheEntry.connection_id == store.connection_id)).tuples().all())


def _sync_in_a_new_process() -> None:
    """A worker process that never saw the connection: sync it with the connection's store
    (argv: credentials JSON, config JSON, connection id) and print the verdicts."""
    raw, config, connection_id = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    conn = GithubConnector(GithubConnector.parse_credentials(raw), config,
                           endpoints=EndpointPolicy(allow_custom=True),
                           conditional_cache=PostgresConditionalCache(
                               session_factory(Settings()), connection_id))
    print(json.dumps({o.check.id: {r.resource_id: r.status.value for r in o.results}
                      for o in conn.run_checks()}))


def test_an_unchanged_resync_in_a_new_worker_process_still_sends_if_none_match(
        github, github_api, settings, store):
    forget_etag_caches()
    first = connector(github.credentials(), github.config())
    first.conditional_cache = store
    assert sync_with(first) == github.expected
    rows = stored_rows(store)
    assert len(rows) == len(first.session().etags) > 20
    assert len({scope for _, scope, _ in rows}) == 1
    sent, points, not_modified = len(github_api.requests), github_api.points, \
        github_api.not_modified

    child = subprocess.run(
        [sys.executable, "-c", "from tests.connectors.github.test_conditional import "
         "_sync_in_a_new_process as run; run()", json.dumps(github.credentials()),
         json.dumps(github.config()), store.connection_id],
        cwd=ROOT, env={**os.environ, **settings_env(settings)}, capture_output=True, text=True,
        timeout=120)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == github.expected
    again = len(github_api.requests) - sent
    answered_304 = github_api.not_modified - not_modified
    assert again == sent  # the same reads, every stored one conditional ...
    assert answered_304 == len(rows)  # ... and answered 304
    assert github_api.points - points == again - answered_304  # only 404s and 204s cost
    assert stored_rows(store) == rows  # nothing changed, nothing written


def test_answers_are_stored_for_one_token_and_bounded_per_connection(store):
    assert store.load("scope-a") == {}
    store.save("scope-a", {"a": Stored('"1"', {"Link": "<x>"}, b"123456")}, ())
    assert store.load("scope-a") == {"a": Stored('"1"', {"Link": "<x>"}, b"123456")}
    assert store.load("scope-b") == {}  # another token's session reads nothing
    small = PostgresConditionalCache(store.factory, store.connection_id, max_bytes=10)
    small.save("scope-a", {"b": Stored('"2"', {}, b"7890")}, ())
    small.save("scope-a", {"c": Stored('"3"', {}, b"xyz")}, ())  # 13 bytes: the oldest goes
    assert list(small.load("scope-a")) == ["c", "b"]  # most recently stored first
    small.save("scope-a", {}, {"b"})  # evicted in the worker: dropped here too
    assert list(small.load("scope-a")) == ["c"]
    small.save("scope-b", {"d": Stored('"4"', {}, b"1")}, ())  # new credentials
    assert [url for url, _, _ in stored_rows(store)] == ["d"]


def test_disconnecting_forgets_the_stored_answers(store):
    store.save("scope-a", {"a": Stored('"1"', {}, b"123")}, ())
    with scope_to_account(store.factory(), "acme") as s, s.begin():
        disconnect(s, "github", datetime.now(UTC))
    assert stored_rows(store) == []
