"""Per-account request rate limits (Flask-Limiter on the test Redis): 429 in the one error shape
with Retry-After, one budget per account whatever its credential, probes never limited, the
sign-in endpoints limited per address, and an unreachable Redis lets requests through."""

from __future__ import annotations

import uuid

import pytest

from tests.audits.conftest import accepted_auditor, create_audit
from tests.console.conftest import csrf_token

LIST = "/api/v1/integrations"


@pytest.fixture
def limited(app_client, settings):
    """An app with `rate_limit` (and a key space of its own, so no other test's count shows)."""

    def make(**changes):
        prefix = f"{settings.redis_key_prefix}{uuid.uuid4().hex[:8]}:"
        return app_client(redis_key_prefix=prefix, **changes)

    return make


def test_over_the_limit_is_a_429_with_retry_after_in_the_error_shape(limited, auth):
    client = limited(rate_limit="3/minute")
    assert [client.get(LIST, headers=auth).status_code for _ in range(3)] == [200] * 3

    refused = client.get(LIST, headers=auth)

    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    body = refused.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["retryAfter"] == retry
    assert "3 per 1 minute" in body["error"]["message"]


def test_one_account_over_its_limit_leaves_another_account_alone(limited, auth, second_auth):
    client = limited(rate_limit="2/minute")
    statuses = [client.get(LIST, headers=auth).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]

    assert client.get(LIST, headers=second_auth).status_code == 200
    assert client.get(LIST, headers=second_auth).status_code == 200
    assert client.get(LIST, headers=second_auth).status_code == 429


def test_the_budget_is_the_accounts_whichever_credential_it_sends(limited, auth):
    client = limited(rate_limit="3/minute")
    created = client.post("/api/v1/orgs/acme/api-keys", headers=auth,
                          json={"name": "ci", "scopes": ["read:evidence"]})
    assert created.status_code == 201, created.get_json()
    key = {"Authorization": f"Bearer {created.get_json()['key']}"}
    assert client.get("/api/v1/orgs/acme/evidence", headers=key).status_code != 429
    assert client.get(LIST, headers=auth).status_code == 200

    assert client.get("/api/v1/orgs/acme/evidence", headers=key).status_code == 429
    assert client.get(LIST, headers=auth).status_code == 429


def test_an_auditor_of_the_accounts_audit_spends_the_accounts_budget(limited, auth, settings):
    client = limited(rate_limit="3/minute")
    audit = create_audit(client, auth)
    auditor = accepted_auditor(settings, audit["id"])
    assert client.get("/api/v1/auditor/audit", headers=auditor).status_code == 200
    assert client.get(LIST, headers=auth).status_code == 200

    assert client.get("/api/v1/auditor/audit", headers=auditor).status_code == 429
    assert client.get(LIST, headers=auth).status_code == 429


def test_probes_and_metrics_are_never_limited(limited, auth):
    client = limited(rate_limit="1/minute")
    assert client.get(LIST, headers=auth).status_code == 200
    assert client.get(LIST, headers=auth).status_code == 429
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/readyz").status_code != 429


def test_a_bad_token_is_counted_by_address_not_against_the_account_it_names(limited, auth):
    client = limited(rate_limit="2/minute")
    forged = {"Authorization": "Bearer not-a-token"}
    assert [client.get(LIST, headers=forged).status_code for _ in range(3)] == [401, 401, 429]

    assert client.get(LIST, headers=auth).status_code == 200


def test_accept_invitation_has_a_stricter_limit_per_address(limited):
    client = limited(auth_rate_limit="2/minute")
    url = "/api/v1/auditor/accept-invitation"
    statuses = [client.post(url, json={"token": f"guess{i}"}).status_code for i in range(3)]

    assert statuses[:2] != [429, 429] and 429 not in statuses[:2]
    assert statuses[2] == 429
    other = client.post(url, json={"token": "guess"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code != 429


def test_without_redis_the_limiter_lets_requests_through(limited, auth):
    client = limited(rate_limit="1/minute", redis_url="redis://127.0.0.1:1/0")

    assert [client.get(LIST, headers=auth).status_code for _ in range(3)] == [200] * 3


def test_console_sign_in_has_the_stricter_limit_per_address(limited):
    client = limited(auth_rate_limit="2/minute")
    token = csrf_token(client)
    statuses = [client.post("/console/login", data={"token": f"guess{i}", "csrf_token": token})
                .status_code for i in range(3)]

    assert statuses == [401, 401, 429]
    assert client.get("/console/login").status_code == 200  # the page itself is not limited
