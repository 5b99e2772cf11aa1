"""The console in a real Chromium: sign in by login link, read the overview and the controls
of an AWS account synced by a real worker against moto, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select, update

from connectors.aws.emulated import seed_estate
from engine.connections import ensure_account
from engine.db import unit_of_work
from engine.models import (
    Connection,
    ConnectionStatus,
    ControlResultHistory,
    Evidence,
    EvidenceStatus,
)
from engine.models.console import ConsoleSession
from tests.conftest import serve
from tests.console.browser import chromium, page_width, screenshot
from tests.console.conftest import login_link

pytestmark = pytest.mark.slow
WAIT = 30


def open_link(driver: WebDriver, server: str, link: str, settings) -> None:
    """Open a login link as printed (its host swapped for the test server's)."""
    driver.get(server + link.removeprefix(settings.public_base_url))


def wait_for(driver: WebDriver, css: str):
    return WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def sync_aws(client, auth, endpoint: str) -> None:
    """Connect the emulated estate and sync it through the JSON API and the real worker."""
    estate = seed_estate(endpoint)
    connected = client.post("/api/v1/integrations/aws/connect?wait=60", headers=auth,
                            json={"credentials": estate.credentials(),
                                  "sync_frequency": "daily"})
    assert connected.status_code == 200, connected.get_json()
    synced = client.post("/api/v1/integrations/aws/sync?wait=120", headers=auth)
    assert synced.status_code == 200 and synced.get_json()["success"], synced.get_json()


def backdate_history(settings, account_id: str) -> None:
    """Give the control history a past, as earlier syncs would have written it: 60 days ago
    half of today's passing results passed, 30 days ago three quarters."""
    now = datetime.now(UTC)
    with unit_of_work(settings) as session:
        today = list(session.scalars(select(ControlResultHistory)
                                     .where(ControlResultHistory.account_id == account_id)))
        for row in today:
            for days, passing in ((60, row.passing // 2), (30, row.passing * 3 // 4)):
                session.add(ControlResultHistory(
                    account_id=account_id, framework_id=row.framework_id,
                    control_id=row.control_id, status=row.status, passing=passing,
                    total=row.total, evaluated_at=now - timedelta(days=days)))


def test_sign_in_overview_and_a_failing_control_with_its_resources(
        client, auth, worker, aws_endpoint, settings):
    sync_aws(client, auth, aws_endpoint)
    backdate_history(settings, "acme")
    with serve(client.application) as server, chromium() as driver:
        open_link(driver, server, login_link(settings, "acme"), settings)
        wait_for(driver, "#framework-soc2")
        assert urlparse(driver.current_url).path == "/console"
        assert "#token" not in driver.current_url
        cards = {c.text for c in driver.find_elements(By.CSS_SELECTOR, "article.framework h3")}
        assert "SOC 2 Trust Services Criteria" in cards and any("27001" in c for c in cards)
        soc2 = driver.find_element(By.ID, "framework-soc2")
        assert "failing" in soc2.find_element(By.CSS_SELECTOR, ".headline").text
        trend = soc2.find_element(By.CSS_SELECTOR, "svg[data-trend='soc2']")
        assert "pass rate over the last 90 days" in trend.find_element(
            By.TAG_NAME, "title").get_attribute("textContent")
        assert trend.find_elements(By.CSS_SELECTOR, "polyline")
        aws = driver.find_element(By.ID, "connection-aws")
        assert "synced" in aws.text and ("ago" in aws.text or "just now" in aws.text)
        screenshot(driver, "console-overview", 1280)
        screenshot(driver, "console-overview-390", 390)
        assert page_width(driver, 390) <= 390  # a phone reads it without scrolling sideways

        # Without a mouse: the first Tab lands on the skip link, which then shows.
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
        assert focused.text == "Skip to the content" and focused.location["x"] >= 0

        driver.find_element(By.LINK_TEXT, "Controls").click()
        Select(wait_for(driver, "#filter-framework")).select_by_value("soc2")
        Select(driver.find_element(By.ID, "filter-status")).select_by_value("failing")
        Select(driver.find_element(By.ID, "filter-integration")).select_by_value("aws")
        driver.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
        WebDriverWait(driver, WAIT).until(lambda d: "status=failing" in d.current_url)
        query = parse_qs(urlparse(driver.current_url).query)
        assert query == {"framework": ["soc2"], "status": ["failing"], "integration": ["aws"]}
        controls = driver.find_elements(By.CSS_SELECTOR, "li.control")
        assert controls and all("Failing" in c.find_element(By.CSS_SELECTOR, "summary").text
                                for c in controls)
        failing_check = controls[0].find_element(By.CSS_SELECTOR, "li.check")
        assert "How to fix:" in failing_check.find_element(By.CSS_SELECTOR,
                                                           ".remediation").text
        rows = failing_check.find_elements(By.CSS_SELECTOR, "table.resources tbody tr")
        assert rows and ("Failing" in rows[0].text or "Error" in rows[0].text)
        screenshot(driver, "console-controls", 1280, max_height=1600)

        rows[0].find_element(By.CSS_SELECTOR, "a").click()
        history = wait_for(driver, "table.versions")
        assert len(history.find_element(By.CSS_SELECTOR, "tbody tr code").text) == 64

        driver.find_element(By.LINK_TEXT, "Sync runs").click()
        run = wait_for(driver, "table.runs tbody tr")
        assert "Amazon Web Services" in run.text and "Succeeded" in run.text
        assert "resource results" in run.text


def test_refusals_reused_link_csrf_expired_session_and_another_account(
        client, settings):
    with serve(client.application) as server, chromium() as driver:
        other = _other_accounts_evidence(settings)
        link = login_link(settings, "acme")
        open_link(driver, server, link, settings)
        wait_for(driver, "#framework-soc2")

        # Account B's resource from account A's session: not found, nothing of B shown.
        driver.get(f"{server}/console/resources/{other}")
        assert "Page not found" in wait_for(driver, "h1").text
        assert "globex" not in driver.page_source

        # A reused login link is refused with a page that says so.
        open_link(driver, server, link, settings)
        assert "already been used" in wait_for(driver, "#sign-in-error").text

        # A POST without its CSRF token is refused (400) and ends nothing.
        driver.get(f"{server}/console")
        wait_for(driver, ".signout")
        driver.execute_script(
            "document.querySelector('.signout input[name=csrf_token]').remove()")
        driver.find_element(By.CSS_SELECTOR, ".signout button").click()
        assert "could not be sent" in wait_for(driver, "h1").text
        driver.get(f"{server}/console")
        wait_for(driver, "#framework-soc2")

        # An expired session is refused: back to sign-in, saying why.
        with unit_of_work(settings) as session:
            session.execute(update(ConsoleSession).where(ConsoleSession.account_id == "acme")
                            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        driver.get(f"{server}/console/controls")
        notice = wait_for(driver, "#sign-in-notice")
        assert "Your session has expired" in notice.text
        assert urlparse(driver.current_url).path == "/console/login"


def _other_accounts_evidence(settings) -> int:
    """A current failing evidence row of account globex, as a sync would have written it."""
    now = datetime.now(UTC)
    with unit_of_work(settings) as session:
        ensure_account(session, "globex")
        conn = Connection(account_id="globex", integration_id="aws",
                          status=ConnectionStatus.ACTIVE)
        session.add(conn)
        session.flush()
        row = Evidence(account_id="globex", connection_id=conn.id,
                       check_id="aws.s3.bucket_default_encryption",
                       resource_id="arn:aws:s3:::globex-secrets", resource_type="aws.s3.bucket",
                       status=EvidenceStatus.FAILING, title="Bucket globex-secrets has no "
                       "default encryption", data={}, content_hash="0" * 64,
                       first_seen_at=now, last_changed_at=now)
        session.add(row)
        session.flush()
        return row.id
