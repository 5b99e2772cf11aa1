"""Fixtures of the console tests: sign-in through a real login link, for any account."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.console_sessions import issue_login_link
from engine.db import unit_of_work
from engine.settings import Settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login_link(settings: Settings, account_id: str) -> str:
    """A fresh single-use link, as `evidence login-link` prints it."""
    with unit_of_work(settings) as session:
        return issue_login_link(session, settings, account_id, datetime.now(UTC)).url


def csrf_token(client: FlaskClient, path: str = "/console/login", **kw: Any) -> str:
    page = client.get(path, **kw)
    found = CSRF.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:500]
    return found.group(1)


def post_link(client: FlaskClient, link: str, **kw: Any) -> tuple[int, str]:
    """What the sign-in page's script does: post the fragment's token with the CSRF token."""
    token = link.split("#token=", 1)[1]
    answer = client.post("/console/login", **kw, data={"token": token,
                                                       "csrf_token": csrf_token(client, **kw)})
    return answer.status_code, answer.get_data(as_text=True)


@pytest.fixture
def sign_in(client: FlaskClient, settings: Settings) -> Callable[[str], FlaskClient]:
    """Sign the test client in as an account through a login link."""

    def sign(account_id: str) -> FlaskClient:
        status, body = post_link(client, login_link(settings, account_id))
        assert status == 303, body
        return client

    return sign
