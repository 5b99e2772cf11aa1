"""The console's refusals in a real Chromium, beyond those of test_browser.py (a CSRF-less
POST, a reused login link, a session past its absolute expiry, another account's resource): a
session left idle, an auditor's portal cookie on the customer's pages, and more of account B's
addresses from account A's session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import update

from engine.db import unit_of_work
from engine.models.console import ConsoleSession
from tests.conftest import serve
from tests.console.auditor_helpers import create_audit, invite
from tests.console.browser import chromium
from tests.console.conftest import login_link
from tests.console.test_dashboard import seed_failing_bucket

pytestmark = pytest.mark.slow
WAIT = 30


def wait_for(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_an_idle_session_and_account_bs_addresses_are_refused(client, settings):
    with unit_of_work(settings) as session:
        seed_failing_bucket(session, "acme", "acme-logs")
        seed_failing_bucket(session, "globex", "globex-secrets")
    with serve(client.application) as server, chromium() as driver:
        link = login_link(settings, "acme")
        driver.get(server + link.removeprefix(settings.public_base_url))
        wait_for(driver, "#framework-soc2")

        # Account B's pages from A's session: the check both fail lists A's resource only,
        # and B's names appear nowhere (B's resource page: test_browser.py).
        check = "aws.s3.bucket_default_encryption"
        driver.get(f"{server}/console/checks/{check}")
        rows = wait_for(driver, "table.resources tbody").text
        assert "acme-logs" in rows and "globex" not in driver.page_source
        driver.get(f"{server}/console/controls?status=failing")
        wait_for(driver, "li.control")
        assert "globex" not in driver.page_source

        # A session unused for longer than the idle timeout is over, whatever its expiry.
        with unit_of_work(settings) as session:
            session.execute(update(ConsoleSession).where(ConsoleSession.account_id == "acme")
                            .values(last_seen_at=datetime.now(UTC) - timedelta(
                                seconds=settings.console_idle_seconds + 1)))
        driver.get(f"{server}/console/runs")
        assert "Your session has expired" in wait_for(driver, "#sign-in-notice").text
        assert urlparse(driver.current_url).path == "/console/login"
        assert driver.get_cookie("evidence_console") is None  # dropped by the refusal


def test_an_auditors_portal_cookie_opens_no_customer_page(client, auth, settings, sent):
    audit_id = create_audit(client, auth)
    link, _ = invite(settings, audit_id)
    with serve(client.application) as server, chromium() as driver:
        driver.get(server + link.removeprefix(settings.public_base_url))
        wait_for(driver, "#audit-facts")
        assert urlparse(driver.current_url).path == "/auditor"
        portal = driver.get_cookie("evidence_auditor")
        assert portal is not None and portal["path"] == "/auditor"

        for path in ("/console", "/console/controls", "/console/integrations", "/console/runs"):
            driver.get(server + path)
            wait_for(driver, "#login-link-form")
            assert urlparse(driver.current_url).path == "/console/login", path
            assert "Account <strong>" not in driver.page_source

        # Even planted as the console's cookie, the auditor's token is no customer session.
        driver.add_cookie({"name": "evidence_console", "value": portal["value"],
                           "path": "/console"})
        driver.get(f"{server}/console/controls")
        wait_for(driver, "#login-link-form")
        assert urlparse(driver.current_url).path == "/console/login"
        assert "SOC 2 Type II Annual Audit" not in driver.page_source
