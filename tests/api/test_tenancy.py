"""Tenancy: a second account calling every endpoint against the first account's objects gets
404 (or its own empty view), never their data; the scoping lives in one place."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from engine.db import session_factory
from engine.models import Account, Connection, SyncRun
from engine.models.integrations import CustomIntegration
from engine.settings import Settings
from engine.tenancy import scope_to_account, tenant_classes

SECRET = "acme-secret-value-0001"


@pytest.fixture
def world(client, auth, inline_jobs, fake_connector, provider) -> dict[str, Any]:
    """The first account (acme): two active connections with evidence, a custom integration,
    parameters on both kinds of owner."""
    provider.state.access["at-acme"] = time.time() + 3600
    for integration, creds in (("fake", {"token": "t0k3n"}),
                               ("oauthfake", {"access_token": "at-acme"})):
        resp = client.post(f"/api/v1/integrations/{integration}/connect?wait=5",
                           json={"credentials": creds}, headers=auth)
        assert resp.status_code == 200, resp.get_json()
    custom = client.post("/api/v1/custom-integrations", headers=auth, json={
        "name": "Acme Logs", "shortName": "acme-logs", "integrationType": "COLLECTOR"})
    conf_custom = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": custom.get_json()["id"]}, "confName": "client_secret",
        "confValue": SECRET})
    conf_conn = client.post("/api/v1/integration-confs", headers=auth, json={
        "integration": {"id": "oauthfake"}, "confName": "org", "confValue": "acme-org"})
    assert (custom.status_code, conf_custom.status_code, conf_conn.status_code) == (201,) * 3
    return {"custom": custom.get_json()["id"], "conf_custom": conf_custom.get_json()["id"],
            "conf_conn": conf_conn.get_json()["id"], "snapshot": snapshot(client, auth)}


def snapshot(client, auth) -> dict[str, Any]:
    """What the first account sees (compared before and after the second account acts)."""
    paths = ["/api/v1/integrations/fake/evidence", "/api/v1/integrations/fake/controls",
             "/api/v1/custom-integrations", "/api/v1/integration-confs?integrationId=oauthfake"]
    seen = {p: client.get(p, headers=auth).get_json() for p in paths}
    status = client.get("/api/v1/integrations/fake/status", headers=auth).get_json()
    seen["status"] = {k: status[k] for k in ("connectionId", "status", "lastSync")}
    return seen


# (method, path, body, expected status, expected code); {custom}/{conf_*} are acme's ids.
SECOND_ACCOUNT_CALLS = [
    ("POST", "/api/v1/integrations/fake/sync", None, 404, "not_connected"),
    ("DELETE", "/api/v1/integrations/fake/disconnect", None, 404, "not_connected"),
    ("GET", "/api/v1/integrations/fake/evidence", None, 404, "not_connected"),
    ("GET", "/api/v1/integrations/fake/status", None, 404, "not_connected"),
    ("GET", "/api/v1/custom-integrations/{custom}", None, 404, "integration_not_found"),
    ("PUT", "/api/v1/custom-integrations", {"id": "{custom}", "name": "pwned",
                                            "shortName": "pwned", "integrationType": "API"},
     404, "integration_not_found"),
    ("DELETE", "/api/v1/custom-integrations/{custom}", None, 404, "integration_not_found"),
    ("POST", "/api/v1/integration-confs", {"integration": {"id": "{custom}"},
                                           "confName": "x", "confValue": "y"},
     404, "integration_not_found"),
    ("POST", "/api/v1/integration-confs", {"integration": {"id": "oauthfake"},
                                           "confName": "org", "confValue": "y"},
     404, "not_connected"),
    ("GET", "/api/v1/integration-confs?integrationId={custom}", None, 404,
     "integration_not_found"),
    ("GET", "/api/v1/integration-confs?integrationId=oauthfake", None, 404, "not_connected"),
    ("GET", "/api/v1/integration-confs/{conf_custom}", None, 404, "parameter_not_found"),
    ("GET", "/api/v1/integration-confs/{conf_conn}", None, 404, "parameter_not_found"),
    ("PUT", "/api/v1/integration-confs", {"id": "{conf_custom}", "confName": "client_secret",
                                          "confValue": "stolen"}, 404, "parameter_not_found"),
    ("DELETE", "/api/v1/integration-confs/{conf_conn}", None, 404, "parameter_not_found"),
]


def fill(value: Any, ids: dict[str, Any]) -> Any:
    raw = json.dumps(value)
    for name, ident in ids.items():
        raw = raw.replace(f'"{{{name}}}"', str(ident)).replace(f"{{{name}}}", str(ident))
    return json.loads(raw)


def test_a_second_account_gets_404_for_every_object_of_the_first(client, auth, second_auth,
                                                                 world):
    markers = [SECRET, "acme-org", "Acme Logs", "acme-logs", world["snapshot"]["status"][
        "connectionId"], "widget:a"]
    for method, path, body, status, code in SECOND_ACCOUNT_CALLS:
        resp = client.open(fill(path, world), method=method, json=fill(body, world),
                           headers=second_auth)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (status, code), (
            method, path, resp.get_json())
        assert not any(m in resp.get_data(as_text=True) for m in markers), (method, path)

    # The catalog views answer the second account's own (empty) state, never the first's.
    listed = client.get("/api/v1/integrations", headers=second_auth).get_json()
    for item in listed["integrations"]:
        assert (item["connected"], item["status"], item["evidenceCount"]) == (False, None, 0)
    controls = client.get("/api/v1/integrations/fake/controls", headers=second_auth).get_json()
    assert controls["connected"] is False
    assert all(c["total"] == 0 for c in controls["controlResults"])
    assert client.get("/api/v1/custom-integrations",
                      headers=second_auth).get_json()["integrations"] == []
    # Connecting the same integration makes the second account its own connection.
    own = client.post("/api/v1/integrations/fake/connect?wait=5", headers=second_auth,
                      json={"credentials": {"token": "globex-token"}})
    assert own.status_code == 200
    assert own.get_json()["connectionId"] != world["snapshot"]["status"]["connectionId"]

    assert snapshot(client, auth) == world["snapshot"]


def test_every_integrations_endpoint_is_covered_by_the_tenancy_test(client):
    """A new route must join SECOND_ACCOUNT_CALLS (or the catalog views above)."""
    app = client.application
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules()
              if rule.rule.startswith(("/api/v1/integrations", "/api/v1/custom-integrations",
                                       "/api/v1/integration-confs"))
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    covered = {(m, p.split("?")[0].replace("fake", "<integration_id>")
                .replace("{custom}", "<integration_id>").replace("{conf_custom}", "<conf_id>")
                .replace("{conf_conn}", "<conf_id>"))
               for m, p, *_ in SECOND_ACCOUNT_CALLS}
    elsewhere = {
        ("GET", "/api/v1/integrations"),  # catalog: own state, asserted above
        ("GET", "/api/v1/integrations/<integration_id>/controls"),  # own state, above
        ("POST", "/api/v1/integrations/<integration_id>/connect"),  # own connection, above
        ("GET", "/api/v1/custom-integrations"),  # own list, above
        ("POST", "/api/v1/custom-integrations"),  # creates its own
        ("GET", "/api/v1/integrations/<integration_id>/oauth-url"),  # issues its own state
        ("GET", "/api/v1/integrations/callback"),  # test_oauth: another account's state
    }
    assert routes == covered | elsewhere


def test_a_scoped_session_sees_and_changes_only_its_account_rows(settings: Settings, db):
    factory = session_factory(settings)
    with factory() as s, s.begin():
        s.add_all([Account(id="acme"), Account(id="globex")])
        s.flush()
        s.add_all([Connection(account_id=a, integration_id="aws") for a in ("acme", "globex")])
        s.add_all([CustomIntegration(account_id=a, name=a, short_name=a,
                                     integration_type="API", active=True, needs_restart=False)
                   for a in ("acme", "globex")])
    with factory() as s:
        scope_to_account(s, "globex")
        assert s.scalars(select(Account.id)).all() == ["globex"]
        assert [c.account_id for c in s.scalars(select(Connection))] == ["globex"]
        assert s.scalar(select(func.count()).select_from(CustomIntegration)) == 1
        acme_conn = s.execute(select(Connection.id).execution_options()).all()
        assert len(acme_conn) == 1
        assert s.execute(update(Connection).values(status_message="x")).rowcount == 1
        assert s.execute(delete(CustomIntegration)).rowcount == 1
        s.rollback()
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(CustomIntegration)) == 2
        assert s.scalar(select(func.count()).select_from(Connection)) == 2
    assert Connection in tenant_classes() and SyncRun in tenant_classes()
