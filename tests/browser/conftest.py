"""Browser tests: a real Chromium, driven through Playwright, against `live_server`.

Every test in this directory is marked `browser` (`pytest -m "not browser"` leaves
them out). They use Debian's Chromium, never a Playwright-downloaded one: the machines
that run the suite have no internet access, so `playwright install` is not an option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TypeAlias

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from apps.accounts.models import User
from tests.factories import TEST_PASSWORD

BROWSER_DIR = Path(__file__).resolve().parent
SCREENSHOT_DIR = BROWSER_DIR.parents[1] / "var" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    # Containers and CI runners have no user namespaces for Chromium's sandbox.
    "--no-sandbox",
    "--disable-gpu",
    # No traffic of the browser's own: the tests must not depend on (or wait for)
    # the internet, and a stalled update check must not slow a page down.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
VIEWPORTS: dict[str, ViewportSize] = {"desktop": DESKTOP, "phone": PHONE}
# The zone the browser reports to the page (Intl.DateTimeFormat). Not UTC, so a test
# can tell the welcome page's time-zone detection from the server's default.
BROWSER_TIME_ZONE = "Europe/Paris"
TIMEOUT_MS = 10_000

LogIn: TypeAlias = Callable[..., None]
Screenshot: TypeAlias = Callable[[Page, str], list[Path]]

_call_report = pytest.StashKey[pytest.TestReport]()

# `expect()` has its own default (5 s), separate from the page's.
expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest's hook sees every collected item, not only this directory's.
    browser_mark = pytest.mark.browser
    for item in items:
        if item.path.is_relative_to(BROWSER_DIR):
            item.add_marker(browser_mark)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Kept so that `page` can take a screenshot of a test that failed.
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_call_report] = report
    return report


# Package scope, not session scope: the sync API keeps its asyncio loop marked as
# running in this thread for as long as Playwright is started, so every test that ran
# after it in the same session would meet a "running" loop (async_to_sync refuses to
# work; Django's ORM raises SynchronousOnlyOperation). Stopping Playwright when this
# package is done confines that to the browser tests; Chromium still starts only once.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM}: apt-get install chromium "
            '(or leave them out with -m "not browser").',
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch:
        # Django refuses ORM calls from a thread with a running event loop, taking
        # them for blocking calls inside async code. Here the loop is Playwright's,
        # parked while the test (and pytest-django's flush) talks to the database
        # synchronously, so the check is a false alarm. Only while Playwright runs.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as started:
            yield started


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture
def page(
    browser: Browser,
    live_server: LiveServer,
    transactional_db: None,
    request: pytest.FixtureRequest,
) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies), at desktop size, whose relative
    URLs go to `live_server`. The live server answers from its own thread and
    connection, so the test needs committed data: hence `transactional_db`.

    The test fails when the page raises an uncaught JavaScript error; a failed test
    leaves a screenshot in var/screenshots/."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport=DESKTOP,
        timezone_id=BROWSER_TIME_ZONE,
        locale="en-GB",
    )
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()
    script_errors: list[str] = []
    new_page.on("pageerror", lambda error: script_errors.append(f"{new_page.url}: {error}"))
    yield new_page
    report = request.node.stash.get(_call_report, None)
    if report is not None and report.failed:
        new_page.screenshot(path=_screenshot_path(request.node.name, "failure"), full_page=True)
    context.close()
    if script_errors:
        pytest.fail("JavaScript errors on the page:\n" + "\n".join(script_errors), pytrace=False)


@pytest.fixture
def log_in() -> LogIn:
    """`log_in(page, user)`: sign in through the real login form, as a person would."""

    def log_in_with_form(page: Page, user: User, password: str = TEST_PASSWORD) -> None:
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(password)
        page.locator("main").get_by_role("button", name="Sign In").click()
        # Fail here, not three steps later, when the login did not take.
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

    return log_in_with_form


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """`screenshot(page, label)`: save full-page PNGs of the page at desktop and phone
    widths, named after the test, in var/screenshots/ for people to review. Returns
    the paths. The page is left at the size it had."""

    def take(page: Page, label: str) -> list[Path]:
        original = page.viewport_size or DESKTOP
        paths = []
        try:
            for size_name, size in VIEWPORTS.items():
                page.set_viewport_size(size)
                path = _screenshot_path(request.node.name, f"{label}-{size_name}")
                page.screenshot(path=path, full_page=True)
                paths.append(path)
        finally:
            page.set_viewport_size(original)
        return paths

    return take


def _screenshot_path(test_name: str, label: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    # Parametrized names carry brackets and slashes ("test_x[/accounts/login/]").
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test_name}--{label}").strip("-")
    return SCREENSHOT_DIR / f"{safe}.png"
