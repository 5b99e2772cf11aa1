"""Provider limits in one place: retries, Retry-After, 401/403 and outages, through the real client.

A local server answers the Cloud Storage JSON API shape and fails on cue; the connector reaches it
through google-cloud-storage exactly as it reaches Google.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from google.api_core import exceptions as api_exceptions

from connectors.base import (
    AuthFailed,
    ConnectorError,
    EndpointPolicy,
    PermissionMissing,
    ProviderUnavailable,
    Status,
)
from connectors.gcp import GcpConnector, RetryPolicy
from connectors.gcp.session import translate_error
from connectors.gcp.storage import resource_id
from connectors.retry import retry_after
from tests.connectors.gcp.conftest import SERVICE_ACCOUNT, QuickRetryGcp, service_account_json
from tests.connectors.gcp.local_gcs import LocalGcs
from tests.emulators import free_port

BUCKETS = ("acme-prod-backups", "acme-marketing-site", "acme-terraform-state")
UNIFORM = next(c for c in GcpConnector.checks if c.id == "gcp.storage.bucket_uniform_access")
PUBLIC_IAM = next(c for c in GcpConnector.checks if c.id == "gcp.storage.bucket_no_public_iam")


@pytest.fixture
def gcs(local_gcs: LocalGcs) -> LocalGcs:
    """Three buckets; the marketing site is public and uses fine-grained access."""
    for name in BUCKETS:
        local_gcs.add_bucket(name)
    local_gcs.buckets["acme-marketing-site"]["iamConfiguration"] = {
        "uniformBucketLevelAccess": {"enabled": False}, "publicAccessPrevention": "inherited"}
    local_gcs.policies["acme-marketing-site"] = [{"role": "roles/storage.objectViewer",
                                                  "members": ["allUsers"]}]
    return local_gcs


def anonymous(gcs: LocalGcs, cls: type[GcpConnector] = GcpConnector) -> GcpConnector:
    raw = {"project_id": "acme-prod", "endpoint_url": gcs.endpoint}
    return cls(cls.parse_credentials(raw), {}, endpoints=EndpointPolicy(allow_custom=True))


def statuses(outcome) -> dict[str, str]:
    return {r.resource_id: r.status.value for r in outcome.results}


# --- throttling: 429 with Retry-After, then 200 -------------------------------------------------

def test_a_429_with_retry_after_is_retried_and_the_checks_succeed(gcs):
    gcs.fail("list", 429, headers={"Retry-After": "1"})

    outcomes = list(anonymous(gcs).run_checks())

    assert all(o.errors == [] for o in outcomes)
    assert statuses(next(o for o in outcomes if o.check is UNIFORM)) == {
        resource_id("acme-marketing-site"): "failing",
        resource_id("acme-prod-backups"): "passing",
        resource_id("acme-terraform-state"): "passing"}
    assert statuses(next(o for o in outcomes if o.check is PUBLIC_IAM))[
        resource_id("acme-marketing-site")] == "failing"
    # two collectors list the buckets; one of them was throttled once and asked again
    assert len(gcs.requests_to("list")) == 3


def test_a_throttled_page_is_retried_alone_not_the_whole_listing(local_gcs):
    for n in range(501):  # two pages of 500
        local_gcs.add_bucket(f"acme-bucket-{n:04d}")
    local_gcs.fail("list", 429, after=1, headers={"Retry-After": "0"})

    [outcome] = anonymous(local_gcs).run_checks([UNIFORM])

    assert outcome.errors == [] and len(outcome.results) == 501
    pages = [s.path for s in local_gcs.requests_to("list")]
    assert len(pages) == 3
    assert "pageToken" not in pages[0]
    assert "pageToken=500" in pages[1] and "pageToken=500" in pages[2]


def test_a_retry_after_longer_than_the_cap_gives_up_at_once_as_rate_limited(gcs):
    gcs.fail("list", 429, times=None, headers={"Retry-After": "3600"})

    [outcome] = anonymous(gcs).run_checks([UNIFORM])

    assert [r.status for r in outcome.results] == [Status.ERROR]
    assert "throttled buckets.list" in outcome.errors[0]
    assert len(gcs.requests_to("list")) == 1


# --- credentials refused: 401 is AuthFailed, never retried ----------------------------------

def test_a_401_raises_auth_failed_from_run_checks_with_what_to_fix(gcs):
    gcs.fail("list", 401, times=None)

    with pytest.raises(AuthFailed, match="provide service_account_json"):
        list(anonymous(gcs).run_checks())
    assert len(gcs.requests_to("list")) <= 2  # one per collector at most: never retried


def test_a_401_fails_verification_too(gcs):
    gcs.fail("list", 401, times=None)
    with pytest.raises(AuthFailed, match="requires authentication"):
        anonymous(gcs).verify()
    assert len(gcs.requests_to("list")) == 1


def test_a_401_to_a_service_account_names_the_account_after_one_token_refresh(gcs, rsa_key):
    gcs.require_token = True
    gcs.fail("list", 401, times=None)
    key = service_account_json(rsa_key, f"{gcs.endpoint}/token")
    connector = GcpConnector(GcpConnector.parse_credentials(
        {"project_id": "acme-prod", "service_account_json": key, "endpoint_url": gcs.endpoint}),
        endpoints=EndpointPolicy(allow_custom=True))

    with pytest.raises(AuthFailed, match=SERVICE_ACCOUNT) as caught:
        connector.verify()
    assert "service_account_json" in caught.value.message
    # google-auth refreshes the token once on a 401 (its own rule), then we stop
    assert len(gcs.requests_to("list")) == 2 and len(gcs.requests_to("token")) == 2


# --- permissions: 403 names the permission --------------------------------------------------

def test_a_403_on_listing_fails_verification_naming_the_permission(gcs):
    gcs.fail("list", 403, times=None)
    with pytest.raises(PermissionMissing, match="storage.buckets.list") as caught:
        anonymous(gcs).verify()
    assert caught.value.details["permission"] == "storage.buckets.list"
    assert len(gcs.requests_to("list")) == 1


def test_a_403_on_listing_during_a_sync_is_an_error_result_for_every_check(gcs):
    gcs.fail("list", 403, times=None)

    outcomes = list(anonymous(gcs).run_checks())

    for outcome in outcomes:
        if outcome.check.id == "gcp.storage.bucket_cmek":
            assert "storage.buckets.list" in outcome.errors[0]
        assert [r.status for r in outcome.results] == [Status.ERROR], outcome.check.id
        assert "storage.buckets.list" in outcome.results[0].title


def test_a_403_on_one_bucket_policy_is_that_buckets_error_only(gcs):
    gcs.fail("iam:acme-terraform-state", 403, times=None)

    [outcome] = anonymous(gcs).run_checks([PUBLIC_IAM])

    assert outcome.errors == []
    by_id = {r.resource_id: r for r in outcome.results}
    locked = by_id[resource_id("acme-terraform-state")]
    assert locked.status == Status.ERROR and "storage.buckets.getIamPolicy" in locked.title
    assert by_id[resource_id("acme-marketing-site")].status == Status.FAILING
    assert by_id[resource_id("acme-prod-backups")].status == Status.PASSING


def test_a_disabled_storage_api_says_to_enable_it(gcs):
    gcs.fail("list", 403, times=None, reason="accessNotConfigured")
    with pytest.raises(PermissionMissing, match="enable storage.googleapis.com"):
        anonymous(gcs).verify()


# --- outages: 5xx after retries fails that collector's checks only ------------------------------

def test_a_policy_api_that_answers_503_every_time_fails_only_the_checks_that_need_it(gcs):
    gcs.fail("iam", 503, times=None)

    outcomes = {o.check.id: o for o in anonymous(gcs, QuickRetryGcp).run_checks()}

    public = outcomes.pop(PUBLIC_IAM.id)
    assert [(r.resource_id, r.status) for r in public.results] == [("scope:global",
                                                                     Status.ERROR)]
    assert "unavailable (503)" in public.errors[0]
    # the first policy read was tried as often as the policy allows, then the collector stopped
    assert len(gcs.requests_to("iam")) == QuickRetryGcp.retry_policy.attempts
    for check_id, outcome in outcomes.items():
        assert outcome.errors == [], check_id
        assert len(outcome.results) == len(BUCKETS), check_id
        assert Status.ERROR not in {r.status for r in outcome.results}


def test_a_transient_503_is_retried_and_forgotten(gcs):
    gcs.fail("iam", 503, times=2)
    [outcome] = anonymous(gcs, QuickRetryGcp).run_checks([PUBLIC_IAM])
    assert outcome.errors == [] and len(outcome.results) == len(BUCKETS)


def test_an_unreachable_endpoint_is_provider_unavailable():
    raw = {"project_id": "acme-prod", "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(ProviderUnavailable, match="could not reach Google Cloud"):
        QuickRetryGcp(QuickRetryGcp.parse_credentials(raw),
                      endpoints=EndpointPolicy(allow_custom=True)).verify()


# --- the retry policy itself ----------------------------------------------------------------

def answer(status: int, **headers: str) -> ConnectorError:
    """Google's answer with `status` and `headers`, as the session translates it."""
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    error = translate_error(
        api_exceptions.from_http_status(status, f"answered {status}", response=response),
        action="buckets.list", permission="storage.buckets.list", project_id="acme-prod",
        principal="anonymous", endpoint="https://storage.googleapis.com")
    assert error is not None
    return error


def test_retry_after_seconds_and_http_dates_are_honoured():
    policy = RetryPolicy(max_wait=30)
    assert policy.delay(answer(429, **{"Retry-After": "7"}), attempt=1) == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 10 < (answer(503, **{"Retry-After": later}).retry_after or 0) <= 20
    assert 10 < (retry_after({"Retry-After": later}) or 0) <= 20
    assert policy.delay(answer(429, **{"Retry-After": "31"}), attempt=1) is None


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(initial_wait=1, max_wait=30)
    waits = [policy.delay(answer(503), attempt=n) for n in range(1, 8)]
    assert all(w is not None for w in waits)
    assert 0.5 <= waits[0] <= 1 and 4 <= waits[3] <= 8 and 15 <= waits[6] <= 30


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(status):
    assert RetryPolicy().delay(answer(status), attempt=1) is None


def test_a_token_endpoint_outage_is_unavailability_not_a_bad_key(gcs, rsa_key):
    gcs.fail("token", 503, times=None)
    key = service_account_json(rsa_key, f"{gcs.endpoint}/token")
    connector = GcpConnector(GcpConnector.parse_credentials(
        {"project_id": "acme-prod", "service_account_json": key, "endpoint_url": gcs.endpoint}),
        endpoints=EndpointPolicy(allow_custom=True))

    with pytest.raises(ProviderUnavailable, match="token endpoint is unavailable"):
        connector.verify()
    # google-auth retries the token call itself; the session does not multiply that
    assert len(gcs.requests_to("token")) == 3 and gcs.requests_to("list") == []
