"""API keys: shown once, stored as a hash, scoped, bound to their organization, revocable."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select, update

from engine.db import session_factory
from engine.models.push import ApiKey
from tests.push.conftest import ORG
from tests.push.flow import bearer, evidence_url

KEYS = "/api/v1/orgs/{org}/api-keys"


def keys_url(base: str, org: str = ORG) -> str:
    return base + KEYS.format(org=org)


def test_a_created_key_is_shown_once_and_stored_only_as_its_sha256(base, jwt_for, settings):
    resp = requests.post(keys_url(base), headers=jwt_for(ORG), timeout=10,
                         json={"name": "ci", "scopes": ["write:evidence", "read:evidence"]})

    assert resp.status_code == 201, resp.text
    created = resp.json()
    key = created["key"]
    assert key.startswith("sk-") and len(key) >= 40
    assert created["scopes"] == ["read:evidence", "write:evidence"]
    listed = requests.get(keys_url(base), headers=jwt_for(ORG), timeout=10).json()["keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and key not in str(listed)
    assert listed[0]["prefix"] == key[:11] and listed[0]["active"] is True
    with session_factory(settings)() as s:
        row = s.scalars(select(ApiKey)).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert all(key not in str(getattr(row, c.key)) for c in ApiKey.__table__.columns)


def test_a_revoked_key_is_refused_on_the_very_next_request(base, jwt_for, make_key):
    key = make_key("read:evidence")
    assert requests.get(evidence_url(base), headers=bearer(key), timeout=10).status_code == 200
    used = requests.get(keys_url(base), headers=jwt_for(ORG), timeout=10).json()["keys"][0]
    assert used["last_used_at"] is not None
    key_id = used["id"]

    revoked = requests.delete(f"{keys_url(base)}/{key_id}", headers=jwt_for(ORG), timeout=10)

    assert revoked.status_code == 200 and revoked.json()["key"]["revoked_at"]
    resp = requests.get(evidence_url(base), headers=bearer(key), timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "api_key_revoked"


def test_an_expired_key_is_refused(base, make_key, settings):
    key = make_key("read:evidence")
    with session_factory(settings)() as s:
        s.execute(update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()

    resp = requests.get(evidence_url(base), headers=bearer(key), timeout=10)

    assert resp.status_code == 401 and resp.json()["error"]["code"] == "api_key_expired"


@pytest.mark.parametrize("header, code", [
    (None, "missing_token"),
    ("Bearer ", "missing_token"),
    ("Basic c2stZm9vOg==", "missing_token"),
    ("Bearer sk-" + "A" * 43, "invalid_api_key"),
    ("Bearer not-a-jwt", "invalid_token"),
])
def test_no_key_or_a_bad_key_is_401(base, header, code):
    headers = {"Authorization": header} if header is not None else {}

    resp = requests.post(f"{evidence_url(base)}/upload-url", headers=headers, timeout=10,
                         json={"filename": "a.csv"})

    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == code


@pytest.mark.parametrize("scopes, method, path, needed", [
    (["read:evidence"], "POST", "/upload-url", "write:evidence"),
    (["read:*"], "POST", "/verify", "write:evidence"),
    (["read:evidence"], "POST", "/" + "a" * 64 + "/link-to-control", "write:evidence"),
    (["write:evidence"], "GET", "", "read:evidence"),
    (["write:*"], "GET", "/evo-x/download-url", "read:evidence"),
])
def test_a_key_without_the_scope_gets_403_missing_required_scope(base, make_key, scopes,
                                                                 method, path, needed):
    key = make_key(*scopes)

    resp = requests.request(method, evidence_url(base) + path, headers=bearer(key), timeout=10,
                            json={"filename": "a.csv", "control_id": "CC6.1"})

    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "missing_scope"
    assert resp.json()["error"]["message"] == f"missing required scope {needed}"


def test_wildcard_scopes_cover_evidence_reads_and_writes(base, make_key):
    assert requests.post(f"{evidence_url(base)}/upload-url", headers=bearer(make_key("write:*")),
                         json={"filename": "a.csv"}, timeout=10).status_code == 201
    assert requests.get(evidence_url(base), headers=bearer(make_key("read:*")),
                        timeout=10).status_code == 200


def test_a_key_used_on_another_organization_gets_403_not_a_member(base, make_key):
    key = make_key("write:*", "read:*")

    resp = requests.post(f"{evidence_url(base, 'globex')}/upload-url", headers=bearer(key),
                         json={"filename": "a.csv"}, timeout=10)

    assert resp.status_code == 403
    assert resp.json()["error"] == {"code": "not_a_member", "org_id": "globex",
                                    "message": "not a member of this organization"}


def test_an_account_token_cannot_manage_another_organizations_keys(base, jwt_for, make_key):
    make_key("read:evidence")
    key_id = requests.get(keys_url(base), headers=jwt_for(ORG), timeout=10).json()["keys"][0]["id"]

    listed = requests.get(keys_url(base), headers=jwt_for("globex"), timeout=10)
    assert listed.status_code == 403
    assert requests.get(keys_url(base, "globex"), headers=jwt_for("globex"),
                        timeout=10).json()["keys"] == []
    revoked = requests.delete(f"{keys_url(base, 'globex')}/{key_id}", headers=jwt_for("globex"),
                              timeout=10)
    assert revoked.status_code == 404 and revoked.json()["error"]["code"] == "key_not_found"


def test_an_api_key_cannot_create_api_keys(base, make_key):
    key = make_key("write:*", "read:*")

    resp = requests.post(keys_url(base), headers=bearer(key), timeout=10,
                         json={"name": "escalate", "scopes": ["write:*"]})

    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "account_token_required"


@pytest.mark.parametrize("body", [{"scopes": []}, {"scopes": ["admin:*"]}, {"name": "x"}])
def test_a_key_needs_known_scopes(base, jwt_for, body):
    resp = requests.post(keys_url(base), headers=jwt_for(ORG), json=body, timeout=10)

    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_request"
