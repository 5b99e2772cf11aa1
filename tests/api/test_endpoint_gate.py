"""The custom endpoint gate at the API (issue #15 item 1): with EVIDENCE_ALLOW_CUSTOM_ENDPOINTS
off, an Okta org_url on a loopback, private, metadata or local address is refused with 422
invalid_credentials naming the field, before anything is written or sent to a worker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connectors.okta.kit import okta_server
from engine.db import session_factory
from engine.models import Account, Connection, ConnectionStatus, SyncRun
from engine.settings import Settings
from engine.verification import verify_connection
from tests.conftest import TEST_ONLY_ENV

TOKEN = "00" + "a" * 40


def nothing_written(settings: Settings) -> bool:
    with session_factory(settings)() as s:
        return all(s.scalar(select(func.count()).select_from(m)) == 0
                   for m in (Account, Connection, SyncRun))


@pytest.mark.parametrize("org_url", [
    "https://127.0.0.1:8658",
    "http://127.0.0.1:8658",
    "http://localhost:8658",
    "https://localhost",
    "https://10.0.0.1",
    "https://192.168.0.10:8443",
    "https://169.254.169.254",
    "https://[::1]:8658",
    "https://2130706433",
    "https://okta.internal",
    "https://acme",
])
def test_connecting_okta_to_a_non_public_org_url_is_refused_and_writes_nothing(
        app_client: Callable[..., FlaskClient], auth, settings, jobs, org_url):
    locked = app_client(allow_custom_endpoints=False)
    resp = locked.post("/api/v1/integrations/okta/connect?wait=0", headers=auth, json={
        "credentials": {"org_url": org_url, "api_token": TOKEN}})
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_credentials"
    assert [f["field"] for f in error["fields"]] == ["org_url"]
    assert TOKEN not in resp.get_data(as_text=True)
    assert nothing_written(settings) and jobs == []


@pytest.mark.parametrize("org_url", ["https://acme.okta.com", "https://acme.oktapreview.com",
                                     "https://login.acme-corp.com"])
def test_okta_orgs_and_public_custom_domains_need_no_flag(
        app_client: Callable[..., FlaskClient], auth, jobs, org_url):
    locked = app_client(allow_custom_endpoints=False)
    resp = locked.post("/api/v1/integrations/okta/connect?wait=0", headers=auth, json={
        "credentials": {"org_url": org_url, "api_token": TOKEN}})
    assert resp.status_code == 202, resp.get_json()
    assert [job.name for job in jobs] == ["connections.verify"]


def test_a_worker_with_the_flag_off_never_reaches_a_loopback_org_stored_while_it_was_on(
        app_client: Callable[..., FlaskClient], auth, settings, jobs,
        monkeypatch: pytest.MonkeyPatch):
    """Connected while the flag was on, verified by a worker where it is off: the stored
    org_url is judged again before the connector is opened, so the okta SDK never reaches the
    loopback org and the connection names the field."""
    monkeypatch.setenv(*next(iter(TEST_ONLY_ENV.items())))  # the okta SDK takes http:// here
    with okta_server() as okta:
        resp = app_client().post("/api/v1/integrations/okta/connect?wait=0", headers=auth,
                                 json={"credentials": okta.estate.credentials()})
        assert resp.status_code == 202, resp.get_json()
        [job] = jobs
        locked = settings.model_copy(update={"allow_custom_endpoints": False})

        assert verify_connection(session_factory(settings), job.args[0],
                                 locked) == ConnectionStatus.ERROR
        assert okta.seen == []
    with session_factory(settings)() as s:
        conn = s.get(Connection, job.args[0])
        assert conn is not None and conn.status_message is not None
        assert conn.status_message.startswith("credentials.org_url: ")
        assert "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=true" in conn.status_message


def test_an_emulator_endpoint_stored_while_the_flag_was_on_is_never_opened_without_it(
        app_client: Callable[..., FlaskClient], auth, settings, jobs):
    """botocore connects on its own: the engine refuses to open a connector whose stored
    endpoint_url the policy now refuses, and the connection says why."""
    resp = app_client().post("/api/v1/integrations/aws/connect?wait=0", headers=auth, json={
        "credentials": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s" * 40,
                        "endpoint_url": "http://169.254.169.254"}})
    assert resp.status_code == 202, resp.get_json()
    [job] = jobs
    locked = settings.model_copy(update={"allow_custom_endpoints": False})

    assert verify_connection(session_factory(settings), job.args[0],
                             locked) == ConnectionStatus.ERROR
    with session_factory(settings)() as s:
        conn = s.get(Connection, job.args[0])
        assert conn is not None and conn.status_message is not None
        assert "credentials.endpoint_url" in conn.status_message
        assert "EVIDENCE_ALLOW_CUSTOM_ENDPOINTS=true" in conn.status_message
