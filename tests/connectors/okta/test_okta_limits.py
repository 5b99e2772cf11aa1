"""Okta's limits, handled in one place: rate limits honoured, auth refusals not retried, and a
failing service failing only the checks that need it. Real okta SDK, local server, no mocks."""

from __future__ import annotations

import time

import pytest

from connectors.base import AuthFailed, ProviderUnavailable, Status
from connectors.okta import OktaCredentials, OktaSession, factors
from connectors.okta.kit import OktaServer, okta_server
from connectors.okta.session import OktaApi, RetryPolicy, Scope
from tests.connectors.okta.conftest import OPEN, connector, verdicts

ADMIN_CHECK = "okta.admin.super_admin_count"


def test_a_429_is_retried_after_the_rate_limit_reset_then_succeeds(okta: OktaServer):
    reset = int(time.time()) + 2
    okta.fail("/api/v1/users", 429, times=1, headers={
        "X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0",
        "X-Rate-Limit-Reset": str(reset)})

    assert connector(okta.estate.credentials()).verify()["authMode"] == "api_token"

    limited, retried = okta.requests_to("/api/v1/users")
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at >= reset - 0.05  # not before Okta said the window resets


def test_a_429_with_retry_after_is_retried_after_that_many_seconds(okta: OktaServer):
    okta.fail("/api/v1/policies", 429, times=2, headers={"Retry-After": "1"})

    outcomes = list(connector(okta.estate.credentials()).run_checks())

    assert verdicts(outcomes) == okta.estate.expected
    reads = [s for s in okta.requests_to("/api/v1/policies") if s.path == "/api/v1/policies"]
    limited = [s for s in reads if s.status == 429]
    assert len(limited) == 2
    for refused in limited:  # the same page asked again, a second or more later
        again = next(s for s in reads if s.at > refused.at and s.query == refused.query)
        assert again.at - refused.at >= 1.0


def test_rate_limit_retries_are_capped_and_not_multiplied_by_the_sdk(okta: OktaServer):
    okta.fail("/api/v1/iam", 429, times=None, headers={"Retry-After": "0"})

    outcomes = {o.check.id: o for o in connector(okta.estate.credentials()).run_checks()}

    admin = outcomes.pop(ADMIN_CHECK)
    assert [r.status for r in admin.results] == [Status.ERROR]
    assert "rate-limited" in admin.errors[0]
    # the connector's 5 attempts, each one HTTP request: the SDK's own retry is off
    assert len(okta.requests_to("/api/v1/iam")) == RetryPolicy().attempts
    assert {cid: verdicts([o])[cid] for cid, o in outcomes.items()} == {
        cid: v for cid, v in okta.estate.expected.items() if cid != ADMIN_CHECK}


def test_a_401_fails_the_run_with_what_to_fix_and_is_not_retried(okta: OktaServer):
    raw = {**okta.estate.credentials(), "api_token": "00" + "x" * 40}

    with pytest.raises(AuthFailed, match="create a new token"):
        list(connector(raw).run_checks())

    asked = [(s.path, str(sorted(s.query.items()))) for s in okta.seen]
    assert asked and all(s.status == 401 for s in okta.seen)
    assert len(asked) == len(set(asked))  # every request made once: no retry


def test_a_rejected_service_app_fails_verification_with_what_to_fix(okta: OktaServer):
    other = connector({**okta.estate.oauth_credentials(), "client_id": "0oaSomeOtherApp1234"})
    with pytest.raises(AuthFailed, match="check client_id") as caught:
        other.verify()
    assert okta.estate.private_key_pem not in str(caught.value.details)
    assert [s.status for s in okta.seen] == [401]


def test_a_403_is_an_error_result_naming_the_missing_permission(okta: OktaServer):
    okta.fail("/api/v1/policies", 403, times=None)

    outcomes = {o.check.id: o for o in connector(okta.estate.credentials()).run_checks()}

    for check_id in ("okta.policy.password_strength", "okta.policy.mfa_required",
                     "okta.policy.mfa_enrollment", "okta.policy.session_lifetime"):
        results = outcomes[check_id].results
        assert [r.status for r in results] == [Status.ERROR]
        assert "403" in results[0].title and "Read-only Administrator" in results[0].title
    assert verdicts([outcomes["okta.user.inactive"]]) == {
        "okta.user.inactive": okta.estate.expected["okta.user.inactive"]}
    assert len(okta.requests_to("/api/v1/policies")) == 4  # once per policy type, not retried


def test_a_service_answering_503_fails_only_its_checks_after_retries(okta: OktaServer):
    okta.fail("/api/v1/iam", 503, times=None)

    outcomes = {o.check.id: o for o in connector(okta.estate.credentials()).run_checks()}

    admin = outcomes.pop(ADMIN_CHECK)
    assert [r.status for r in admin.results] == [Status.ERROR]
    assert admin.results[0].resource_id == "scope:global"
    assert "unavailable (503)" in admin.errors[0]
    assert len(okta.requests_to("/api/v1/iam")) == RetryPolicy().attempts
    for check_id, outcome in outcomes.items():
        assert outcome.errors == []
        assert verdicts([outcome])[check_id] == okta.estate.expected[check_id]


def test_an_unreachable_org_is_provider_unavailable(okta: OktaServer):
    okta.stop()
    credentials = OktaCredentials.model_validate(okta.estate.credentials())
    session = OktaSession(credentials, retry=RetryPolicy(attempts=2, initial_wait=0.01),
                          endpoints=OPEN)

    async def list_users(api: OktaApi) -> object:
        return await api.call("list users", Scope.USERS_READ,
                              lambda: api.client.list_users(limit=1))

    with pytest.raises(ProviderUnavailable, match="could not reach Okta"):
        session.read(list_users)


# --- every user's factors within the rate limit ----------------------------------------------

def test_factor_reads_pace_themselves_on_the_rate_limit_headers_and_never_draw_a_429():
    limit, window = 12, 1.5  # fewer than the 14 active users: unpaced, two reads would draw 429
    with okta_server(page_size=2, rate_limit=limit, rate_window=window) as server:
        outcomes = list(connector(server.estate.credentials()).run_checks(
            [factors.mfa_enrolled, factors.phishing_resistant_mfa]))
        assert verdicts(outcomes) == {c: server.estate.expected[c] for c in (
            "okta.user.mfa_enrolled", "okta.user.phishing_resistant_mfa")}
        assert {s.status for s in server.seen} == {200}
        reads = [s.at for s in server.seen if s.path.endswith("/factors")]
        active = [u for u in server.estate.users if u["status"] == "ACTIVE"]
        assert len(reads) == len(active) > limit
        assert max(reads) - min(reads) >= window / 2  # spread over more than one window


def test_a_rate_limited_factor_read_waits_for_the_reset_and_the_verdicts_stand(okta: OktaServer):
    user = next(u for u in okta.estate.users if u["status"] == "ACTIVE")
    reset = int(time.time()) + 2
    okta.fail(f"/api/v1/users/{user['id']}/factors", 429, times=1, headers={
        "X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0",
        "X-Rate-Limit-Reset": str(reset)})

    got = verdicts(connector(okta.estate.credentials()).run_checks([factors.mfa_enrolled]))

    assert got == {"okta.user.mfa_enrolled": okta.estate.expected["okta.user.mfa_enrolled"]}
    limited, retried = okta.requests_to(f"/api/v1/users/{user['id']}/factors")
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at >= reset - 0.05


def test_a_factor_read_refused_403_errors_only_the_factor_checks(okta: OktaServer):
    user = next(u for u in okta.estate.users if u["status"] == "ACTIVE")
    okta.fail(f"/api/v1/users/{user['id']}/factors", 403, times=None)

    outcomes = {o.check.id: o for o in connector(okta.estate.credentials()).run_checks()}

    for check_id in ("okta.user.mfa_enrolled", "okta.user.phishing_resistant_mfa",
                     "okta.org.mfa_for_everyone"):
        assert [r.status for r in outcomes[check_id].results] == [Status.ERROR]
        assert "okta.users.read" in outcomes[check_id].errors[0] or \
            "Read-only Administrator" in outcomes[check_id].errors[0]
    assert verdicts([outcomes["okta.policy.signon_requires_mfa"]]) == {
        "okta.policy.signon_requires_mfa":
            okta.estate.expected["okta.policy.signon_requires_mfa"]}
