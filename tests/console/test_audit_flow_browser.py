"""A whole audit in a real Chromium, customer and auditor, against a real mail worker: the
customer signs in by login link, creates an audit and invites an auditor from the console; the
invitation travels through the outbound mail path (a Celery worker delivering to a local SMTP
server); the auditor opens the magic link from that mail, marks a control and requests evidence;
the customer answers by uploading a file (through the push path, onto moto's S3); the auditor
files a finding and completes the audit; the customer downloads the report and it holds the
finding and the uploaded file's SHA-256. Draws docs/screenshots/console-audit.png."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from cli.wiring import api_app
from engine.settings import Settings
from tests.audits.conftest import Inbox
from tests.conftest import running_worker, serve, settings_env
from tests.console.browser import chromium, page_width, screenshot
from tests.console.conftest import login_link
from tests.emulators import free_port

pytestmark = pytest.mark.slow
WAIT = 30
BUCKET = "console-audit-flow"
BASE = "http://evidence.example.test"  # what mailed links carry; the test opens their paths
LINK = re.compile(r"(\S+/auditor/accept#token=[A-Za-z0-9_-]+)")


@pytest.fixture
def flow(settings: Settings, moto_endpoint: str, tmp_path: Path,
         db: None) -> Iterator[tuple[Settings, Inbox]]:
    """Settings with mail (a local SMTP server, a worker of their own key prefix delivering
    to it) and the evidence store on moto's S3."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    inbox, port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    changed = settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": port,
        "redis_key_prefix": f"{settings.redis_key_prefix}flow-{uuid.uuid4().hex[:6]}:",
        "public_base_url": BASE, "storage_endpoint_url": moto_endpoint,
        "storage_bucket": BUCKET, "storage_access_key_id": "testing",
        "storage_secret_access_key": SecretStr("testing-secret")})
    env = {**settings_env(changed), "EVIDENCE_SMTP_HOST": "127.0.0.1",
           "EVIDENCE_SMTP_PORT": str(port), "EVIDENCE_PUBLIC_BASE_URL": BASE}
    try:
        with running_worker(env, tmp_path / "worker.log", queues="default", concurrency=1):
            yield changed, inbox
    finally:
        smtp.stop()


def wait_for(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def click(driver: WebDriver, button_text: str, *, loads: bool = True) -> None:
    """Press a button; when it sends a form that answers a page, wait for that page."""
    driver.execute_script("window.beforeSubmit = true")  # a new page does not have it
    driver.find_element(By.XPATH, f"//button[normalize-space()='{button_text}']").click()
    if loads:
        WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script("return document.readyState === 'complete' "
                                       "&& !window.beforeSubmit"))


def test_a_whole_audit_from_the_console_and_the_portal(flow, tmp_path):
    cfg, inbox = flow
    evidence = tmp_path / "access-review-q4.csv"
    evidence.write_bytes(b"user,reviewed_by,reviewed_on\nalice,bob,2026-11-30\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    with serve(api_app(cfg)) as server, chromium() as driver:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
        # The customer signs in and creates the audit from the Audits page.
        driver.get(server + login_link(cfg, "acme").removeprefix(BASE))
        wait_for(driver, "#main")
        driver.find_element(By.LINK_TEXT, "Audits").click()
        wait_for(driver, "#new-audit").click()
        wait_for(driver, "#title").send_keys("SOC 2 Type II 2026")
        driver.find_element(By.CSS_SELECTOR, "label[for='type-type_ii']").click()
        driver.execute_script(  # a date field's typing order follows the browser's locale
            "document.getElementById('period_start').value = '2026-01-01';"
            "document.getElementById('period_end').value = '2026-07-01';")
        click(driver, "Create the audit")
        assert "created as a draft" in wait_for(driver, "#done").text
        audit_path = driver.current_url.split("?")[0].removeprefix(server)
        click(driver, "Start the audit")
        assert "In progress" in wait_for(driver, "#done ~ #audit-facts #audit-status").text
        assert page_width(driver, 390) <= 390

        # Invite the auditor: a bad address is answered beside the field, then the mail goes.
        driver.find_element(By.ID, "email").send_keys("auditor at firm")
        driver.find_element(By.ID, "name").send_keys("Jane Smith")
        click(driver, "Send the invitation")
        assert "like auditor@firm.com" in wait_for(driver, "#email-error").text
        field = driver.find_element(By.ID, "email")
        field.clear()
        field.send_keys("auditor@firm.com")
        click(driver, "Send the invitation")
        assert "on its way" in wait_for(driver, "#done").text
        mail = inbox.wait_for("auditor@firm.com", timeout=60)
        link = LINK.search(mail.get_content())
        assert link, mail.get_content()

        # The auditor opens the magic link, marks a control and asks for evidence.
        driver.get(server + link.group(1).removeprefix(BASE))
        wait_for(driver, "#audit-facts")
        assert "SOC 2 Type II 2026" in driver.find_element(By.TAG_NAME, "h1").text
        driver.find_element(By.CSS_SELECTOR, "a[href='/auditor/controls/CC6.1']").click()
        wait_for(driver, "label[for='status-needs_evidence']").click()
        click(driver, "Save the review")
        assert "Your review is saved" in wait_for(driver, "#done").text
        driver.find_element(By.ID, "description").send_keys("The Q4 access review export")
        Select(driver.find_element(By.ID, "priority")).select_by_value("high")
        click(driver, "Send the request")
        assert "request was sent" in wait_for(driver, "#done").text

        # The customer answers by uploading the file.
        driver.get(server + audit_path)
        requests = wait_for(driver, "#requests + .requests")
        assert "The Q4 access review export" in requests.text
        assert "Waiting for your answer" in requests.text
        requests.find_element(By.PARTIAL_LINK_TEXT, "Answer this request").click()
        wait_for(driver, "#file").send_keys(str(evidence))
        driver.find_element(By.ID, "upload-note").send_keys("Signed off by the CISO")
        click(driver, "Upload and answer")
        assert "answer is sent" in wait_for(driver, "#done").text
        digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
        answered = driver.find_element(By.CSS_SELECTOR, "#requests + .requests").text
        assert "Answered" in answered and digest in answered and "(verified)" in answered
        click(driver, "Freeze the evidence and start the review")
        wait_for(driver, "#done")
        click(driver, "Move to findings")
        assert "Findings" in wait_for(driver, "#done ~ #audit-facts #audit-status").text

        # The auditor files a finding and completes the audit.
        driver.get(f"{server}/auditor/findings?control=CC6.1")
        Select(wait_for(driver, "#severity")).select_by_value("major")
        driver.find_element(By.ID, "title").send_keys("Access review signed late")
        driver.find_element(By.ID, "description").send_keys("Q4 review signed 30 days late")
        click(driver, "File the finding")
        assert "The finding is filed" in wait_for(driver, "#done").text
        driver.get(f"{server}/auditor/complete")
        wait_for(driver, "label[for='confirm']").click()
        click(driver, "Complete the audit")
        assert "The audit is complete" in wait_for(driver, "#done").text

        # The customer reads the finding and downloads the report.
        driver.get(server + audit_path)
        assert "Complete" in wait_for(driver, "#audit-status").text
        assert "Access review signed late" in driver.find_element(By.ID, "finding-list").text
        activity = driver.find_element(By.ID, "activity").text
        assert "Jane Smith (auditor) moved the audit to Complete" in activity
        assert "answered an evidence request on CC6.1" in activity
        assert page_width(driver, 390) <= 390
        driver.execute_script("window.scrollTo(0, 0)")
        screenshot(driver, "console-audit", 1280, max_height=2600)
        click(driver, "Download the report", loads=False)
        report = downloads / f"{audit_path.rsplit('/', 1)[1]}-report.md"
        WebDriverWait(driver, WAIT).until(lambda _: report.exists())
        text = report.read_text()
        assert "SOC 2 Type II 2026" in text and "Access review signed late" in text
        assert digest in text
