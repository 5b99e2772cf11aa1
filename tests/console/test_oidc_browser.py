"""Sign-in through an OIDC provider in a real Chromium: the console's "Sign in with your identity
provider" button, the provider's own page (oidc-provider-mock on loopback), and back into the
console, against the app served over HTTP."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from api import create_app
from tests.conftest import serve
from tests.console.browser import chromium
from tests.console.test_oidc import oidc_provider, oidc_settings

pytestmark = pytest.mark.slow
WAIT = 30


def test_sign_in_with_the_identity_provider_and_a_refusal(settings, db):
    with oidc_provider() as provider:
        provider.user("alice", account="acme")
        provider.user("bob")  # the provider names no account for bob
        app = create_app(oidc_settings(settings, provider))
        with serve(app) as server, chromium() as driver:
            # The callback must come back to this server: its address is the public one.
            app.config["SETTINGS"] = app.config["SETTINGS"].model_copy(
                update={"public_base_url": server})
            wait = WebDriverWait(driver, WAIT)

            def sign_in_as(sub: str) -> None:
                driver.get(f"{server}/console/login")
                wait.until(ec.element_to_be_clickable((By.ID, "sign-in-idp"))).click()
                field = wait.until(ec.presence_of_element_located((By.NAME, "sub")))
                assert urlparse(driver.current_url).netloc == urlparse(provider.url).netloc
                field.send_keys(sub)
                driver.find_element(By.XPATH, "//button[text()='Authorize']").click()

            sign_in_as("bob")
            error = wait.until(ec.presence_of_element_located((By.ID, "sign-in-error")))
            assert "did not say which account you belong to" in error.text
            assert driver.get_cookie("evidence_console") is None

            sign_in_as("alice")
            wait.until(ec.presence_of_element_located((By.ID, "framework-soc2")))
            assert urlparse(driver.current_url).path == "/console"
            assert "code=" not in driver.current_url  # the callback's query left the bar
            assert "acme" in driver.find_element(By.TAG_NAME, "body").text
            cookie = driver.get_cookie("evidence_console")
            assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

            # Signing out ends it: the console asks for a sign-in again.
            driver.find_element(By.CSS_SELECTOR, ".signout button").click()
            notice = wait.until(ec.presence_of_element_located((By.ID, "sign-in-notice")))
            assert "signed out" in notice.text
            driver.get(f"{server}/console/controls")
            assert urlparse(driver.current_url).path == "/console/login"
