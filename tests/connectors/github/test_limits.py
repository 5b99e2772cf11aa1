"""GitHub's limits and failures over real HTTP: rate limits, refused tokens, denials, outages."""

from __future__ import annotations

import time

import pytest

from connectors.base import AuthFailed, Status
from connectors.github.kit import TOKEN
from tests.connectors.github.conftest import FAST_RETRIES, connector

COLLABORATORS = "github.repo.outside_collaborator_admins"
STALE = "github.repo.stale_outside_collaborators"  # reads the same listing
BRANCH_CHECKS = ("github.branch.approving_review_required", "github.branch.reviews_required",
                 "github.branch.status_checks_required", "github.branch.force_pushes_blocked",
                 "github.branch.admins_enforced")


def outcomes_of(estate):
    return {o.check.id: o for o in connector(estate.credentials(), estate.config()).run_checks()}


def verdicts(outcomes):
    return {check_id: {r.resource_id: r.status.value for r in o.results}
            for check_id, o in outcomes.items()}


@pytest.mark.parametrize("status, message", [
    (429, "Too Many Requests"),
    (403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
          "again."),
])
def test_a_rate_limit_with_retry_after_is_waited_out_and_the_sync_succeeds(github, github_api,
                                                                           status, message):
    github_api.fail(r"/orgs/acme-corp/repos", status, times=1, message=message,
                    headers={"Retry-After": "1"})

    outcomes = outcomes_of(github)

    assert verdicts(outcomes) == github.expected
    assert all(o.errors == [] for o in outcomes.values())
    assert len(github_api.hits(r"/orgs/acme-corp/repos\?per_page=100&type=all$")) == 2


def test_a_spent_primary_limit_waits_for_its_reset_then_retries(github, github_api):
    github_api.fail(r"/actions/permissions$", 403, times=1, message="API rate limit exceeded for "
                    "user ID 1.", headers={"X-RateLimit-Remaining": "0",
                                           "X-RateLimit-Reset": str(int(time.time()))})

    outcomes = outcomes_of(github)

    assert verdicts(outcomes) == github.expected
    assert len(github_api.hits(r"/actions/permissions$")) == 2


def test_a_reset_beyond_the_cap_is_not_awaited_and_errors_only_that_collector(github,
                                                                             github_api):
    github_api.fail(r"/actions/permissions$", 403, message="API rate limit exceeded for user ID 1.",
                    headers={"X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset": str(int(time.time()) + 3600)})

    outcomes = outcomes_of(github)

    assert len(github_api.hits(r"/actions/permissions$")) == 1  # no retry, no hour-long sleep
    actions = outcomes["github.org.actions_allowed_restricted"]
    assert [r.status for r in actions.results] == [Status.ERROR]
    assert "rate limit" in actions.results[0].title and "resets in" in actions.results[0].title
    others = {k: v for k, v in verdicts(outcomes).items()
              if k != "github.org.actions_allowed_restricted"}
    assert others == {k: v for k, v in github.expected.items() if k in others}


def test_a_failed_page_is_retried_without_restarting_the_listing(github, github_api):
    github_api.fail(r"/orgs/acme-corp/repos\?.*page=2", 502, times=1)

    assert verdicts(outcomes_of(github)) == github.expected
    assert len(github_api.hits(r"/orgs/acme-corp/repos\?per_page=100")) == 1
    assert len(github_api.hits(r"/orgs/acme-corp/repos\?.*page=2")) == 2


def test_a_transient_5xx_is_retried_and_the_sync_succeeds(github, github_api):
    github_api.fail(r"/api-gateway/branches/main/protection$", 503, times=2)

    assert verdicts(outcomes_of(github)) == github.expected
    assert len(github_api.hits(r"/api-gateway/branches/main/protection")) == 3


def test_an_endpoint_down_for_good_errors_its_checks_only(github, github_api):
    github_api.fail(r"/collaborators", 503)

    outcomes = outcomes_of(github)

    # one attempt per policy attempt, so PyGithub's own retries do not multiply them
    assert len(github_api.hits(r"/collaborators")) == FAST_RETRIES.attempts
    for check_id in (COLLABORATORS, STALE):
        down = outcomes[check_id]
        assert [(r.resource_id, r.status) for r in down.results] == [("scope:global",
                                                                      Status.ERROR)]
        assert "unavailable" in down.results[0].title and "503" in down.results[0].title
        assert down.errors and not down.crashed
    got = verdicts(outcomes)
    for check_id, expected in github.expected.items():
        if check_id not in (COLLABORATORS, STALE):
            assert got[check_id] == expected, check_id
            assert outcomes[check_id].errors == []


def test_a_refused_token_raises_auth_failed_from_run_checks_and_verify(github, github_api):
    github_api.fail(r".", 401, message="Bad credentials")
    conn = connector(github.credentials())

    with pytest.raises(AuthFailed) as from_checks:
        list(conn.run_checks())
    with pytest.raises(AuthFailed) as from_verify:
        conn.verify()

    for refused in (from_checks.value, from_verify.value):
        assert refused.message.startswith("GitHub rejected the token: Bad credentials")
        assert TOKEN not in str(refused) and TOKEN not in repr(refused.details)
    assert len(github_api.hits(r"/orgs/acme-corp$")) == 2  # once each, never retried


def test_an_unknown_organization_refuses_the_connection_naming_the_field(github):
    conn = connector({**github.credentials(), "organization": "acme-typo"})
    with pytest.raises(AuthFailed, match="no organization 'acme-typo'.*check `organization`"):
        conn.verify()
    with pytest.raises(AuthFailed):
        list(conn.run_checks())


def test_a_wrong_token_is_refused_by_the_server_itself(github):
    conn = connector({**github.credentials(), "token": "ghp_" + "x" * 36})
    with pytest.raises(AuthFailed, match="GitHub rejected the token"):
        conn.verify()


def test_a_denied_repository_setting_names_the_permission_and_others_stand(github, github_api):
    github_api.fail(r"/web-frontend/branches/main/protection", 403,
                    message="Must have admin rights to Repository.")

    outcomes = outcomes_of(github)

    for check_id in BRANCH_CHECKS:
        [denied] = [r for r in outcomes[check_id].results
                    if r.resource_id == "github:acme-corp/web-frontend"]
        assert denied.status is Status.ERROR
        assert "admin" in denied.title and "Administration: read" in denied.title
        rest = {r.resource_id: r.status.value for r in outcomes[check_id].results
                if r.resource_id != denied.resource_id}
        assert rest == {k: v for k, v in github.expected[check_id].items()
                        if k != denied.resource_id}
    assert verdicts(outcomes)[COLLABORATORS] == github.expected[COLLABORATORS]


def test_an_org_setting_denied_to_a_non_owner_token_names_admin_org(github, github_api):
    github_api.fail(r"/actions/permissions$", 403, message="Resource not accessible by "
                    "personal access token")

    actions = outcomes_of(github)["github.org.actions_allowed_restricted"]

    [result] = actions.results
    assert result.status is Status.ERROR and "admin:org" in result.title
    assert "organization Administration: read" in result.title
