"""The inputs of issue #15 item 6, sent as written: each is a clean 4xx JSON error with a stable
code, and nothing is written."""

from __future__ import annotations

import json
import logging
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase

from engine.db import session_factory
from engine.models import Account, Connection
from engine.models.audit import Audit
from engine.models.integrations import ConfigParameter, CustomIntegration
from engine.models.push import ApiKey
from engine.settings import Settings

GOOD = {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
WRITTEN: tuple[type[DeclarativeBase], ...] = (Account, Connection, ApiKey, CustomIntegration,
                                              ConfigParameter, Audit)


def rows(settings: Settings) -> int:
    with session_factory(settings)() as s:
        return sum(s.scalar(select(func.count()).select_from(m)) or 0 for m in WRITTEN)


def refused(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.is_json, resp.get_data(as_text=True)[:500]
    body: dict[str, Any] = resp.get_json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("path, headers", [
    ("/api/v1/auditor/accept-invitation", False),  # unauthenticated
    ("/api/v1/integrations/aws/connect", True),
    ("/api/v1/audits", True),
])
@pytest.mark.parametrize("body", [deep(50_000), "[" * 50_000 + "]" * 50_000])
def test_deeply_nested_json_is_refused_before_parsing(client, auth, settings, path, headers,
                                                      body):
    resp = client.post(path, data=body, content_type="application/json",
                       headers=auth if headers else {})
    refused(resp, 400, "json_too_deep")
    assert rows(settings) == 0


def test_json_nested_within_the_limit_is_parsed(client, auth, settings):
    config = {"a": 1}
    for _ in range(40):
        config = {"a": config}
    body = {"credentials": GOOD, "config": config}
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", json=body, headers=auth)
    refused(resp, 422, "invalid_config")  # parsed, then refused by aws's config model


def test_brackets_inside_strings_do_not_count_as_depth(client, auth):
    name = "[{" * 5000 + '\\"' + "}]" * 5000
    resp = client.post("/api/v1/orgs/acme/api-keys", headers=auth,
                       data='{"name": "' + name + '", "scopes": ["read:evidence"]}',
                       content_type="application/json")
    refused(resp, 422, "invalid_request")  # too long a name, not too deep


def test_a_nul_in_an_api_key_name_is_a_422_and_logs_no_hash(client, auth, settings, caplog):
    caplog.set_level(logging.DEBUG)
    resp = client.post("/api/v1/orgs/acme/api-keys", headers=auth,
                       json={"name": "ci\x00key", "scopes": ["write:evidence"]})
    body = refused(resp, 422, "invalid_request")
    assert body["error"]["fields"][0]["field"] == "name"
    assert rows(settings) == 0
    assert "key_hash" not in caplog.text


@pytest.mark.parametrize("value", ["a\x00b", "x\ud800y", "\udfff"])
@pytest.mark.parametrize("where", ["key", "value"])
def test_nul_or_lone_surrogate_in_aws_config_is_invalid_config(client, auth, settings, value,
                                                               where):
    config = {value: "x"} if where == "key" else {"regions": value}
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", headers=auth,
                       json={"credentials": GOOD, "config": config})
    refused(resp, 422, "invalid_config")
    assert rows(settings) == 0


def test_unknown_aws_config_is_invalid_config(client, auth, settings):
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", headers=auth,
                       json={"credentials": GOOD, "config": {"regions": ["us-east-1"]}})
    body = refused(resp, 422, "invalid_config")
    assert body["error"]["fields"][0]["field"] == "regions"
    assert rows(settings) == 0


@pytest.mark.parametrize("value", ["a\x00b", "x\ud800y"])
def test_nul_or_lone_surrogate_in_credentials_is_refused(client, auth, settings, value):
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", headers=auth,
                       json={"credentials": {**GOOD, "secret_access_key": value * 20}})
    body = refused(resp, 422, "invalid_credentials")
    assert body["error"]["fields"] == [{"field": "secret_access_key", "message": ANY}]
    assert rows(settings) == 0


@pytest.mark.parametrize("path", [
    "/api/v1/orgs/acme/evidence",
    "/api/v1/integrations/aws/evidence",
    "/api/v1/audits/audit-1/activity",
])
@pytest.mark.parametrize("offset", ["1e20", "100000000000000000000", "-1", "1000000001"])
def test_offsets_out_of_range_are_422(client, auth, path, offset):
    resp = client.get(f"{path}?offset={offset}", headers=auth)
    body = refused(resp, 422, "invalid_request")
    assert body["error"]["fields"][0]["field"] == "offset"


def test_a_20_mb_secret_is_refused_with_413_and_not_stored(client, auth, settings):
    body = {"credentials": {**GOOD, "secret_access_key": "x" * (20 * 1024 * 1024)}}
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", json=body, headers=auth)
    refused(resp, 413, "body_too_large")
    assert rows(settings) == 0


def test_a_secret_under_the_body_limit_is_still_bounded(client, auth, settings):
    body = {"credentials": {**GOOD, "secret_access_key": "x" * (512 * 1024)}}
    resp = client.post("/api/v1/integrations/aws/connect?wait=0", json=body, headers=auth)
    refused(resp, 422, "invalid_credentials")
    assert rows(settings) == 0


def test_the_body_limit_follows_the_setting(app_client, auth, settings):
    small = app_client(max_body_bytes=1024)
    resp = small.post("/api/v1/custom-integrations", headers=auth,
                      json={"name": "n", "shortName": "n", "integrationType": "API",
                            "description": "d" * 2000})
    refused(resp, 413, "body_too_large")
    assert rows(settings) == 0


@pytest.mark.parametrize("body", [
    {"name": "Syslog", "shortName": "syslog", "integrationType": "FORWARDER", "active": 0},
    {"name": "Syslog", "shortName": "syslog", "integrationType": "FORWARDER", "active": "yes"},
    {"name": "Syslog", "shortName": "syslog", "integrationType": "FORWARDER", "active": "true"},
])
def test_booleans_are_strict(client, auth, settings, body):
    resp = client.post("/api/v1/custom-integrations", headers=auth, json=body)
    body = refused(resp, 422, "invalid_request")
    assert body["error"]["fields"][0]["field"] == "active"
    assert rows(settings) == 0


@pytest.mark.parametrize("when", [0, 1_700_000_000, "0", "1700000000", True])
def test_dates_are_strict(client, auth, settings, when):
    resp = client.post("/api/v1/audits", headers=auth, json={
        "framework_id": "soc2", "type": "type_ii", "title": "Annual",
        "period_start": "2026-01-01", "period_end": "2026-07-01",
        "target_completion": when})
    body = refused(resp, 422, "invalid_request")
    assert body["error"]["fields"][0]["field"] == "target_completion"
    assert rows(settings) == 0


def test_an_iso_date_is_still_accepted(client, auth):
    resp = client.post("/api/v1/audits", headers=auth, json={
        "framework_id": "soc2", "type": "type_ii", "title": "Annual",
        "period_start": "2026-01-01", "period_end": "2026-07-01",
        "target_completion": "2027-03-31"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["data"]["target_completion"].startswith("2027-03-31T00:00:00")


@pytest.mark.parametrize("path, body", [
    ("/api/v1/custom-integrations",
     {"name": "x\ud800", "shortName": "s", "integrationType": "API"}),
    ("/api/v1/custom-integrations",
     {"name": "x", "shortName": "s", "integrationType": "API", "description": "\x00"}),
    ("/api/v1/orgs/acme/api-keys", {"name": "\udc80", "scopes": ["read:evidence"]}),
    ("/api/v1/orgs/acme/evidence/upload-url", {"filename": "a.csv", "control_id": "\x00"}),
    ("/api/v1/orgs/acme/evidence/upload-url", {"filename": "a.csv", "control_id": "\ud800"}),
    ("/api/v1/audits", {"framework_id": "soc2", "type": "type_ii", "title": "\ud800"}),
])
def test_nul_and_lone_surrogates_are_refused_everywhere(client, auth, settings, path, body):
    refused(client.post(path, headers=auth, json=body), 422, "invalid_request")
    assert rows(settings) == 0


@pytest.mark.parametrize("query", ["check=%00", "check=a%00b"])
def test_nul_in_a_query_parameter_is_refused(client, auth, query):
    refused(client.get(f"/api/v1/integrations/aws/evidence?{query}", headers=auth), 422,
            "invalid_request")


def test_nul_in_a_path_parameter_is_refused(client, auth, settings):
    resp = client.get("/api/v1/orgs/acme/evidence/evo-%00", headers=auth)
    assert resp.status_code in (404, 422) and resp.is_json
    resp = client.delete("/api/v1/orgs/acme/api-keys/key%00", headers=auth)
    assert resp.status_code in (404, 422) and resp.is_json


def test_a_failing_statement_never_carries_its_parameters(settings, db, caplog):
    """SQL errors (in the exception and so in any log of it) show the statement, never the
    bound values: a key hash, a token or a tenant's data."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DBAPIError) as failed, session_factory(settings)() as s:
        s.execute(select(ApiKey).where(ApiKey.key_hash == "hash-of-a-secret\x00"))
    assert "hash-of-a-secret" not in str(failed.value)
    assert "hide_parameters" in str(failed.value)
    assert "hash-of-a-secret" not in caplog.text


def test_a_json_string_body_holding_deep_json_is_a_422(client, settings):
    """flask-openapi3 parses a JSON string body again with pydantic, whose parser has its own
    bound: still a 4xx."""
    inner = "[" * 10_000 + "]" * 10_000
    resp = client.post("/api/v1/auditor/accept-invitation", data=json.dumps(inner),
                       content_type="application/json")
    refused(resp, 422, "invalid_request")
    assert rows(settings) == 0


@pytest.mark.parametrize("levels, status, code", [(64, 422, "invalid_request"),
                                                  (65, 400, "json_too_deep")])
def test_the_depth_limit_is_64_levels(client, levels, status, code):
    body = '{"token": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"
    resp = client.post("/api/v1/auditor/accept-invitation", data=body,
                       content_type="application/json")
    refused(resp, status, code)
