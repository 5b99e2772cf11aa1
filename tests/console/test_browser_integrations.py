"""The Integrations pages in a real Chromium: connect AWS (moto) through the generated form,
correct a refused field, press Sync now and watch the run finish live with a real worker,
then disconnect by keyboard after the confirmation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from connectors.aws.emulated import seed_estate
from tests.conftest import serve
from tests.console.browser import chromium, page_width, screenshot
from tests.console.conftest import login_link
from tests.console.test_browser import WAIT, open_link, wait_for

pytestmark = pytest.mark.slow


def fill(driver: WebDriver, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_connect_aws_through_the_form_and_watch_the_sync_finish_live(
        client, worker, aws_endpoint, settings):
    creds = seed_estate(aws_endpoint).credentials()
    with serve(client.application) as server, chromium() as driver:
        open_link(driver, server, login_link(settings, "acme"), settings)
        wait_for(driver, "#framework-soc2")
        driver.find_element(By.LINK_TEXT, "Integrations").click()
        Select(wait_for(driver, "#filter-category")).select_by_value("cloud")
        driver.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
        WebDriverWait(driver, WAIT).until(lambda d: "category=cloud" in d.current_url)
        assert parse_qs(urlparse(driver.current_url).query) == {"category": ["cloud"]}
        assert not driver.find_elements(By.ID, "integration-okta")
        assert "Not connected" in text_of(driver, "#integration-aws")
        driver.find_element(By.CSS_SELECTOR, "#integration-aws a.button").click()

        # A refused field: the message beside it, the secret not echoed, nothing connected.
        wait_for(driver, "#connect-submit")
        secret = driver.find_element(By.NAME, "credentials.secret_access_key")
        assert secret.get_attribute("type") == "password"
        fill(driver, "credentials.access_key_id", "not-an-access-key")
        fill(driver, "credentials.secret_access_key", creds["secret_access_key"])
        fill(driver, "credentials.regions", "\n".join(creds["regions"]))
        fill(driver, "credentials.endpoint_url", creds["endpoint_url"])
        driver.find_element(By.ID, "connect-submit").click()
        error = wait_for(driver, "#field-credentials-access_key_id-error")
        assert error.is_displayed() and "Nothing was saved" in text_of(driver, "#connect-errors")
        assert driver.find_element(By.NAME, "credentials.secret_access_key") \
            .get_attribute("value") == ""
        assert creds["secret_access_key"] not in driver.page_source
        assert driver.find_element(By.NAME, "credentials.endpoint_url") \
            .get_attribute("value") == creds["endpoint_url"]
        screenshot(driver, "console-connect-refused", 1280)
        assert page_width(driver, 390) <= 390

        fill(driver, "credentials.access_key_id", creds["access_key_id"])
        fill(driver, "credentials.secret_access_key", creds["secret_access_key"])
        driver.find_element(By.ID, "connect-submit").click()

        # The connection is verified and its first sync runs, shown live on this page.
        live = wait_for(driver, "#live")
        WebDriverWait(driver, WAIT * 4).until(
            lambda d: "Sync succeeded" in text_of(d, "#run-summary"))
        assert "Active" in text_of(driver, "#connection-badge")
        first = driver.find_element(By.ID, "run-status").get_attribute("data-run")

        # Sync now: a new run, followed without reloading the page until it succeeds.
        driver.execute_script("window.stillThisPage = true")
        driver.execute_script("document.getElementById('live').setAttribute('data-seen', '')")
        driver.find_element(By.ID, "sync-now").click()
        WebDriverWait(driver, WAIT * 4).until(
            lambda d: d.find_element(By.ID, "run-status").get_attribute("data-run") != first
            and "Sync succeeded" in text_of(d, "#run-summary"))
        assert driver.execute_script("return window.stillThisPage") is True
        summary = text_of(driver, "#run-summary")
        assert "resource result" in summary, summary
        seen = str(live.get_attribute("data-seen")).split()
        assert seen[-1] == "succeeded" and ("queued" in seen or "running" in seen), seen
        assert "Succeeded" in text_of(driver, "#run-badge")  # an icon and words
        assert live.find_element(By.CSS_SELECTOR, "[aria-live=polite]")
        screenshot(driver, "console-integration-aws", 1280)
        assert page_width(driver, 390) <= 390

        driver.find_element(By.LINK_TEXT, "Integrations").click()
        card = wait_for(driver, "#integration-aws")
        assert "Active" in card.text and "resource result" in card.text
        screenshot(driver, "console-integrations", 1280)
        assert page_width(driver, 390) <= 390

        # Disconnect by keyboard, after the confirmation.
        driver.find_element(By.CSS_SELECTOR, "#integration-aws a.button").send_keys(Keys.ENTER)
        wait_for(driver, "#disconnect-link").send_keys(Keys.ENTER)
        confirm = wait_for(driver, "#confirm-disconnect")
        assert "kept as history" in driver.find_element(By.TAG_NAME, "main").text
        confirm.send_keys(Keys.ENTER)
        notice = wait_for(driver, "#integrations-notice")
        assert "Amazon Web Services is disconnected" in notice.text
        assert "Not connected" in text_of(driver, "#integration-aws")
