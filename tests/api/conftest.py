"""Fixtures of the API tests: in-process connectors, jobs run in-process, the local OAuth
provider, and a second account."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine import registry
from engine.db import Job, _sender, session_factory, set_job_sender
from engine.settings import OAuthClient, Settings
from engine.sync import run_sync
from engine.tokens import mint
from engine.verification import verify_connection
from tests.api import provider as oauth
from tests.engine import fake

SECOND_ACCOUNT = "globex"


def run_jobs_inline(settings: Settings) -> Callable[[Job], None]:
    """Run verify and sync jobs in this process, right after the transaction that queued them
    commits (these in-process connectors are not installed in a Celery worker)."""
    factory = session_factory(settings)

    def run(job: Job) -> None:
        if job.name == "connections.verify":
            verify_connection(factory, job.args[0], settings)
        elif job.name == "sync.run":
            run_sync(factory, job.args[0], worker="inline", settings=settings)

    return run


@pytest.fixture
def jobs(client: FlaskClient) -> Iterator[list[Job]]:
    """Record jobs instead of sending them (installed after the app is created)."""
    saved = list(_sender)
    sent: list[Job] = []
    set_job_sender(sent.append)
    yield sent
    _sender[:] = saved


@pytest.fixture
def inline_jobs(client: FlaskClient, settings: Settings) -> Iterator[None]:
    """Run jobs in-process (installed after the app is created)."""
    saved = list(_sender)
    set_job_sender(run_jobs_inline(settings))
    yield
    _sender[:] = saved


@pytest.fixture
def fake_connector() -> Iterator[dict[str, Any]]:
    """The engine tests' in-process connector, with an estate the test controls."""
    registry.register(fake.FakeConnector)
    fake.ESTATE.update(widgets={"a": True, "b": False, "c": True}, explode=False)
    yield fake.ESTATE
    registry.unregister("fake")


@pytest.fixture
def app_client(settings: Settings, db: None,
               request: pytest.FixtureRequest) -> Callable[..., FlaskClient]:
    """A test client of an app built with `settings` changed by the given fields; the test's
    `jobs` / `inline_jobs` choice stays in force."""
    from cli.wiring import api_app

    def make(**changes: Any) -> FlaskClient:
        changed = settings.model_copy(update=changes)
        app = api_app(changed)
        if "inline_jobs" in request.fixturenames:
            set_job_sender(run_jobs_inline(changed))
        elif "jobs" in request.fixturenames:
            set_job_sender(request.getfixturevalue("jobs").append)
        return app.test_client()

    return make


@pytest.fixture
def second_auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings, SECOND_ACCOUNT)}"}


@pytest.fixture(scope="session")
def provider_server() -> Iterator[oauth.Provider]:
    with oauth.oauth_provider() as provider:
        yield provider


@pytest.fixture
def provider(provider_server: oauth.Provider) -> Iterator[oauth.Provider]:
    """The local OAuth provider, emptied, with the in-process connector that uses it."""
    provider_server.reset()
    oauth.API["url"] = provider_server.url
    registry.register(oauth.OAuthFakeConnector)
    yield provider_server
    registry.unregister("oauthfake")


def oauth_settings(provider: oauth.Provider) -> dict[str, Any]:
    """The settings an operator sets for the provider's OAuth app."""
    return {
        "oauth_clients": {"oauthfake": OAuthClient(
            client_id=oauth.CLIENT_ID, client_secret=oauth.CLIENT_SECRET,  # type: ignore[arg-type]
            authorize_url=f"{provider.url}/authorize", token_url=f"{provider.url}/token",
            revoke_url=f"{provider.url}/revoke")},
        "oauth_redirect_url": "https://evidence.example.com/api/v1/integrations/callback",
    }


@pytest.fixture
def oauth_client(app_client: Callable[..., FlaskClient], provider: oauth.Provider,
                 inline_jobs: None) -> FlaskClient:
    """The API configured with an OAuth app at the local provider; jobs run in-process."""
    return app_client(**oauth_settings(provider))
