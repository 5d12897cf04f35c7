"""What a user does in the browser, in the example app and on the emulator's hosted pages, in a few verbs.

Waits are explicit (WebDriverWait on what the user would see); the one pause is between reloads (reload_until).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from devstack.stack import LocalStack

WAIT_SECONDS = 20


class Browser:
    def __init__(self, driver: Any, stack: LocalStack) -> None:
        self.driver = driver
        self.stack = stack
        self.app = stack.webapp_url
        self.user_id = ""
        # Console errors a journey provokes on purpose (a refusal the app shows is still a failed load to Chrome).
        self.expected_console: list[str] = []

    # ---- waiting and reading ------------------------------------------------------------------------------

    def wait(self, seconds: float = WAIT_SECONDS) -> WebDriverWait[Any]:
        return WebDriverWait(self.driver, seconds)

    def element(self, css: str, seconds: float = WAIT_SECONDS) -> Any:
        return self.wait(seconds).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def text_of(self, css: str) -> str:
        return str(self.element(css).text)

    def wait_for_text(self, css: str, pattern: str, seconds: float = WAIT_SECONDS) -> str:
        """Waits until the element's text matches ``pattern`` (a regex); returns the text."""

        def matches(driver: Any) -> str | bool:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            text = found[0].text if found else ""
            return text if re.search(pattern, text) else False

        try:
            return str(self.wait(seconds).until(matches))
        except Exception as exc:
            found = self.driver.find_elements(By.CSS_SELECTOR, css)
            raise AssertionError(
                f"{css} never matched {pattern!r}; it reads {found[0].text if found else None!r} at "
                f"{self.driver.current_url}"
            ) from exc

    def reload_until(self, css: str, pattern: str, seconds: float = WAIT_SECONDS) -> str:
        """Reloads the page until the element's text matches ``pattern``: for what a later Stripe event brings (the
        entitlements may arrive after access was granted; a page shows the state it loaded)."""
        deadline = time.monotonic() + seconds
        while True:
            self.wait().until(lambda d: "Loading" not in d.find_element(By.TAG_NAME, "main").text)
            found = self.driver.find_elements(By.CSS_SELECTOR, css)
            text = str(found[0].text) if found else ""
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{css} never matched {pattern!r} after reloads; it reads {text!r}")
            time.sleep(0.5)  # a reload a user might do, not a burst the rate limit would refuse
            self.driver.refresh()

    def wait_for_url(self, prefix: str, seconds: float = WAIT_SECONDS) -> str:
        self.wait(seconds).until(lambda d: d.current_url.startswith(prefix))
        return str(self.driver.current_url)

    def click(self, css: str) -> None:
        self.loaded()
        self.wait().until(ec.element_to_be_clickable((By.CSS_SELECTOR, css))).click()

    def on_app_page(self, path: str) -> None:
        """The journey ended on a page of the example app (never a refused connection) that rendered."""
        url = self.wait_for_url(self.app + path)
        assert url.startswith(self.app), url
        self.element("header .brand")
        self.wait().until(lambda d: "Loading" not in d.find_element(By.TAG_NAME, "main").text)

    # ---- the example app ------------------------------------------------------------------------------------

    def sign_in(self, user_id: str | None) -> None:
        self.driver.get(self.app + "/sign-in")
        if user_id:
            self.element("#user-id").send_keys(user_id)
        self.click("#sign-in")
        self.wait_for_url(self.app + "/pricing")
        self.wait_for_text("#who", "Signed in as")

    def subscribe(self, plan: str, seats: int | None = None) -> None:
        """Pricing page -> Subscribe -> the hosted Checkout page."""
        self.driver.get(self.app + "/pricing")
        if seats is not None:
            box = self.element(f"#quantity-{plan}")
            box.clear()
            box.send_keys(str(seats))
        self.click(f"#subscribe-{plan}")
        self.wait_for_url(self.stack.stripe_url + "/c/pay/")

    def open_portal(self) -> None:
        """The billing page's portal button -> the hosted portal (its ids may repeat the app's: wait for the URL)."""
        self.click("#portal")
        self.wait_for_url(self.stack.stripe_url + "/p/session/")
        self.element("#return")

    def open_billing(self) -> None:
        self.driver.get(self.app + "/billing")
        self.element("#status")

    def wait_until_access(self) -> str:
        """The success page waits on GET /checkout/sessions/{id} until access is granted."""
        self.wait_for_url(self.app + "/billing/success?session_id=cs_")
        return self.wait_for_text("#success-status", r"You have access to \w+", seconds=30)

    # ---- hosted pages ---------------------------------------------------------------------------------------

    def press(self, css: str) -> None:
        """A button on a hosted page (a form POST and a new page)."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.click(css)
        self.wait().until(ec.staleness_of(old))
        self.loaded()

    def loaded(self) -> None:
        """The new document finished loading (a click on a half-replaced page hits nodes of the old one)."""
        self.wait().until(lambda d: d.execute_script("return document.readyState") == "complete")

    # ---- the console ----------------------------------------------------------------------------------------

    def console_errors(self, expected: Iterable[str] = ()) -> list[dict[str, Any]]:
        """SEVERE browser log entries (script errors, failed loads) not matching an ``expected`` regex.

        A failed fetch the app handles (a 409 it shows) is still logged by Chrome as a failed resource load, so a
        journey that provokes one names it."""
        patterns = [re.compile(p) for p in expected]
        entries = self.driver.get_log("browser")
        return [e for e in entries if e["level"] == "SEVERE" and not any(p.search(e["message"]) for p in patterns)]
