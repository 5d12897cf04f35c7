"""Browser tests: Debian's chromium, headless, driven by Selenium through chromedriver, against the local stack with
the example web app (webapp/) served at its configured frontend origin.

The stack here is the one ``make dev`` runs, with one difference: the frontend origin is a free port (and the
Checkout/portal URLs point at it), so a developer's ``make dev`` on 5173 never collides. Each test gets a fresh
user and a fresh browser profile; on failure it saves a screenshot and the page's HTML to tmp/artifacts/.
"""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import LocalStack, StackConfig
from devstack.template import ROOT

ARTIFACTS = ROOT / "tmp" / "artifacts"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "apt-get install chromium chromium-driver (Debian), or make browsers"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    chromium, driver = _binary(CHROMIUM), _binary(("chromedriver",))
    if chromium is None or driver is None:
        pytest.fail(f"the browser tests need chromium and chromedriver on PATH: {INSTALL_HINT}")
    return chromium, driver


@pytest.fixture(scope="session")
def web_stack() -> Iterator[LocalStack]:
    port = _free_port()
    origin = f"http://localhost:{port}"
    overrides = {
        "AllowedOrigins": origin,
        "CheckoutSuccessUrl": f"{origin}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        "CheckoutCancelUrl": f"{origin}/billing/cancel",
        "PortalReturnUrl": f"{origin}/billing",
    }
    stack = LocalStack(
        StackConfig(
            parameter_overrides=overrides,
            state_dir=None,
            webhook_retry_base_seconds=0.5,
            serve_webapp=True,
            # Cold starts in the background while the browser starts, not inside the first journey.
            prewarm=True,
        )
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def chromium(browser_binaries: tuple[str, str]) -> Iterator[Any]:
    """One headless Chromium for the session (a start costs about a second); each test clears what it left."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_binaries
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Any, web_stack: LocalStack, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's browser with a clean slate (no token, no cookies, an empty console log)."""
    chromium.get(web_stack.webapp_url + "/sign-in")
    chromium.execute_script("sessionStorage.clear(); localStorage.clear();")
    chromium.delete_all_cookies()
    chromium.get_log("browser")
    yield chromium
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = ARTIFACTS / request.node.name
        chromium.save_screenshot(str(stem.with_suffix(".png")))
        stem.with_suffix(".html").write_text(chromium.page_source)
        stem.with_suffix(".log.json").write_text(json.dumps(chromium.get_log("browser"), indent=1))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so the browser fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def user_id() -> str:
    return f"user-web-{uuid.uuid4().hex[:10]}"


def artifacts_dir() -> Path:
    return ARTIFACTS
