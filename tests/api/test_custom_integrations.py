"""Seed 003: custom integrations and configuration parameters; a changed parameter asks for a
fresh sync (`needsRestart`), secrets are write-only."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from connectors.okta.kit import OktaServer, okta_server
from engine.credentials import open_connector
from engine.db import session_factory
from engine.models import Connection, SyncRun, Trigger
from engine.models.integrations import ConfigParameter, CustomIntegration
from engine.settings import Settings
from tests.conftest import TEST_ONLY_ENV, all_evidence

OFFICE = {"name": "Office 365 Logs", "shortName": "office365",
          "description": "Collects Office 365 audit logs", "integrationType": "CLOUD",
          "active": True}
CONFIGS = [("tenant_id", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "Microsoft 365 Tenant ID"),
           ("client_id", "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "Application Client ID"),
           ("client_secret", "secret-value-here", "Application Client Secret")]


def setup_integration(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    """The seed's 'complete integration setup example', step for step."""
    response = client.post("/api/v1/custom-integrations", headers=auth, json=OFFICE)
    assert response.status_code == 201, response.get_json()
    integration = response.get_json()
    created = []
    for name, value, description in CONFIGS:
        response = client.post("/api/v1/integration-confs", headers=auth, json={
            "integration": {"id": integration["id"]}, "confName": name, "confValue": value,
            "confDescription": description})
        assert response.status_code == 201, response.get_json()
        created.append(response.get_json())
    return {"success": True, "integration": integration, "configs": created}


def test_the_seed_setup_example_gets_the_seed_shapes(client, auth, settings):
    result = setup_integration(client, auth)
    integration = result["integration"]
    assert integration == {"id": integration["id"], **OFFICE, "module": None}
    tenant = result["configs"][0]
    assert tenant == {"id": tenant["id"], "integration": {
        "id": integration["id"], "name": "Office 365 Logs", "connectionId": None,
        "module": {"needsRestart": True}}, "confName": "tenant_id",
        "confValue": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        "confDescription": "Microsoft 365 Tenant ID", "secret": False}
    secret = result["configs"][2]
    assert (secret["confValue"], secret["secret"]) == ("********", True)

    updated = client.put("/api/v1/custom-integrations", headers=auth, json={
        "id": integration["id"], "name": "Microsoft 365 Audit Logs", "shortName": "office365",
        "description": "Collects Microsoft 365 audit and security logs",
        "integrationType": "CLOUD", "active": True})
    assert updated.status_code == 200
    assert updated.get_json()["name"] == "Microsoft 365 Audit Logs"

    conf = client.put("/api/v1/integration-confs", headers=auth, json={
        "id": tenant["id"], "integration": {"id": integration["id"]}, "confName": "tenant_id",
        "confValue": "new-tenant-id", "confDescription": "Updated Microsoft 365 Tenant ID"})
    assert conf.status_code == 200
    body = conf.get_json()
    assert body["integration"]["module"] == {"needsRestart": True}
    assert (body["confValue"], body["confDescription"]) == (
        "new-tenant-id", "Updated Microsoft 365 Tenant ID")


def test_secret_values_are_write_only_and_sealed(client, auth, settings, caplog):
    caplog.set_level(logging.DEBUG)
    result = setup_integration(client, auth)
    secret_id = result["configs"][2]["id"]
    listed = client.get(f"/api/v1/integration-confs?integrationId={result['integration']['id']}",
                        headers=auth)
    one = client.get(f"/api/v1/integration-confs/{secret_id}", headers=auth)
    kept = client.put("/api/v1/integration-confs", headers=auth, json={
        "id": secret_id, "confName": "client_secret", "confValue": "********",
        "confDescription": "still secret"})
    for resp in (listed, one, kept):
        assert resp.status_code == 200
        assert "secret-value-here" not in resp.get_data(as_text=True)
    with session_factory(settings)() as s:
        dump = s.scalar(text("SELECT string_agg(p::text, ' ') FROM config_parameter p"))
        param = s.get_one(ConfigParameter, secret_id)
    assert "secret-value-here" not in dump
    assert param.value is None and param.value_encrypted is not None
    from engine.vault import vault

    assert vault(settings).open(param.value_encrypted) == {"value": "secret-value-here"}
    assert "secret-value-here" not in caplog.text


def test_a_changed_parameter_requests_a_config_change_sync(client, auth, inline_jobs, provider,
                                                          settings):
    provider.state.access["at-acme"] = time.time() + 3600
    connected = client.post("/api/v1/integrations/oauthfake/connect?wait=5", headers=auth,
                            json={"credentials": {"access_token": "at-acme"}})
    assert connected.status_code == 200
    status = client.get("/api/v1/integrations/oauthfake/status", headers=auth).get_json()
    assert status["needsRestart"] is False

    org = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": "oauthfake"}, "confName": "org", "confValue": "acme-org"})
    key = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": "oauthfake"}, "confName": "webhook_key", "confValue": "k-123"})
    assert org.status_code == key.status_code == 201
    assert org.get_json()["integration"]["module"] == {"needsRestart": True}
    assert org.get_json()["integration"]["connectionId"] == connected.get_json()["connectionId"]
    assert key.get_json()["secret"] is True and key.get_json()["confValue"] == "********"

    with session_factory(settings)() as s:
        triggers = [r.trigger for r in s.scalars(select(SyncRun).order_by(SyncRun.queued_at))]
        conn = s.scalars(select(Connection)).one()
        connector = open_connector(conn, settings)
    assert triggers == [Trigger.CONNECT, Trigger.CONFIG_CHANGE, Trigger.CONFIG_CHANGE]
    assert connector.config == {"org": "acme-org", "webhook_key": "k-123"}
    status = client.get("/api/v1/integrations/oauthfake/status", headers=auth).get_json()
    assert status["needsRestart"] is False  # the config_change runs have completed
    assert status["syncHistory"][0]["trigger"] == "config_change"

    same = client.put("/api/v1/integration-confs", headers=auth, json={
        "id": org.get_json()["id"], "confName": "org", "confValue": "acme-org",
        "confDescription": "only the description changed"})
    assert same.status_code == 200
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(SyncRun)) == 3

    gone = client.delete("/api/v1/integrations/oauthfake/disconnect", headers=auth)
    assert gone.status_code == 200
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(ConfigParameter)) == 0


def test_a_custom_integration_needs_restart_until_acknowledged(client, auth):
    integration = client.post("/api/v1/custom-integrations", headers=auth, json=OFFICE)
    ident = integration.get_json()["id"]
    conf = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": ident}, "confName": "tenant_id", "confValue": "t"})
    assert conf.get_json()["integration"]["module"] == {"needsRestart": True}
    got = client.get(f"/api/v1/custom-integrations/{ident}", headers=auth).get_json()
    assert got["module"] == {"needsRestart": True}
    acked = client.put("/api/v1/custom-integrations", headers=auth,
                       json={"id": ident, **OFFICE, "module": {"needsRestart": False}})
    assert acked.get_json()["module"] == {"needsRestart": False}
    deleted = client.delete(f"/api/v1/integration-confs/{conf.get_json()['id']}", headers=auth)
    assert deleted.get_json()["integration"]["module"] == {"needsRestart": True}


def test_deleting_an_integration_deletes_its_parameters(client, auth, settings):
    result = setup_integration(client, auth)
    ident = result["integration"]["id"]
    resp = client.delete(f"/api/v1/custom-integrations/{ident}", headers=auth)
    assert resp.status_code == 200 and resp.get_json()["success"] is True
    assert client.get(f"/api/v1/custom-integrations/{ident}", headers=auth).status_code == 404
    conf = result["configs"][0]["id"]
    assert client.get(f"/api/v1/integration-confs/{conf}", headers=auth).status_code == 404
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(ConfigParameter)) == 0


def count_rows(settings: Settings) -> tuple[int, int]:
    with session_factory(settings)() as s:
        return (s.scalar(select(func.count()).select_from(CustomIntegration)) or 0,
                s.scalar(select(func.count()).select_from(ConfigParameter)) or 0)


@pytest.mark.parametrize("body, status, code", [
    ({**OFFICE, "integrationType": "MAINFRAME"}, 422, "invalid_request"),
    ({k: v for k, v in OFFICE.items() if k != "name"}, 422, "invalid_request"),
    ({**OFFICE, "shortName": "has spaces"}, 422, "invalid_request"),
    ({**OFFICE, "name": "x" * 201}, 422, "invalid_request"),
    ({**OFFICE, "name": "nul\x00byte"}, 422, "invalid_request"),
    ({**OFFICE, "id": 7}, 422, "invalid_request"),
])
def test_bad_custom_integrations_are_refused_and_write_nothing(client, auth, settings, body,
                                                               status, code):
    resp = client.post("/api/v1/custom-integrations", headers=auth, json=body)
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (status, code)
    assert count_rows(settings) == (0, 0)


def test_conflicts_and_refusals_of_parameters(client, auth, settings, fake_connector,
                                              inline_jobs):
    first = client.post("/api/v1/custom-integrations", headers=auth, json=OFFICE)
    again = client.post("/api/v1/custom-integrations", headers=auth, json=OFFICE)
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "short_name_taken")
    ident = first.get_json()["id"]
    conf = {"integration": {"id": ident}, "confName": "tenant_id", "confValue": "t"}
    assert client.post("/api/v1/integration-confs", headers=auth, json=conf).status_code == 201
    dup = client.post("/api/v1/integration-confs", headers=auth, json=conf)
    assert (dup.status_code, dup.get_json()["error"]["code"]) == (409, "parameter_exists")
    assert count_rows(settings) == (1, 1)

    assert client.post("/api/v1/integrations/fake/connect?wait=5", headers=auth,
                       json={"credentials": {"token": "t"}}).status_code == 200
    unknown = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": "fake"}, "confName": "colour", "confValue": "blue"})
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (
        422, "unknown_parameter")
    for bad in ({"integration": {"id": "no such"}, "confName": "a", "confValue": "b"},
                {"integration": {"id": 0}, "confName": "a", "confValue": "b"},
                {"integration": {"id": 2**64}, "confName": "a", "confValue": "b"},
                {"integration": {"id": ident}, "confName": "a", "confValue": "********"},
                {"integration": {"id": ident}, "confName": "1abc", "confValue": "b"}):
        resp = client.post("/api/v1/integration-confs", headers=auth, json=bad)
        assert resp.status_code == 422, bad
    moved = client.put("/api/v1/integration-confs", headers=auth, json={
        "id": 1, "integration": {"id": "fake"}, "confName": "tenant_id", "confValue": "t"})
    assert (moved.status_code, moved.get_json()["error"]["code"]) == (
        422, "integration_mismatch")
    assert count_rows(settings) == (1, 1)


# --- connection parameters are validated by the connector's config_model ---------------------


@pytest.fixture
def okta_org(monkeypatch: pytest.MonkeyPatch) -> Iterator[OktaServer]:
    """A local Okta org; the okta SDK in this process accepts its loopback http URL."""
    for key, value in TEST_ONLY_ENV.items():
        monkeypatch.setenv(key, value)
    with okta_server(page_size=50) as server:
        yield server


def runs_by_trigger(settings: Settings) -> list[Trigger]:
    with session_factory(settings)() as s:
        return list(s.scalars(select(SyncRun.trigger).order_by(SyncRun.queued_at)))


def super_admin_verdict(client: FlaskClient, auth: dict[str, str]) -> str:
    found = [e["status"] for e in all_evidence(client, auth, "okta")
             if e["check_id"] == "okta.admin.super_admin_count"]
    assert len(found) == 1, found
    return found[0]


def test_an_invalid_okta_parameter_is_refused_before_anything_is_written(
        client, auth, settings, inline_jobs, okta_org):
    connected = client.post("/api/v1/integrations/okta/connect?wait=30", headers=auth,
                            json={"credentials": okta_org.estate.credentials()})
    assert connected.status_code == 200, connected.get_json()
    assert super_admin_verdict(client, auth) == "failing"  # six super admins, four allowed
    assert runs_by_trigger(settings) == [Trigger.CONNECT]

    for value, message in (("0", "greater than or equal to 1"), ("many", "valid integer")):
        bad = client.post("/api/v1/integration-confs", headers=auth, json={
            "integration": {"id": "okta"}, "confName": "max_super_admins", "confValue": value})
        assert bad.status_code == 422, bad.get_json()
        error = bad.get_json()["error"]
        assert error["code"] == "invalid_config"
        assert error["fields"] == [{"field": "max_super_admins",
                                    "message": error["fields"][0]["message"]}]
        assert message in error["fields"][0]["message"]
        assert value not in error["message"].replace("max_super_admins", "")
    assert count_rows(settings) == (0, 0)
    assert runs_by_trigger(settings) == [Trigger.CONNECT]  # no config_change run queued

    good = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": "okta"}, "confName": "max_super_admins", "confValue": "6"})
    assert good.status_code == 201, good.get_json()
    assert runs_by_trigger(settings) == [Trigger.CONNECT, Trigger.CONFIG_CHANGE]
    assert super_admin_verdict(client, auth) == "passing"  # the run used the new threshold

    param_id = good.get_json()["id"]
    worse = client.put("/api/v1/integration-confs", headers=auth, json={
        "id": param_id, "confName": "max_super_admins", "confValue": "100000"})
    assert (worse.status_code, worse.get_json()["error"]["code"]) == (422, "invalid_config")
    renamed = client.put("/api/v1/integration-confs", headers=auth, json={
        "id": param_id, "confName": "inactive_days", "confValue": "-1"})
    assert (renamed.status_code, renamed.get_json()["error"]["code"]) == (422, "invalid_config")
    with session_factory(settings)() as s:
        param = s.get_one(ConfigParameter, param_id)
        assert (param.name, param.value) == ("max_super_admins", "6")
    assert runs_by_trigger(settings) == [Trigger.CONNECT, Trigger.CONFIG_CHANGE]

    deleted = client.delete(f"/api/v1/integration-confs/{param_id}", headers=auth)
    assert deleted.status_code == 200  # back to the default: a valid configuration
    assert super_admin_verdict(client, auth) == "failing"


def test_connect_with_an_invalid_config_is_refused_and_writes_nothing(client, auth, settings,
                                                                      jobs):
    credentials = {"org_url": "https://acme.okta.com", "api_token": "00" + "t" * 40}
    for config, field in (({"max_super_admins": 0}, "max_super_admins"),
                          ({"inactive_days": "soon"}, "inactive_days"),
                          ({"colour": "blue"}, "colour")):
        resp = client.post("/api/v1/integrations/okta/connect", headers=auth,
                           json={"credentials": credentials, "config": config})
        assert resp.status_code == 422, resp.get_json()
        error = resp.get_json()["error"]
        assert (error["code"], [f["field"] for f in error["fields"]]) == (
            "invalid_config", [field])
        assert credentials["api_token"] not in resp.get_data(as_text=True)
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(Connection)) == 0
    assert jobs == []

    ok = client.post("/api/v1/integrations/okta/connect?wait=0", headers=auth,
                     json={"credentials": credentials, "config": {"max_super_admins": "6"}})
    assert ok.status_code == 202, ok.get_json()
    with session_factory(settings)() as s:
        assert s.scalars(select(Connection)).one().config == {"max_super_admins": 6}
    assert [j.name for j in jobs] == ["connections.verify"]
