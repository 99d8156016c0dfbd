"""Browser journeys: Playwright driving Debian's Chromium against a live server (pytest-django's live_server).

Each test gets a fresh browser context (its own cookies) from one browser per session, and leaves a
screenshot of its last page in $E2E_ARTIFACTS (default ci-artifacts/e2e/). Without Chromium or the
playwright package the tests skip cleanly. Selectors are stable ids, roles and names, never layout.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 15_000
PASSWORD = "demo-pass"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("E2E_ARTIFACTS") or ROOT / "ci-artifacts" / "e2e")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="package")
def browser():
    """One browser for the e2e package, closed when the package is done: Playwright's sync API runs an event
    loop in this thread while it lives, which the rest of the suite must not inherit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.skip("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (make test installs Debian's chromium)")
    # While the loop runs, the ORM calls the tests make between browser steps are still synchronous, so
    # Django's async guard must not trip on them; the flag is lifted again with the browser.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            pg.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)
        finally:
            context.close()


@pytest.fixture
def new_page(browser):
    """A second, independent browser session (another user) within the same test."""
    contexts = []

    def make():
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def login(page, base_url: str, username: str, password: str = PASSWORD, *, next_url: str = "") -> None:
    """Log in through the login page, as a person would, and pass the second factor where the user must (the code
    of the user's demo TOTP device, as the person would read it off their app). The password is (re)set first: demo
    users are seeded with a hash cached per process, which other modules' fixtures may have made under other
    hasher settings."""
    from django.contrib.auth import get_user_model

    from loanservice import second_factor

    user = get_user_model().objects.get(username=username)
    user.set_password(password)
    user.save(update_fields=["password"])
    device = second_factor.demo_device_ensure(user) if second_factor.second_factor_required(user) else None
    page.goto(f"{base_url}/login/" + (f"?next={next_url}" if next_url else ""))
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    if device is not None and "/login/second-factor/" in page.url:
        page.locator("#id_code").fill(second_factor.current_code(device, wait=True))
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
    assert "/login/" not in page.url, f"login failed for {username}: {page.locator('main').inner_text()[:300]}"


def submit_form(page, locator) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        locator.click()
