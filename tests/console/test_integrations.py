"""The console's Integrations pages through the Flask test client: the catalog and its filter,
forms generated from the connector models, refusals beside their fields with nothing written,
CSRF, and tenancy (the browser test in test_browser_integrations.py connects and syncs AWS)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from cli.wiring import api_app
from engine.connections import ensure_account
from engine.db import unit_of_work
from engine.models import Connection, ConnectionStatus
from tests.console.conftest import csrf_token, login_link, post_link

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-do-not-echo"


def connections(settings) -> int:
    with unit_of_work(settings) as session:
        return session.scalar(select(func.count()).select_from(Connection)) or 0


def test_the_catalog_lists_every_integration_and_filters_by_category_in_the_url(sign_in):
    client = sign_in("acme")
    page = client.get("/console/integrations").get_data(as_text=True)
    for name in ("Amazon Web Services", "GitHub", "Okta", "Google Cloud"):
        assert name in page
    assert 'aria-current="page">Integrations' in page
    cloud = client.get("/console/integrations?category=cloud").get_data(as_text=True)
    assert "Amazon Web Services" in cloud and 'id="integration-okta"' not in cloud
    assert '<option value="cloud" selected>' in cloud
    refused = client.get("/console/integrations?category=nope")
    assert refused.status_code == 422 and "no category called" in refused.get_data(as_text=True)


def test_the_connect_form_is_generated_from_the_credentials_model(sign_in):
    client = sign_in("acme")
    page = client.get("/console/integrations/aws/connect").get_data(as_text=True)
    key = re.search(r'<input type="password" id="field-credentials-secret_access_key"'
                    r' name="credentials.secret_access_key" value=""', page)
    assert key, page
    assert '<label for="field-credentials-access_key_id">Access key ID' in page
    assert "Access key id of a read-only auditing principal" in page  # the description
    assert 'id="field-credentials-access_key_id"' in page and 'aria-required="true"' in page
    assert 'name="credentials.regions"' in page  # a list: a textarea
    assert 'aria-current="page">Integrations' in page
    okta = client.get("/console/integrations/okta/connect").get_data(as_text=True)
    assert 'type="password" id="field-credentials-api_token"' in okta
    assert 'name="config.max_super_admins"' in okta  # config parameters, optional
    github = client.get("/console/integrations/github/connect").get_data(as_text=True)
    assert "credentials.access_token" not in github  # what the OAuth callback stores
    assert "credentials.organization" in github


def test_a_refused_connect_shows_the_message_beside_the_field_and_writes_nothing(
        sign_in, sent, settings):
    client = sign_in("acme")
    token = csrf_token(client, "/console/integrations/aws/connect")
    answer = client.post("/console/integrations/aws/connect", data={
        "csrf_token": token, "credentials.access_key_id": "not-an-access-key-01",
        "credentials.secret_access_key": SECRET, "sync_frequency": "daily"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="field-credentials-access_key_id-error"' in page
    assert "Nothing was saved" in page
    assert 'value="not-an-access-key-01"' in page  # what was typed comes back, to be corrected
    assert "not in the expected format" in page  # in words, not a regular expression
    assert re.search(r'id="field-credentials-access_key_id"[^>]*autofocus', page)
    assert SECRET not in page  # a secret never does
    assert connections(settings) == 0

    bad_config = client.post("/console/integrations/okta/connect", data={
        "csrf_token": token, "credentials.org_url": "https://acme.okta.com",
        "credentials.api_token": "a" * 30, "config.max_super_admins": "0"})
    page = bad_config.get_data(as_text=True)
    assert bad_config.status_code == 422, page
    assert 'id="field-config-max_super_admins-error"' in page
    assert "a" * 30 not in page
    assert connections(settings) == 0


def test_the_endpoint_gate_comes_with_the_engine_connect(client, settings, sent):
    locked = api_app(settings.model_copy(update={"allow_custom_endpoints": False})).test_client()
    status, _ = post_link(locked, login_link(settings, "acme"))
    assert status == 303
    token = csrf_token(locked, "/console/integrations/aws/connect")
    answer = locked.post("/console/integrations/aws/connect", data={
        "csrf_token": token, "credentials.access_key_id": AWS_KEY,
        "credentials.secret_access_key": SECRET,
        "credentials.endpoint_url": "http://127.0.0.1:5000"})
    assert answer.status_code == 422
    assert 'id="field-credentials-endpoint_url-error"' in answer.get_data(as_text=True)
    assert connections(settings) == 0


def test_a_good_connect_stores_the_connection_and_shows_its_page(sign_in, sent, settings):
    client = sign_in("acme")
    token = csrf_token(client, "/console/integrations/aws/connect")
    answer = client.post("/console/integrations/aws/connect", data={
        "csrf_token": token, "credentials.access_key_id": AWS_KEY,
        "credentials.secret_access_key": SECRET, "credentials.regions": "us-east-1, eu-west-1",
        "sync_frequency": "weekly"})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/integrations/aws?done=connected")
    with unit_of_work(settings) as session:
        conn = session.scalars(select(Connection)).one()
        assert (conn.account_id, conn.status, str(conn.sync_frequency)) == (
            "acme", ConnectionStatus.PENDING, "weekly")
    page = client.get("/console/integrations/aws")
    body = page.get_data(as_text=True)
    assert "Being verified" in body and 'aria-live="polite"' in body
    assert "connect-src 'self'" in page.headers["Content-Security-Policy"]
    progress = client.get("/console/integrations/aws/progress").get_json()
    assert progress["connection"]["status"] == "pending"
    assert SECRET not in body and SECRET not in str(progress)


def test_posts_without_the_csrf_token_are_refused(sign_in, sent, settings):
    client = sign_in("acme")
    for path in ("/console/integrations/aws/connect", "/console/integrations/aws/sync",
                 "/console/integrations/aws/disconnect"):
        answer = client.post(path, data={"credentials.access_key_id": AWS_KEY,
                                          "credentials.secret_access_key": SECRET})
        assert answer.status_code == 400, path
        assert "security token" in answer.get_data(as_text=True)
    assert connections(settings) == 0


def test_another_accounts_connection_is_not_found(sign_in, sent, settings):
    with unit_of_work(settings) as session:
        ensure_account(session, "globex")
        session.add(Connection(account_id="globex", integration_id="aws",
                               status=ConnectionStatus.ACTIVE))
    client = sign_in("acme")
    token = csrf_token(client, "/console/integrations")
    assert client.get("/console/integrations/aws/progress").status_code == 404
    assert client.get("/console/integrations/aws/disconnect").status_code == 404
    assert client.post("/console/integrations/aws/sync",
                       data={"csrf_token": token}).status_code == 404
    assert client.post("/console/integrations/aws/disconnect",
                       data={"csrf_token": token}).status_code == 404
    page = client.get("/console/integrations/aws").get_data(as_text=True)
    assert "is not connected" in page and "Sync now" not in page
    catalog = client.get("/console/integrations").get_data(as_text=True)
    assert "Not connected" in catalog and "Manage" not in catalog
    with unit_of_work(settings) as session:
        (conn,) = session.scalars(select(Connection))
        assert conn.status == ConnectionStatus.ACTIVE  # globex's, untouched


def test_disconnect_asks_first_then_keeps_the_evidence(sign_in, sent, settings):
    client = sign_in("acme")
    with unit_of_work(settings) as session:
        ensure_account(session, "acme")
        session.add(Connection(account_id="acme", integration_id="aws",
                               status=ConnectionStatus.ACTIVE))
    confirm = client.get("/console/integrations/aws/disconnect").get_data(as_text=True)
    assert "Disconnect Amazon Web Services?" in confirm and "kept as history" in confirm
    token = csrf_token(client, "/console/integrations/aws/disconnect")
    done = client.post("/console/integrations/aws/disconnect", data={"csrf_token": token})
    assert done.status_code == 303
    catalog = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Amazon Web Services is disconnected" in catalog
    with unit_of_work(settings) as session:
        assert session.scalars(select(Connection)).one().status == \
            ConnectionStatus.DISCONNECTED


def test_a_connection_in_error_says_what_went_wrong_in_words(sign_in, settings):
    message = "the provider refused the access key: it was deleted or deactivated"
    with unit_of_work(settings) as session:
        ensure_account(session, "acme")
        session.add(Connection(account_id="acme", integration_id="aws",
                               status=ConnectionStatus.ERROR, status_message=message))
    client = sign_in("acme")
    catalog = client.get("/console/integrations").get_data(as_text=True)
    assert "Error" in catalog and message in catalog and "What went wrong" in catalog
    assert "last synced never" in catalog.lower() or "Last synced never" in catalog
    detail = client.get("/console/integrations/aws").get_data(as_text=True)
    assert f"The connection has a problem: {message}." in detail
    progress = client.get("/console/integrations/aws/progress").get_json()
    assert progress["connection"]["status"] == "error" and progress["run"] is None
