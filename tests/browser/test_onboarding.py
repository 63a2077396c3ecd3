"""Sign-up and profile completion, in a real browser."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.accounts.models import User
from tests.browser.conftest import BROWSER_TIME_ZONE, LogIn, Screenshot
from tests.factories import TEST_PASSWORD, UserFactory

# Every input a person fills in, that has no visible label naming it. `el.labels` is
# the browser's own association: <label for=id> and a wrapping <label> alike.
UNLABELLED_FIELDS_JS = """
() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter((el) => !["hidden", "submit", "button", "reset", "image"].includes(el.type))
  .filter((el) => el.name !== "csrfmiddlewaretoken")
  .filter((el) => el.checkVisibility({visibilityProperty: true, opacityProperty: true}))
  .filter((el) => !Array.from(el.labels || []).some(
    (label) => label.checkVisibility({visibilityProperty: true, opacityProperty: true})
      && label.textContent.trim() !== ""))
  .map((el) => el.outerHTML)
"""


def test_new_person_signs_up_and_completes_their_profile(
    page: Page, screenshot: Screenshot
) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("aiko@example.org")
    page.get_by_label(re.compile(r"^Password:?$")).fill(TEST_PASSWORD)
    page.get_by_label("Password (again)").fill(TEST_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign Up").click()

    # The adapter sends a first login to profile completion, not to the home page.
    expect(page).to_have_url(re.compile(r"/welcome/$"))
    expect(page.get_by_role("heading", name="Welcome to Convene")).to_be_visible()
    time_zone = page.get_by_label("Time zone")
    # The page's script offered the zone the browser reports instead of UTC.
    expect(time_zone).to_have_value(BROWSER_TIME_ZONE)
    screenshot(page, "welcome")

    page.get_by_label("Your name").fill("Aiko Tanaka")
    time_zone.clear()
    time_zone.press_sequentially("Asia/Tokyo")
    page.get_by_role("button", name="Continue").click()

    # The last step offers a calendar; without a programme there is nothing to connect.
    expect(page).to_have_url(re.compile(r"/welcome/calendar/$"))
    expect(page.get_by_role("status")).to_contain_text("Your profile is complete")
    expect(page.get_by_text("Your calendar is not connected")).to_be_visible()
    page.get_by_role("link", name="Skip for now").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Hello, Aiko")).to_be_visible()
    expect(page.get_by_role("contentinfo")).to_contain_text("Times are shown in Asia/Tokyo")
    screenshot(page, "home")

    user = User.objects.get(email="aiko@example.org")
    assert user.full_name == "Aiko Tanaka"
    assert user.time_zone == "Asia/Tokyo"
    assert user.profile_completed_at is not None
    assert timezone.now() - user.profile_completed_at < dt.timedelta(minutes=5)


def test_profile_rejects_an_unknown_time_zone_and_keeps_what_was_typed(
    page: Page, log_in: LogIn
) -> None:
    user = UserFactory(time_zone="Europe/London")
    log_in(page, user)
    page.goto("/profile/")

    time_zone = page.get_by_label("Time zone")
    time_zone.fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Save profile").click()

    expect(page.get_by_role("alert")).to_have_text(
        "Mars/Olympus_Mons is not a time zone we know. Pick one from the list, "
        "such as Europe/London or America/New_York."
    )
    expect(time_zone).to_have_value("Mars/Olympus_Mons")
    expect(time_zone).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("status")).to_have_count(0)  # no "Your profile is saved."
    user.refresh_from_db()
    assert user.time_zone == "Europe/London"


def test_profile_time_zone_error_is_read_out_with_the_field(page: Page, log_in: LogIn) -> None:
    log_in(page, UserFactory())
    page.goto("/profile/")
    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("alert")).to_be_visible()

    # A screen reader announces the field's description when it gets focus.
    expect(page.get_by_label("Time zone")).to_have_accessible_description(
        re.compile("is not a time zone we know"),
        timeout=1_000,  # The page has loaded: waiting longer cannot change the answer.
    )


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        ("/accounts/signup/", False),
        ("/accounts/login/", False),
        ("/welcome/", True),
        ("/profile/", True),
    ],
)
def test_every_visible_field_has_a_visible_label(
    page: Page, log_in: LogIn, path: str, signed_in: bool
) -> None:
    if signed_in:
        log_in(page, UserFactory())
    page.goto(path)
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    # The check below passes on a page without fields, so make sure there are some.
    expect(page.locator("main form input:visible").first).to_be_visible()

    assert page.evaluate(UNLABELLED_FIELDS_JS) == []
