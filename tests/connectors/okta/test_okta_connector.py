"""The Okta connector through the real okta SDK against a local Okta server over HTTP."""

from __future__ import annotations

import json

import pytest

from connectors.base import InvalidFields, Status, load_connectors
from connectors.okta import OktaConnector
from connectors.okta.kit import OktaServer
from tests.connectors.okta.conftest import connector, verdicts

# --- a sync of the emulated org --------------------------------------------------------------


def test_sync_with_an_api_token_reaches_every_expected_verdict(okta: OktaServer):
    outcomes = list(connector(okta.estate.credentials()).run_checks())

    assert [o.errors for o in outcomes] == [[] for _ in outcomes]
    assert not any(o.crashed for o in outcomes)
    got = verdicts(outcomes)
    assert sorted(got) == sorted(okta.estate.expected)
    for check_id, expected in okta.estate.expected.items():
        assert got[check_id] == expected, check_id
    assert {s for per_check in got.values() for s in per_check.values()} == {
        "passing", "failing", "not_applicable"}
    for outcome in outcomes:
        for result in outcome.results:
            json.dumps(result.data)
            assert result.title


def test_the_estate_is_big_enough_to_page(okta: OktaServer):
    listed = [u for u in okta.estate.users if u["status"] != "DEPROVISIONED"]
    assert len(listed) >= 20 and len(okta.estate.expected["okta.user.inactive"]) == len(listed)
    list(connector(okta.estate.credentials()).run_checks())

    pages = okta.requests_to("/api/v1/users")
    pages = [s for s in pages if s.path == "/api/v1/users" and "filter" not in s.query]
    assert len(pages) == -(-len(listed) // okta.page_size)  # every page read, each once
    assert [s.query.get("after") is None for s in pages].count(True) == 1
    active = {u["id"] for u in okta.estate.users if u["status"] == "ACTIVE"}
    filtered = [s for s in okta.requests_to("/api/v1/users") if s.path == "/api/v1/users"
                and s.query.get("filter") == ['status eq "ACTIVE"']]
    assert len(filtered) == -(-len(active) // okta.page_size)
    factor_reads = [s.path.split("/")[4] for s in okta.requests_to("/api/v1/users/")
                    if s.path.endswith("/factors")]
    assert sorted(factor_reads) == sorted(active)  # each ACTIVE user's factors, once
    for policy_type in ("PASSWORD", "OKTA_SIGN_ON", "ACCESS_POLICY", "MFA_ENROLL"):
        reads = [s for s in okta.requests_to("/api/v1/policies")
                 if s.path == "/api/v1/policies" and s.query["type"] == [policy_type]]
        assert len(reads) == -(-len(okta.estate.policies[policy_type]) // okta.page_size)
    assignees = okta.requests_to("/api/v1/iam/assignees/users")
    assert len(assignees) == -(-len(okta.estate.roles) // okta.page_size)


def test_deprovisioned_users_are_not_judged(okta: OktaServer):
    gone = next(u for u in okta.estate.users if u["status"] == "DEPROVISIONED")
    got = verdicts(connector(okta.estate.credentials()).run_checks())
    assert not any(gone["id"] in rid for per_check in got.values() for rid in per_check)


def test_sync_with_an_oauth_service_app_reaches_the_same_verdicts(okta: OktaServer):
    outcomes = list(connector(okta.estate.oauth_credentials()).run_checks())

    assert verdicts(outcomes) == okta.estate.expected
    api_calls = [s for s in okta.seen if s.path.startswith("/api/")]
    assert api_calls and all(s.authorization.startswith("Bearer ") for s in api_calls)
    tokens = [s for s in okta.seen if s.path == "/oauth2/v1/token"]
    assert [s.status for s in tokens] == [200] * len(tokens)


def test_config_params_move_the_thresholds(okta: OktaServer):
    outcomes = connector(okta.estate.credentials(),
                         {"max_super_admins": 6, "inactive_days": 400}).run_checks()
    got = verdicts(outcomes)
    assert got["okta.admin.super_admin_count"] == {okta.estate.resource("org"): "passing"}
    assert "failing" not in got["okta.user.inactive"].values()


def test_invalid_config_is_refused_with_the_field_named(okta: OktaServer):
    with pytest.raises(Exception, match="max_super_admins") as caught:
        connector(okta.estate.credentials(), {"max_super_admins": "many"}).validated_config()
    assert getattr(caught.value, "code", None) == "invalid_config"


@pytest.mark.parametrize("config", [{"max_super_admins": "many"}, {"inactive_days": 0},
                                    {"max_session_lifetime_minutes": 10**6}])
def test_a_config_the_session_refuses_is_refused_when_saved(okta: OktaServer, config):
    with pytest.raises(InvalidFields) as saved:
        OktaConnector.parse_config(config)
    assert saved.value.code == "invalid_config"
    assert [f["field"] for f in saved.value.details["fields"]] == list(config)
    with pytest.raises(Exception, match=next(iter(config))) as run:
        connector(okta.estate.credentials(), config).validated_config()
    assert getattr(run.value, "code", None) == "invalid_config"
    valid = OktaConnector.parse_config({"max_super_admins": "6", "inactive_days": "400"})
    got = verdicts(connector(okta.estate.credentials(), valid).run_checks())
    assert got["okta.admin.super_admin_count"] == {okta.estate.resource("org"): "passing"}


def test_evidence_is_stable_between_two_syncs(okta: OktaServer):
    first = list(connector(okta.estate.credentials()).run_checks())
    second = list(connector(okta.estate.credentials()).run_checks())
    as_data = [[(r.resource_id, r.status, r.title, dict(r.data)) for r in o.results]
               for o in first]
    assert as_data == [[(r.resource_id, r.status, r.title, dict(r.data)) for r in o.results]
                       for o in second]


def test_okta_connector_is_registered_under_its_entry_point():
    assert load_connectors()["okta"] is OktaConnector


# --- verify ----------------------------------------------------------------------------------

def test_verify_names_the_org_and_the_auth_mode(okta: OktaServer):
    assert connector(okta.estate.credentials()).verify() == {
        "orgUrl": okta.url, "authMode": "api_token"}
    assert connector(okta.estate.oauth_credentials()).verify() == {
        "orgUrl": okta.url, "authMode": "oauth2"}
    users = [s for s in okta.seen if s.path == "/api/v1/users"]
    assert [s.query["limit"] for s in users] == [["1"], ["1"]]  # one cheap call each


def test_api_token_is_sent_as_okta_documents_it(okta: OktaServer):
    connector(okta.estate.credentials()).verify()
    assert okta.seen[-1].authorization == f"SSWS {okta.estate.api_token}"


# --- credentials -----------------------------------------------------------------------------

def invalid_fields(raw: dict) -> dict[str, str]:
    with pytest.raises(InvalidFields) as caught:
        OktaConnector.parse_credentials(raw)
    assert caught.value.code == "invalid_credentials"
    return {f["field"]: f["message"] for f in caught.value.details["fields"]}


def test_credentials_take_exactly_one_auth_mode(okta: OktaServer):
    token, oauth = okta.estate.credentials(), okta.estate.oauth_credentials()
    assert "client_id" in invalid_fields({**oauth, "api_token": token["api_token"]})
    assert "client_id" in invalid_fields({"org_url": okta.url})
    assert "private_key" in invalid_fields({"org_url": okta.url, "client_id": "0oa1"})
    assert "private_key" in invalid_fields({**token, "private_key": oauth["private_key"]})
    assert "extra" in invalid_fields({**token, "extra": 1})


def test_org_url_must_be_https_except_on_loopback(okta: OktaServer):
    token = okta.estate.credentials()
    assert "org_url" in invalid_fields({**token, "org_url": "http://acme.okta.com"})
    assert "org_url" in invalid_fields({**token, "org_url": "https://acme-admin.okta.com"})
    assert "org_url" in invalid_fields({**token, "org_url": "https://acme.okta.com/app/x"})
    assert "org_url" in invalid_fields({**token, "org_url": "ftp://acme.okta.com"})
    parsed = OktaConnector.parse_credentials({**token, "org_url": "https://Acme.okta.com/"})
    assert parsed.org_url == "https://acme.okta.com"  # type: ignore[attr-defined]
    for loopback in ("http://localhost:8080", "http://127.0.0.1:9", "http://[::1]:9"):
        OktaConnector.parse_credentials({**token, "org_url": loopback})


def test_private_key_must_be_an_rsa_pem_and_is_never_echoed(okta: OktaServer):
    oauth = okta.estate.oauth_credentials()
    for bad in ("not a key", "/etc/ssl/private/key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                "-----END PRIVATE KEY-----", "{'kty': 'RSA'}"):
        with pytest.raises(InvalidFields) as caught:
            OktaConnector.parse_credentials({**oauth, "private_key": bad})
        assert bad not in json.dumps(caught.value.details) + caught.value.message
    with pytest.raises(InvalidFields) as caught:
        OktaConnector.parse_credentials({**okta.estate.credentials(), "api_token": "00 bad token "
                                         "with spaces in it"})
    assert "bad token" not in json.dumps(caught.value.details) + caught.value.message


def test_dumped_credentials_round_trip_through_the_vault_form(okta: OktaServer):
    parsed = OktaConnector.parse_credentials(okta.estate.oauth_credentials(["okta.users.read"]))
    raw = OktaConnector.dump_credentials(parsed)
    assert raw["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert OktaConnector.parse_credentials(raw) == parsed
    assert "BEGIN" not in repr(parsed)
    assert Status.PASSING.value == "passing"


def test_mfa_and_password_parameters_move_the_new_checks(okta: OktaServer):
    got = verdicts(connector(okta.estate.credentials(), {
        "require_phishing_resistant_mfa": False, "min_password_length": 12}).run_checks())
    resistant = got["okta.user.phishing_resistant_mfa"]
    expected = okta.estate.expected["okta.user.phishing_resistant_mfa"]
    assert resistant == {rid: "not_applicable" if v == "failing" else v
                         for rid, v in expected.items()}
    executives = next(p for p in okta.estate.policies["PASSWORD"]
                      if p["name"] == "Executives Password Policy")
    resource = okta.estate.resource("policy", executives["id"])
    assert okta.estate.expected["okta.policy.password_min_length"][resource] == "failing"
    assert got["okta.policy.password_min_length"][resource] == "passing"
