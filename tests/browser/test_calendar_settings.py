"""The participant's calendar settings, in a real browser, against a real Radicale.

Connect, choose calendars, refresh the list, disconnect with and without removing
Convene's events. The Radicale account is shared by the whole session (other tests
add calendars to it too), so every assertion names the calendars its test created.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, cast

import pytest
from caldav.calendarobjectresource import Event as DAVEvent
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.accounts.models import Membership, Role, User
from apps.calendars.models import Calendar, CalendarAccount, WrittenEvent
from apps.calendars.providers.base import EventPayload
from apps.calendars.providers.ical import convene_uid
from apps.calendars.services import calendar_event_upsert
from tests.browser.conftest import LogIn, Screenshot
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.calendars.ics import vevent
from tests.factories import CalendarAccountFactory, CalendarFactory, MembershipFactory

MakeDAVCalendar: TypeAlias = Callable[[], DAVCalendar]

SETTINGS_URL = re.compile(r"/settings/calendars/$")
CONNECT_URL = re.compile(r"/settings/calendars/connect/caldav/$")
# What check_url says about 127.0.0.1 when nobody allowed it: the person learns why
# and whom to ask, and sees no traceback or library jargon.
LOOPBACK_REFUSAL = (
    "127.0.0.1 is a loopback address (the Convene server itself). Convene only "
    "connects to public servers; ask your administrator to allow this server if it "
    "is self-hosted."
)


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    # Radicale listens on 127.0.0.1, which the outbound guard refuses unless allowed.
    # outbound_policy() reads the setting per request, and the live server runs in
    # this process, so the change reaches it.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def participant(transactional_db: None) -> User:
    # The programme's default allows every service, CalDAV included, so the settings
    # page offers "Connect CalDAV".
    membership: Membership = MembershipFactory.create(role=Role.PARTICIPANT)
    return membership.user


@pytest.fixture
def make_dav_calendar(radicale_server: CalDAVServer) -> Iterator[MakeDAVCalendar]:
    """`make_dav_calendar()`: a new calendar in the Radicale account, deleted after
    the test so the shared account does not keep growing."""
    made: list[tuple[DAVClient, DAVCalendar]] = []

    def make() -> DAVCalendar:
        client, calendar = make_calendar(radicale_server)
        made.append((client, calendar))
        return calendar

    yield make
    for client, calendar in made:
        # A test may have deleted its calendar on purpose already.
        with contextlib.suppress(dav_error.DAVError, OSError):
            calendar.delete()
        client.close()


@pytest.fixture
def two_calendars(make_dav_calendar: MakeDAVCalendar) -> tuple[DAVCalendar, DAVCalendar]:
    return make_dav_calendar(), make_dav_calendar()


def _name(calendar: DAVCalendar) -> str:
    return str(calendar.get_display_name())


def _fill_connect_form(page: Page, server: CalDAVServer, *, password: str) -> None:
    page.goto("/settings/calendars/")
    page.get_by_role("link", name="Connect CalDAV").click()
    expect(page).to_have_url(CONNECT_URL)
    page.get_by_label("Server address").fill(server.url)
    page.get_by_label("Username").fill(server.username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Test and connect").click()


def _connect(page: Page, server: CalDAVServer, owner: User) -> CalendarAccount:
    """Connect the Radicale account through the settings page; returns the account."""
    _fill_connect_form(page, server, password=server.password)
    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text("Your CalDAV calendar is connected.")
    return CalendarAccount.objects.get(owner=owner)


def _uids_on_server(calendar: DAVCalendar) -> set[str]:
    # A synchronous client, so a list (caldav's annotation also allows a coroutine).
    events = cast(list[DAVEvent], calendar.get_events())
    return {str(event.icalendar_component["UID"]) for event in events}


def _write_convene_event(calendar: Calendar, key: str) -> str:
    """Have Convene write an event into `calendar`, as booking an appointment would;
    returns its UID."""
    start = (timezone.now() + dt.timedelta(days=3)).replace(microsecond=0)
    uid = convene_uid(key)
    calendar_event_upsert(
        calendar=calendar,
        key=key,
        payload=EventPayload(
            uid=uid, title="Careers advice", start=start, end=start + dt.timedelta(hours=1)
        ),
    )
    return uid


def test_participant_connects_caldav_and_sees_its_calendars(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    allow_loopback: None,
) -> None:
    log_in(page, participant)
    page.goto("/settings/calendars/")
    expect(page.get_by_text("Your calendar is not connected")).to_be_visible()

    account = _connect(page, radicale_server, participant)

    card = page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=f"CalDAV · {radicale_server.username}")
    )
    # The sync ran inline (tasks are eager in tests), so the card says it is done.
    expect(card.get_by_text("Last synced")).to_be_visible()
    for calendar in two_calendars:
        expect(card.get_by_role("rowheader", name=_name(calendar))).to_be_visible()
    expect(page.get_by_text("Your calendar is not connected")).to_have_count(0)
    screenshot(page, "connected")

    assert account.provider == "caldav"
    assert account.server_url == radicale_server.url
    assert account.status == CalendarAccount.Status.ACTIVE
    names = set(account.calendars.values_list("name", flat=True))
    assert {_name(calendar) for calendar in two_calendars} <= names
    # CalDAV has no primary calendar, so exactly one is chosen to receive appointments.
    assert Calendar.objects.filter(owner=participant, is_write_target=True).count() == 1


def test_wrong_password_shows_the_servers_message_and_saves_nothing(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    allow_loopback: None,
) -> None:
    log_in(page, participant)
    _fill_connect_form(page, radicale_server, password="not-the-password")

    expect(page).to_have_url(CONNECT_URL)
    expect(page.get_by_role("alert")).to_contain_text("rejected the username or password")
    # What the person typed is kept, except the password, which is never sent back.
    expect(page.get_by_label("Server address")).to_have_value(radicale_server.url)
    expect(page.get_by_label("Username")).to_have_value(radicale_server.username)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    screenshot(page, "connect-error")

    assert not CalendarAccount.objects.filter(owner=participant).exists()
    assert not Calendar.objects.filter(owner=participant).exists()


def test_loopback_server_is_refused_unless_allowed(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    settings: Any,
) -> None:
    # Explicitly empty: the machine running the tests may set it in the environment.
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    log_in(page, participant)
    _fill_connect_form(page, radicale_server, password=radicale_server.password)

    expect(page).to_have_url(CONNECT_URL)
    expect(page.get_by_role("alert")).to_have_text(LOOPBACK_REFUSAL)
    screenshot(page, "refused")

    assert not CalendarAccount.objects.filter(owner=participant).exists()
    assert not Calendar.objects.filter(owner=participant).exists()


def test_participant_chooses_conflict_and_appointment_calendars(
    page: Page,
    log_in: LogIn,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    allow_loopback: None,
) -> None:
    first, second = (_name(calendar) for calendar in two_calendars)
    log_in(page, participant)
    account = _connect(page, radicale_server, participant)

    page.get_by_label(f"Check {first} for conflicts").check()
    page.get_by_label(f"Check {second} for conflicts").check()
    page.get_by_label(f"Add appointments to {second}").check()
    page.get_by_role("button", name="Save calendar choices").click()

    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text("Your calendar choices are saved.")
    # The page shows what was saved, not what the browser remembered of the form.
    page.reload()
    expect(page.get_by_label(f"Check {first} for conflicts")).to_be_checked()
    expect(page.get_by_label(f"Check {second} for conflicts")).to_be_checked()
    expect(page.get_by_label(f"Add appointments to {second}")).to_be_checked()
    expect(page.get_by_label(f"Add appointments to {first}")).not_to_be_checked()

    by_name = {c.name: c for c in Calendar.objects.filter(account=account)}
    assert by_name[first].check_conflicts
    assert by_name[second].check_conflicts
    assert by_name[second].is_write_target
    assert not by_name[first].is_write_target
    write_targets = Calendar.objects.filter(owner=participant, is_write_target=True)
    assert list(write_targets) == [by_name[second]]


def test_refresh_list_shows_new_calendars_and_drops_deleted_ones(
    page: Page,
    log_in: LogIn,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    make_dav_calendar: MakeDAVCalendar,
    allow_loopback: None,
) -> None:
    kept, removed = two_calendars
    log_in(page, participant)
    account = _connect(page, radicale_server, participant)

    # Changes made in another calendar app after connecting.
    added = make_dav_calendar()
    removed.delete()
    expect(page.get_by_role("rowheader", name=_name(added))).to_have_count(0)

    page.get_by_role("button", name="Refresh list").click()

    expect(page).to_have_url(SETTINGS_URL)
    # The count includes calendars other tests left in the shared account.
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"Calendar list refreshed: \d+ calendars\.")
    )
    expect(page.get_by_role("rowheader", name=_name(added))).to_be_visible()
    expect(page.get_by_role("rowheader", name=_name(kept))).to_be_visible()
    expect(page.get_by_role("rowheader", name=_name(removed))).to_have_count(0)

    assert Calendar.objects.get(account=account, name=_name(added)).is_deleted is False
    gone = Calendar.objects.get(account=account, name=_name(removed))
    assert gone.is_deleted
    assert not gone.check_conflicts
    assert not gone.is_write_target


def test_disconnect_keeping_events_leaves_convenes_event_in_the_calendar(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    allow_loopback: None,
) -> None:
    dav_calendar = two_calendars[0]
    log_in(page, participant)
    account = _connect(page, radicale_server, participant)
    calendar = Calendar.objects.get(account=account, name=_name(dav_calendar))
    uid = _write_convene_event(calendar, "browser-keep-1")
    assert uid in _uids_on_server(dav_calendar)  # else "kept" below proves nothing

    page.get_by_role("link", name="Disconnect").click()
    keep = page.get_by_label("Keep them in my calendar")
    # Keeping is the default: a stray click must not delete anything.
    expect(keep).to_be_checked()
    screenshot(page, "disconnect")
    page.get_by_role("button", name="Disconnect").click()

    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text("Your CalDAV calendar is disconnected.")
    expect(page.get_by_text("Your calendar is not connected")).to_be_visible()

    assert not CalendarAccount.objects.filter(owner=participant).exists()
    assert not WrittenEvent.objects.exists()
    assert uid in _uids_on_server(dav_calendar)


def test_disconnect_removing_events_deletes_convenes_event_from_the_calendar(
    page: Page,
    log_in: LogIn,
    participant: User,
    radicale_server: CalDAVServer,
    two_calendars: tuple[DAVCalendar, DAVCalendar],
    allow_loopback: None,
) -> None:
    dav_calendar = two_calendars[0]
    log_in(page, participant)
    account = _connect(page, radicale_server, participant)
    calendar = Calendar.objects.get(account=account, name=_name(dav_calendar))
    uid = _write_convene_event(calendar, "browser-remove-1")
    # Someone else's event in the same calendar: removing Convene's must spare it.
    other_uid = f"other-{uuid.uuid4().hex}"
    other_start = timezone.now() + dt.timedelta(days=4)
    dav_calendar.add_event(vevent(other_uid, other_start, other_start + dt.timedelta(hours=1)))
    assert _uids_on_server(dav_calendar) >= {uid, other_uid}

    page.get_by_role("link", name="Disconnect").click()
    page.get_by_label("Remove them from my calendar").check()
    page.get_by_role("button", name="Disconnect").click()

    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text("Your CalDAV calendar is disconnected.")

    assert not CalendarAccount.objects.filter(owner=participant).exists()
    remaining = _uids_on_server(dav_calendar)
    assert uid not in remaining
    assert other_uid in remaining


def test_outsider_opening_someone_elses_disconnect_page_gets_404(
    page: Page, log_in: LogIn, participant: User
) -> None:
    calendar: Calendar = CalendarFactory.create(
        account=CalendarAccountFactory.create(owner=participant)
    )
    outsider: Membership = MembershipFactory.create(role=Role.PARTICIPANT)
    log_in(page, outsider.user)

    response = page.goto(f"/settings/calendars/{calendar.account_id}/disconnect/")

    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("button", name="Disconnect")).to_have_count(0)
    assert CalendarAccount.objects.filter(pk=calendar.account_id, owner=participant).exists()


@pytest.mark.parametrize(
    ("url_name", "data"),
    [
        ("calendar_account_disconnect", {"remove_events": "yes"}),
        ("calendar_account_refresh", {}),
        # Valid for the owner: it would untick every calendar, which the last assertion sees.
        ("calendar_account_choices", {"account-{pk}-write_calendar": ""}),
    ],
)
def test_outsider_cannot_change_someone_elses_calendar_account(
    client: Client, participant: User, url_name: str, data: dict[str, Any]
) -> None:
    calendar: Calendar = CalendarFactory.create(
        account=CalendarAccountFactory.create(owner=participant)
    )
    pk = calendar.account_id
    outsider: Membership = MembershipFactory.create(role=Role.PARTICIPANT)
    client.force_login(outsider.user)

    response = client.post(
        reverse(url_name, args=[pk]), {key.format(pk=pk): value for key, value in data.items()}
    )

    assert response.status_code == 404
    calendar.refresh_from_db()
    assert calendar.account.owner == participant
    assert calendar.check_conflicts
