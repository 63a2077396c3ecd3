"""Connecting a Google calendar, in a real browser: Convene's pages in Chromium against
`live_server`, and the stateful fake Google (tests/fakes/google.py) served over real
HTTP on 127.0.0.1, its consent page included. The browser follows every redirect
itself: Convene to Google's authorization endpoint, Google back to allauth's callback,
the callback to the calendar settings."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from apps.accounts.models import Membership, Role, User
from apps.calendars.models import BusyBlock, Calendar, CalendarAccount, PushChannel
from tests.browser.conftest import LogIn, Screenshot
from tests.calendars.oauth_flow import path_of
from tests.factories import MembershipFactory
from tests.fakes.google import FakeGoogle, serve
from tests.oauth_fakes import PUBLIC_BASE_URL, point_at_google

SETTINGS_URL = re.compile(r"/settings/calendars/$")
CONNECT_URL = re.compile(r"/settings/calendars/connect/google/$")
CONSENT_URL = re.compile(r"^http://127\.0\.0\.1:\d+/o/oauth2/v2/auth\?")
EVENTS_READ = "https://www.googleapis.com/auth/calendar.events.readonly"
# What the connect page says Convene asks for, one line per scope.
PERMISSIONS = (
    "see the list of your calendars",
    "see when you are busy (Convene never downloads titles)",
    "add, change and remove the appointments Convene creates",
)
GMAIL = "student@gmail.example"


def _in(days: int, hour: int) -> dt.datetime:
    base = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return base + dt.timedelta(days=days, hours=hour)


@pytest.fixture
def participant(transactional_db: None) -> User:
    # The programme's default (all_calendar_services) allows Google.
    membership: Membership = MembershipFactory.create(role=Role.PARTICIPANT)
    return membership.user


@pytest.fixture
def google(
    transactional_db: None, live_server: LiveServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeGoogle]:
    """tests/oauth_fakes.py's `google` for the live server: committed data (the SocialApp
    must be seen by the server's own connection), and push notifications posted over
    HTTP to the live server rather than into Django's test client."""
    fake = FakeGoogle()
    for served in serve(fake):
        # The live server runs in this process, so it sees the patched allauth too.
        point_at_google(fake, served.base_url, settings, monkeypatch)

        def to_live_server(url: str, headers: dict[str, str], body: bytes) -> int:
            assert urlsplit(url).netloc == urlsplit(PUBLIC_BASE_URL).netloc, url
            return requests.post(
                live_server.url + path_of(url), headers=headers, data=body, timeout=10
            ).status_code

        fake.deliver = to_live_server
        yield fake


def _to_consent_page(page: Page) -> None:
    """From the calendar settings to Google's consent page, through Convene's page
    that says what will be asked for."""
    page.goto("/settings/calendars/")
    page.get_by_role("link", name="Connect Google Calendar").click()

    expect(page).to_have_url(CONNECT_URL)
    expect(page.get_by_role("heading", name="Connect your Google calendar")).to_be_visible()
    expect(page.locator("ul.scope-list > li")).to_have_text(list(PERMISSIONS))
    page.get_by_role("button", name="Continue to Google Calendar").click()

    expect(page).to_have_url(CONSENT_URL)
    expect(page.get_by_text("Convene wants to access your Google Account")).to_be_visible()


def test_participant_connects_google_and_sees_its_calendar_and_busy_time(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    google: FakeGoogle,
) -> None:
    user = google.add_user(GMAIL)
    google.add_event(user.primary, start=_in(2, 9), end=_in(2, 10), summary="Dentist")
    log_in(page, participant)

    page.goto("/settings/calendars/")
    expect(page.get_by_text("Your calendar is not connected")).to_be_visible()
    _to_consent_page(page)
    screenshot(page, "consent")
    # Every calendar permission is a box, ticked; the account is the fake's user.
    boxes = page.get_by_role("checkbox")
    expect(boxes).to_have_count(len(PERMISSIONS))
    for box in boxes.all():
        expect(box).to_be_checked()
    expect(page.get_by_role("checkbox", name=EVENTS_READ)).to_be_visible()
    expect(page.get_by_label("Account")).to_have_value(GMAIL)
    page.get_by_role("button", name="Allow").click()

    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text(f"Your Google calendar ({GMAIL}) is connected.")
    card = page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=f"Google Calendar · {GMAIL}")
    )
    expect(card).to_be_visible()
    # The first sync ran after the callback's commit (Celery is eager in tests).
    expect(card.get_by_text("Last synced")).to_be_visible()
    expect(card.get_by_role("columnheader", name="Conflicts")).to_be_visible()
    expect(card.get_by_role("columnheader", name="Appointments")).to_be_visible()
    expect(card.get_by_role("rowheader", name=re.compile(rf"^{re.escape(GMAIL)}"))).to_be_visible()
    expect(card.get_by_label(f"Check {GMAIL} for conflicts")).to_be_checked()
    expect(card.get_by_label(f"Add appointments to {GMAIL}")).to_be_checked()
    expect(page.get_by_text("Your calendar is not connected")).to_have_count(0)
    screenshot(page, "connected")

    account = CalendarAccount.objects.get(owner=participant)
    assert (account.provider, account.identity, account.status) == (
        "google",
        GMAIL,
        CalendarAccount.Status.ACTIVE,
    )
    assert account.social_account is not None
    assert account.social_account.user == participant
    calendar = Calendar.objects.get(account=account)
    assert (calendar.external_id, calendar.is_primary) == (GMAIL, True)
    assert (calendar.check_conflicts, calendar.is_write_target) == (True, True)
    assert list(BusyBlock.objects.filter(calendar=calendar).values_list("start", "end")) == [
        (_in(2, 9), _in(2, 10))
    ]
    # Busy time only: the event's title is not kept.
    assert "Dentist" not in str(list(BusyBlock.objects.values()))

    # Real-time updates: Google's notification reaches the live server over HTTP, and
    # the new busy time is synced without the person doing anything.
    channel = PushChannel.objects.get(calendar=calendar)
    assert google.channels[channel.channel_id].address == (
        f"{PUBLIC_BASE_URL}/calendars/push/google/"
    )
    google.add_event(user.primary, start=_in(3, 14), end=_in(3, 15))
    assert google.notify(user.email) == [200]
    assert BusyBlock.objects.filter(calendar=calendar, start=_in(3, 14)).exists()


def test_an_unticked_permission_is_named_with_a_way_to_try_again(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    google: FakeGoogle,
) -> None:
    google.add_user(GMAIL)
    log_in(page, participant)

    _to_consent_page(page)
    page.get_by_role("checkbox", name=EVENTS_READ).uncheck()
    expect(page.get_by_role("checkbox", name=EVENTS_READ)).not_to_be_checked()
    screenshot(page, "consent-unticked")
    page.get_by_role("button", name="Allow").click()

    expect(page).to_have_url(SETTINGS_URL)
    problem = page.get_by_role("alert").filter(
        has=page.get_by_role("heading", name="Your Google calendar is not connected")
    )
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("see when you are busy")
    # Nothing claims success, and no half-connected account is shown.
    expect(page.get_by_role("status")).to_have_count(0)
    expect(page.get_by_role("article")).to_have_count(0)
    expect(page.get_by_text("Your calendar is not connected")).to_be_visible()
    screenshot(page, "not-connected")

    assert not CalendarAccount.objects.filter(owner=participant).exists()
    assert not SocialAccount.objects.filter(user=participant).exists()

    # "Try again" leads back through the connect page to the consent page; with
    # every box left ticked this time, the calendar connects and the problem is gone.
    problem.get_by_role("link", name="Try again").click()
    expect(page).to_have_url(CONNECT_URL)
    page.get_by_role("button", name="Continue to Google Calendar").click()
    expect(page).to_have_url(CONSENT_URL)
    expect(page.get_by_role("checkbox", name=EVENTS_READ)).to_be_checked()
    page.get_by_role("button", name="Allow").click()

    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text(f"Your Google calendar ({GMAIL}) is connected.")
    expect(page.get_by_role("heading", name="Your Google calendar is not connected")).to_have_count(
        0
    )
    expect(page.get_by_role("heading", name=f"Google Calendar · {GMAIL}")).to_be_visible()
    assert CalendarAccount.objects.get(owner=participant).identity == GMAIL
