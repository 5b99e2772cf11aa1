"""Conditional requests through the real PyGithub: an unchanged re-sync is answered 304 for
each GET, spends almost no rate-limit points, and reaches the same verdicts; a change is read."""

from __future__ import annotations

from dataclasses import replace

from connectors.github.etags import EtagCache, Stored, forget_etag_caches
from connectors.github.kit import seed_estate
from connectors.github.kit.estate import REPOS, Protection
from tests.connectors.github.conftest import connector


def sync(estate):
    outcomes = list(connector(estate.credentials(), estate.config()).run_checks())
    assert all(o.errors == [] for o in outcomes)
    return {o.check.id: {r.resource_id: r.status.value for r in o.results} for o in outcomes}


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
    again = EtagCache()
    again.load(cache.dump())
    again.load({"bad": {"etag": 1}})
    assert again.get("b") == Stored('"2"', {}, b"7890") and len(again) == 2
