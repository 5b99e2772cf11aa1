"""The auditor portal in a real Chromium: the customer invites an auditor, the auditor opens the
magic link from the mail, sees the audit, marks a control, requests evidence, files a finding
and completes the audit; then the customer withdraws the auditor and the portal is closed."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from engine.connections import ensure_account
from engine.db import unit_of_work
from engine.evidence import Item, store_check_results
from engine.models import Connection, ConnectionStatus
from engine.settings import Settings
from tests.conftest import serve
from tests.console.auditor_helpers import advance, create_audit, invite
from tests.console.browser import chromium, page_width, screenshot

pytestmark = pytest.mark.slow
WAIT = 30


def wait_for(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def store(settings: Settings, connection_id: int, check_id: str,
          resources: dict[str, bool]) -> None:
    """A check's current results, written as a sync writes them."""
    items = [Item.of(rid, "aws.resource", "passing" if ok else "failing",
                     f"{rid} {'passes' if ok else 'fails'}", {"resource": rid, "ok": ok})
             for rid, ok in sorted(resources.items())]
    with unit_of_work(settings) as session:
        store_check_results(session, account_id="acme", connection_id=connection_id,
                            check_id=check_id, items=items, run_id=None, now=datetime.now(UTC))


def aws_evidence(settings: Settings) -> int:
    with unit_of_work(settings) as session:
        ensure_account(session, "acme")
        conn = Connection(account_id="acme", integration_id="aws",
                          status=ConnectionStatus.ACTIVE)
        session.add(conn)
        session.flush()
        connection_id: int = conn.id
    store(settings, connection_id, "aws.iam.root_account_mfa",
          {"arn:aws:iam::123456789012:root": True})
    store(settings, connection_id, "aws.s3.bucket_default_encryption",
          {"arn:aws:s3:::logs": True, "arn:aws:s3:::exports": True})
    return connection_id


def test_the_auditor_reviews_an_audit_in_the_portal_and_is_cut_off_when_withdrawn(
        client, auth, settings, sent):
    connection_id = aws_evidence(settings)
    audit_id = create_audit(client, auth)
    advance(client, auth, audit_id, "in_progress", "evidence_review")  # evidence frozen now
    store(settings, connection_id, "aws.s3.bucket_default_encryption",
          {"arn:aws:s3:::logs": True, "arn:aws:s3:::exports": False})  # changed after it
    link, invitation_id = invite(settings, audit_id)

    with serve(client.application) as server, chromium() as driver:
        driver.get(server + link.removeprefix(settings.public_base_url))
        title = wait_for(driver, "#audit-facts")
        assert urlparse(driver.current_url).path == "/auditor"
        assert "#token" not in driver.current_url
        assert "SOC 2 Type II Annual Audit 2026" in driver.find_element(By.TAG_NAME, "h1").text
        assert "Evidence review" in title.text and "frozen on" in title.text
        assert "0 of" in driver.find_element(By.ID, "progress").text

        # A control: the evidence as frozen, the change after the freeze flagged in words.
        driver.find_element(By.CSS_SELECTOR, "a[href='/auditor/controls/CC6.1']").click()
        newer = wait_for(driver, "p.newer[data-newer]")
        assert "Changed after the freeze" in newer.text and "now Failing" in newer.text

        # Mark it, by keyboard as much as by mouse: labels name every input.
        driver.find_element(By.CSS_SELECTOR, "label[for='status-needs_evidence']").click()
        driver.find_element(By.ID, "auditor_notes").send_keys("Root MFA shown; encryption of "
                                                              "exports needs a fresh export")
        Select(driver.find_element(By.ID, "evidence_sufficient")).select_by_value("no")
        driver.find_element(By.XPATH, "//button[text()='Save the review']").click()
        assert "Your review is saved" in wait_for(driver, "#done").text
        assert "Needs evidence" in driver.find_element(By.ID, "review-status").text

        # A bad request shows its message beside the field; a good one is sent.
        driver.find_element(By.XPATH, "//button[text()='Send the request']").click()
        assert "Enter what evidence you need" in wait_for(driver, "#description-error").text
        summary = driver.find_element(By.ID, "error-summary")  # at the top, linking to it
        assert "Nothing was saved" in summary.text
        assert summary.find_element(By.TAG_NAME, "a").get_attribute("hash") == "#description-error"
        driver.find_element(By.ID, "description").send_keys("Bucket encryption settings "
                                                            "export for s3://exports")
        Select(driver.find_element(By.ID, "priority")).select_by_value("high")
        driver.find_element(By.XPATH, "//button[text()='Send the request']").click()
        assert "request was sent" in wait_for(driver, "#done").text
        assert "Waiting for the customer" in driver.find_element(By.ID, "requests").find_element(
            By.XPATH, "following-sibling::ul").text
        assert page_width(driver, 390) <= 390
        driver.execute_script("window.scrollTo(0, 0)")
        screenshot(driver, "auditor-portal-control", 1280, max_height=1800)

        # A finding, filed from the control's link (the control is chosen already).
        driver.find_element(By.PARTIAL_LINK_TEXT, "File a finding on CC6.1").click()
        assert Select(wait_for(driver, "#control_id")).first_selected_option.get_attribute(
            "value") == "CC6.1"
        Select(driver.find_element(By.ID, "severity")).select_by_value("major")
        driver.find_element(By.ID, "title").send_keys("Exports bucket lost default encryption")
        driver.find_element(By.ID, "description").send_keys("Found unencrypted during fieldwork")
        driver.find_element(By.XPATH, "//button[text()='File the finding']").click()
        assert "The finding is filed" in wait_for(driver, "#done").text
        assert "Exports bucket lost default encryption" in driver.find_element(
            By.CSS_SELECTOR, "table.findings").text
        assert page_width(driver, 390) <= 390

        driver.find_element(By.LINK_TEXT, "Audit").click()
        wait_for(driver, "#audit-facts")
        assert "1 of" in driver.find_element(By.ID, "progress").text
        row = driver.find_element(By.ID, "control-soc2-cc6.1")
        assert "Needs evidence" in row.text and "1 newer than the freeze" in row.text
        activity = driver.find_element(By.ID, "activity").text
        assert "Jane Smith marked CC6.1 “Needs evidence”" in activity
        assert "filed a finding on CC6.1: Exports bucket lost default encryption" in activity
        bar = driver.find_element(By.CSS_SELECTOR, "progress.bar")
        assert bar.get_attribute("value") == "1"
        screenshot(driver, "auditor-portal", 1280, max_height=1400)
        assert page_width(driver, 390) <= 390
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert driver.switch_to.active_element.text == "Skip to the content"

        # Complete, once the customer has moved the audit to findings, after a confirmation.
        advance(client, auth, audit_id, "findings")
        driver.find_element(By.LINK_TEXT, "Complete").click()
        wait_for(driver, "#confirm")
        driver.find_element(By.XPATH, "//button[text()='Complete the audit']").click()
        assert "Tick the box" in wait_for(driver, "#confirm-error").text
        driver.find_element(By.CSS_SELECTOR, "label[for='confirm']").click()
        driver.find_element(By.XPATH, "//button[text()='Complete the audit']").click()
        assert "The audit is complete" in wait_for(driver, "#done").text
        assert "Read-only." in driver.find_element(By.ID, "read-only").text
        assert "Complete" in driver.find_element(By.ID, "audit-status").text
        driver.find_element(By.CSS_SELECTOR, "a[href='/auditor/controls/CC6.1']").click()
        wait_for(driver, "#read-only")
        assert not driver.find_elements(By.XPATH, "//button[text()='Save the review']")

        # The customer withdraws the auditor: the next page is the withdrawn page.
        revoked = client.delete(f"/api/v1/audits/{audit_id}/auditors/{invitation_id}",
                                headers=auth)
        assert revoked.status_code == 200, revoked.get_json()
        driver.get(f"{server}/auditor")
        assert wait_for(driver, "#refused").text == "Your access was withdrawn"
        assert "SOC 2 Type II" not in driver.page_source
        driver.get(f"{server}/auditor/findings")  # and the cookie is gone for good
        assert wait_for(driver, "#refused").get_attribute("data-reason") == "no_session"
