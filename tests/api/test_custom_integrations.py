"""Seed 003: custom integrations and configuration parameters; a changed parameter asks for a
fresh sync (`needsRestart`), secrets are write-only."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from engine.connections import open_connector
from engine.db import session_factory
from engine.models import Connection, SyncRun, Trigger
from engine.models.integrations import ConfigParameter, CustomIntegration
from engine.settings import Settings

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
