"""A meeting poll in real browsers: the mentor creates it from proposed slots and
publishes it, one invitee answers on the site and another through the personal link in
their email (no password), the mentor reads the grid and finalises. Screenshots of the
grid at desktop and phone widths go to var/screenshots/ for review."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from apps.appointments.models import Appointment
from apps.mentoring.models import MeetingPoll, Vote
from tests.browser.conftest import BROWSER_TIME_ZONE, DESKTOP, PHONE, TIMEOUT_MS, LogIn, Screenshot
from tests.browser.test_onboarding import UNLABELLED_FIELDS_JS
from tests.mentoring import conftest as mentoring_conftest
from tests.mentoring.conftest import Circle
from tests.mentoring.helpers import monday, personal_links

# The circle of the mentoring tests (an assignment, so ruff sees a fixture, not an
# unused import).
circle = mentoring_conftest.circle

NewPage: TypeAlias = Callable[[], Page]


@pytest.fixture
def new_page(browser: Browser, live_server: LiveServer) -> Iterator[NewPage]:
    """Another person's browser: a fresh context with its own cookies."""
    contexts: list[BrowserContext] = []

    def make() -> Page:
        context = browser.new_context(
            base_url=live_server.url,
            viewport=DESKTOP,
            timezone_id=BROWSER_TIME_ZONE,
            locale="en-GB",
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _answer(page: Page, answers: list[str]) -> None:
    options = page.locator("fieldset.vote-option")
    expect(options.first).to_be_visible()
    for index in range(options.count()):
        answer = answers[index] if index < len(answers) else "No"
        options.nth(index).get_by_label(answer, exact=True).check()
    page.get_by_role("button", name="Save my answers").click()
    expect(page.get_by_role("status").filter(has_text="Your answers are saved")).to_be_visible()


def test_mentor_creates_a_poll_two_invitees_vote_and_the_mentor_finalises(
    page: Page,
    new_page: NewPage,
    circle: Circle,
    log_in: LogIn,
    screenshot: Screenshot,
    mailoutbox: list[Any],
) -> None:
    # The mentor: from the home page to a draft with proposed times.
    log_in(page, circle.mentor)
    page.goto("/")
    page.get_by_role("link", name="Create a poll with proposed meeting slots").click()
    expect(
        page.get_by_role("heading", name="Create a poll with proposed meeting slots")
    ).to_be_visible()
    assert page.evaluate(UNLABELLED_FIELDS_JS) == []
    page.get_by_label("Group", exact=True).select_option(label="Data circle")
    page.get_by_label("Title", exact=True).fill("Spring check-in")
    page.get_by_label("Length").select_option(label="1 hour")
    day = monday()
    page.get_by_label("First day").fill(day.isoformat())
    page.get_by_label("Last day").fill((day + dt.timedelta(days=4)).isoformat())
    page.get_by_role("button", name="Propose times").click()
    expect(page.get_by_text("2 of 3 invitees have connected calendars.")).to_be_visible()
    expect(page.get_by_text("Sam Smith has not connected a calendar")).to_be_visible()
    proposed = page.locator("ol.option-list > li")
    expect(proposed.first).to_be_visible()
    count = proposed.count()
    assert 1 < count <= 12
    # The mentor drops the last proposal before publishing.
    proposed.last.get_by_role("button", name=re.compile("^Remove")).click()
    expect(page.locator("ol.option-list > li")).to_have_count(count - 1)
    screenshot(page, "draft")
    page.get_by_role("button", name="Publish and invite 3 people").click()
    expect(page.get_by_text("Published.")).to_be_visible()
    poll = MeetingPoll.objects.get()
    options = list(poll.options.order_by("start"))

    # Ana answers on the site, signed in.
    ana = new_page()
    log_in(ana, circle.ana)
    ana.goto("/")
    ana.get_by_role("link", name="Spring check-in").first.click()
    expect(ana.get_by_role("heading", name="Can you come?")).to_be_visible()
    assert ana.evaluate(UNLABELLED_FIELDS_JS) == []
    _answer(ana, ["Yes", "If need be"])

    # Ben answers through his personal link, without signing in.
    links = personal_links(mailoutbox)
    assert set(links) == {"ana@example.org", "ben@example.org", "sam@example.org"}
    ben = new_page()
    ben.goto(links["ben@example.org"])
    expect(ben.get_by_text("America/New_York").first).to_be_visible()
    _answer(ben, ["Yes", "No"])
    # He changes his mind: answers can change until the poll closes.
    _answer(ben, ["Yes", "Yes"])
    assert Vote.objects.filter(voter=circle.ben, answer="yes").count() == 2

    # The mentor reads the grid: options across, invitees down, the heat row below.
    page.reload()
    grid = page.locator("table.poll-grid")
    expect(grid).to_be_visible()
    heat = grid.locator("tr.heat td")
    expect(heat).to_have_count(len(options))
    expect(heat.first).to_contain_text("2/3")
    expect(heat.nth(1)).to_contain_text("2/3")
    expect(heat.nth(1)).to_contain_text("1 if need be")
    screenshot(page, "grid")
    page.set_viewport_size(PHONE)
    # On a phone the names stay in view while the options scroll sideways.
    expect(grid.locator("tbody th.who").first).to_be_visible()
    page.set_viewport_size(DESKTOP)

    # The mentor finalises the first option.
    choices = page.get_by_role("group", name="The time you choose")
    choices.get_by_role("radio").first.check()
    page.get_by_role("button", name="Schedule this meeting").click()
    expect(page.get_by_role("heading", name="Spring check-in")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/appointments/\d+/$"))
    appointment = Appointment.objects.get()
    assert appointment.start == options[0].start
    assert set(appointment.attendees.all()) == {circle.ana, circle.ben, circle.sam}

    # Ana sees which time won.
    ana.reload()
    expect(ana.get_by_text("Scheduled:")).to_be_visible()
    screenshot(ana, "finalised")
