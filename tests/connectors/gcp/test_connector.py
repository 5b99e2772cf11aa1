"""The Google Cloud connector through the real google-cloud-storage client over HTTP."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import jwt
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from connectors.base import ENTRY_POINT_GROUP, EndpointPolicy, InvalidFields, Status
from connectors.gcp import GcpConnector, GcpCredentials
from connectors.gcp.kit import BUCKETS, seed_estate
from tests.connectors.gcp.conftest import SERVICE_ACCOUNT, service_account_json
from tests.connectors.gcp.local_gcs import ACCESS_TOKEN, LocalGcs


def connect(raw, config=None) -> GcpConnector:
    return GcpConnector(GcpConnector.parse_credentials(raw), config or {},
                        endpoints=EndpointPolicy(allow_custom=True))  # a loopback emulator


def verdicts(outcomes) -> dict[str, dict[str, str]]:
    return {o.check.id: {r.resource_id: r.status.value for r in o.results} for o in outcomes}


# --- the seeded estate ------------------------------------------------------------------------

def test_sync_of_seeded_estate_reaches_every_expected_verdict(gcs_endpoint):
    estate = seed_estate(gcs_endpoint)
    assert estate.resources == len(BUCKETS) >= 8

    outcomes = list(connect(estate.credentials(), estate.config()).run_checks())

    assert [o.errors for o in outcomes] == [[] for _ in outcomes]
    got = verdicts(outcomes)
    assert sorted(got) == sorted(c.id for c in GcpConnector.checks) == sorted(estate.expected)
    for check_id, expected in estate.expected.items():
        assert got[check_id] == expected, check_id
    statuses = {s for per_check in got.values() for s in per_check.values()}
    assert statuses == {"passing", "failing", "not_applicable"}
    for check_id, per_check in got.items():
        if check_id != "gcp.storage.bucket_cmek":
            assert {"passing", "failing"} <= set(per_check.values()), check_id
    for outcome in outcomes:
        for result in outcome.results:
            json.dumps(result.data)
            assert result.resource_id.startswith("//storage.googleapis.com/projects/_/buckets/")


def test_require_cmek_turns_google_managed_buckets_from_not_applicable_to_failing(gcs_endpoint):
    estate = seed_estate(gcs_endpoint, require_cmek=True)
    cmek = GcpConnector.checks[-1]
    assert cmek.id == "gcp.storage.bucket_cmek"

    [outcome] = connect(estate.credentials(), {"require_cmek": "true"}).run_checks([cmek])

    got = {r.resource_id: r.status.value for r in outcome.results}
    assert got == estate.expected["gcp.storage.bucket_cmek"]
    assert set(got.values()) == {"passing", "failing"}


def test_an_invalid_config_value_is_an_error_result_of_the_cmek_check_only(gcs_endpoint):
    estate = seed_estate(gcs_endpoint)
    outcomes = {o.check.id: o for o in
                connect(estate.credentials(), {"require_cmek": "sometimes"}).run_checks()}

    cmek = outcomes.pop("gcp.storage.bucket_cmek")
    assert [r.status for r in cmek.results] == [Status.ERROR]
    assert "require_cmek" in cmek.errors[0]
    assert all(not o.errors and len(o.results) == len(BUCKETS) for o in outcomes.values())


def test_a_bucket_seeded_public_is_read_back_from_its_iam_policy(gcs_endpoint):
    estate = seed_estate(gcs_endpoint)
    client = storage.Client(project="acme-prod", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": gcs_endpoint})
    bucket = client.bucket("acme-terraform-state")
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings.append({"role": "roles/storage.objectViewer", "members": {"allUsers"}})
    bucket.set_iam_policy(policy)
    check = next(c for c in GcpConnector.checks if c.id == "gcp.storage.bucket_no_public_iam")

    [outcome] = connect(estate.credentials()).run_checks([check])

    by_id = {r.resource_id: r for r in outcome.results}
    state = by_id["//storage.googleapis.com/projects/_/buckets/acme-terraform-state"]
    assert state.status == Status.FAILING and "allUsers" in state.title


def test_verify_names_the_project_and_the_anonymous_principal(gcs_endpoint):
    estate = seed_estate(gcs_endpoint)
    assert connect(estate.credentials()).verify() == {"projectId": "acme-prod",
                                                      "serviceAccount": "anonymous"}


def test_an_empty_project_yields_no_results_and_no_errors(gcs_endpoint):
    outcomes = list(connect({"project_id": "acme-empty", "endpoint_url": gcs_endpoint})
                    .run_checks())
    assert all(o.results == [] and o.errors == [] for o in outcomes)


def test_the_connector_is_registered_with_its_metadata():
    [entry] = entry_points(group=ENTRY_POINT_GROUP, name="gcp")
    cls = entry.load()
    assert cls is GcpConnector
    assert (cls.name, cls.category.value, cls.auth_type.value, cls.icon) == (
        "Google Cloud", "cloud", "service_account", "gcp")
    assert [p.name for p in cls.config_params] == ["require_cmek"]


# --- a service account key, signed and exchanged for a token --------------------------------

def test_a_service_account_key_is_exchanged_for_a_token_and_used_on_every_call(local_gcs,
                                                                               rsa_key):
    local_gcs.require_token = True
    local_gcs.add_bucket("acme-prod-backups", versioning={"enabled": True})
    key = service_account_json(rsa_key, f"{local_gcs.endpoint}/token")
    connector = connect({"project_id": "acme-prod", "service_account_json": key,
                         "endpoint_url": local_gcs.endpoint})

    assert connector.verify() == {"projectId": "acme-prod", "serviceAccount": SERVICE_ACCOUNT}
    outcomes = list(connector.run_checks())

    assert all(not o.errors for o in outcomes)
    [token_request] = local_gcs.requests_to("token")[:1]
    assertion = dict(p.split("=", 1) for p in token_request.body.split("&"))["assertion"]
    claims = jwt.decode(assertion, rsa_key.public_key(), algorithms=["RS256"],
                        audience="https://oauth2.googleapis.com/token")
    assert claims["iss"] == SERVICE_ACCOUNT
    assert "devstorage.read_only" in claims["scope"]
    api_calls = [s for s in local_gcs.seen if s.route != "token"]
    assert api_calls and all(s.authorization == f"Bearer {ACCESS_TOKEN}" for s in api_calls)


def test_a_revoked_service_account_key_fails_with_what_to_fix(local_gcs: LocalGcs, rsa_key):
    from connectors.base import AuthFailed

    local_gcs.fail("token", 400, times=None)
    key = service_account_json(rsa_key, f"{local_gcs.endpoint}/token")
    connector = connect({"project_id": "acme-prod", "service_account_json": key,
                         "endpoint_url": local_gcs.endpoint})

    with pytest.raises(AuthFailed, match="create a new key") as caught:
        connector.verify()
    assert SERVICE_ACCOUNT in caught.value.message
    assert local_gcs.requests_to("list") == []


# --- credential validation ---------------------------------------------------------------------

def invalid_fields(raw) -> tuple[str, str]:
    with pytest.raises(InvalidFields) as caught:
        GcpConnector.parse_credentials(raw)
    err = caught.value
    assert err.code == "invalid_credentials"
    return ",".join(f["field"] for f in err.details["fields"]), json.dumps(err.details)


def test_a_production_connection_needs_a_service_account_key():
    fields, rendered = invalid_fields({"project_id": "acme-prod"})
    assert fields == "service_account_json"
    assert "JSON key file of the service account" in rendered


@pytest.mark.parametrize("key, problem", [
    ("{not json PRIVATE-BITS", "not valid JSON"),
    ('["a list"]', "JSON object"),
    ('{"type": "authorized_user", "client_email": "x@y", "private_key": "PRIVATE-BITS"}',
     "service account key"),
    ('{"type": "service_account", "private_key": "PRIVATE-BITS"}', "client_email"),
    ('{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com",'
     ' "private_key": "PRIVATE-BITS"}', "PEM"),
])
def test_a_malformed_key_is_refused_without_echoing_it(key, problem):
    fields, rendered = invalid_fields({"project_id": "acme-prod", "service_account_json": key})
    assert fields == "service_account_json"
    assert problem in rendered
    assert "PRIVATE-BITS" not in rendered and "a list" not in rendered


def test_a_key_naming_a_foreign_token_server_needs_an_allowed_endpoint(rsa_key):
    key = service_account_json(rsa_key, "https://tokens.example.com/token")
    _, rendered = invalid_fields({"project_id": "acme-prod", "service_account_json": key})
    assert "token_uri" in rendered and "BEGIN PRIVATE KEY" not in rendered

    google_key = service_account_json(rsa_key, "https://oauth2.googleapis.com/token")
    parsed = GcpConnector.parse_credentials({"project_id": "acme-prod",
                                             "service_account_json": google_key})
    assert isinstance(parsed, GcpCredentials) and parsed.endpoint_url is None
    assert "BEGIN PRIVATE KEY" not in repr(parsed) and "BEGIN" not in str(parsed.model_dump())


@pytest.mark.parametrize("raw, field", [
    ({"project_id": "Acme Prod!", "endpoint_url": "http://127.0.0.1:1"}, "project_id"),
    ({"project_id": "acme-prod", "endpoint_url": "ftp://127.0.0.1"}, "endpoint_url"),
    ({"project_id": "acme-prod", "endpoint_url": "http://127.0.0.1:1", "region": "x"},
     "region"),
])
def test_bad_fields_are_named(raw, field):
    fields, _ = invalid_fields(raw)
    assert fields == field


def test_credentials_round_trip_through_the_vault_form(rsa_key):
    key = service_account_json(rsa_key, "https://oauth2.googleapis.com/token")
    parsed = GcpConnector.parse_credentials({"project_id": "acme-prod",
                                             "service_account_json": key})
    dumped = GcpConnector.dump_credentials(parsed)
    assert dumped["service_account_json"] == key
    assert GcpConnector.parse_credentials(dumped) == parsed
