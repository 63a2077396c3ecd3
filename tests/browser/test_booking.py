"""Booking in a real browser: a participant books a host's slot in their own time zone,
the host approves it; a slot taken meanwhile; staff booking on behalf with an
override; a participant cancelling; an outsider refused.

The host works in UTC and the participant lives in Europe/Berlin, so every time the
participant sees is an hour or two off the host's: the expected labels are computed
from UTC here, never hard-coded, so the tests hold in summer and in winter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import TypeAlias
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from pytest_django.live_server_helper import LiveServer

from apps.accounts.models import User
from apps.appointments.models import Appointment, AppointmentTransition, HostSettings
from tests.appointments import conftest as appointments_conftest
from tests.appointments.conftest import Booking
from tests.browser.conftest import BROWSER_TIME_ZONE, DESKTOP, TIMEOUT_MS, LogIn, Screenshot
from tests.browser.test_onboarding import UNLABELLED_FIELDS_JS
from tests.factories import AppointmentFactory

NewPage: TypeAlias = Callable[[], Page]

# The programme, host, participant, staff and outsider of the appointments tests. An
# assignment, not an import, so pytest sees the fixture here without ruff taking the
# test parameters for redefinitions of an unused import.
booking = appointments_conftest.booking

UTC = dt.UTC
HOST_DAY = (dt.time(8, 0), dt.time(20, 0))  # the programme's default working hours
SLOT = dt.timedelta(minutes=30)  # HostSettings' default duration
GRANULARITY = dt.timedelta(minutes=15)  # set by the `booking` fixture
DETAIL_URL = re.compile(r"/appointments/(\d+)/$")
DASH = "\u2013"  # the en dash between start and end times on the pages


@pytest.fixture
def new_page(browser: Browser, live_server: LiveServer) -> Iterator[NewPage]:
    """`new_page()`: another person's browser, i.e. a fresh context with its own
    cookies, set up like the `page` fixture's."""
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


def _week_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _week_heading(monday: dt.date) -> str:
    # Django's "j F Y"; strftime's month names are English in the C locale.
    return f"Week of {monday.day} {monday:%B %Y}"


def _legend(day: dt.date) -> str:
    # Django's "D j M", the day's legend on the booking page.
    return f"{day:%a} {day.day} {day:%b}"


def _clock(moment: dt.datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _day_slots(day: dt.date) -> list[dt.datetime]:
    """Every slot start of a free weekday of the UTC host, in UTC."""
    start = dt.datetime.combine(day, HOST_DAY[0], UTC)
    last = dt.datetime.combine(day, HOST_DAY[1], UTC) - SLOT
    slots = []
    while start <= last:
        slots.append(start)
        start += GRANULARITY
    return slots


def _day(page: Page, day: dt.date) -> Locator:
    return page.get_by_role("group", name=_legend(day))


def _open_booking_page(page: Page, booking: Booking, week: dt.date) -> None:
    page.goto(f"/book/{booking.program.pk}/{booking.host.pk}/?week={week.isoformat()}")
    expect(page.get_by_role("heading", name=f"Book {booking.host}")).to_be_visible()
    expect(page.get_by_text(_week_heading(week))).to_be_visible()


def _main_nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def _appointment_id(page: Page) -> int:
    expect(page).to_have_url(DETAIL_URL)
    match = DETAIL_URL.search(page.url)
    assert match is not None
    return int(match.group(1))


def _history(page: Page) -> list[str]:
    items = page.locator("ol.history > li")
    return [re.sub(r"\s+", " ", text).strip() for text in items.all_inner_texts()]


def test_participant_books_in_their_time_zone_and_the_host_approves(
    page: Page,
    new_page: NewPage,
    log_in: LogIn,
    screenshot: Screenshot,
    booking: Booking,
) -> None:
    berlin = booking.participant.zone
    host, participant = booking.host, booking.participant

    # The host asks for approval through their own settings page.
    host_page = new_page()
    log_in(host_page, host)
    host_page.goto("/")
    host_page.get_by_role("link", name="booking settings").click()
    host_page.get_by_label("Bookings need my approval").check()
    host_page.get_by_role("button", name="Save").click()
    expect(host_page.get_by_role("status")).to_have_text("Your booking settings are saved.")
    assert HostSettings.objects.get(host=host).needs_approval

    log_in(page, participant)
    page.goto("/")
    page.get_by_role("link", name="Book time with an adviser or mentor").click()
    expect(page).to_have_url(re.compile(r"/book/$"))
    page.get_by_role("link", name=str(host)).click()
    expect(page).to_have_url(re.compile(rf"/book/{booking.program.pk}/{host.pk}/$"))
    expect(page.get_by_text("Times are in your time zone, Europe/Berlin.")).to_be_visible()

    # The page opens on the participant's current week, Monday to Sunday.
    this_week = _week_of(dt.datetime.now(berlin).date())
    next_week = this_week + dt.timedelta(days=7)
    expect(page.get_by_text(_week_heading(this_week))).to_be_visible()
    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_text(_week_heading(next_week))).to_be_visible()
    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_text(_week_heading(next_week + dt.timedelta(days=7)))).to_be_visible()
    page.get_by_role("link", name="Previous week").click()
    expect(page.get_by_text(_week_heading(next_week))).to_be_visible()

    # A Wednesday: never a DST change day, so one offset holds all day.
    wednesday = next_week + dt.timedelta(days=2)
    day = _day(page, wednesday)
    # The host's whole 08:00-20:00 UTC day, shown on the participant's clock.
    expected = [_clock(start, berlin) for start in _day_slots(wednesday)]
    expect(day.get_by_role("radio")).to_have_count(len(expected))
    assert [label.strip() for label in day.locator("label.slot").all_inner_texts()] == expected
    # Weekends are closed by the programme's default rules, so they are not shown.
    saturday = next_week + dt.timedelta(days=5)
    expect(_day(page, saturday)).to_have_count(0)

    start = dt.datetime.combine(wednesday, dt.time(9, 0), UTC)
    label = _clock(start, berlin)
    assert label in {"10:00", "11:00"}  # CET or CEST
    assert page.evaluate(UNLABELLED_FIELDS_JS) == []
    screenshot(page, "week")

    day.get_by_role("radio", name=label, exact=True).check()
    page.get_by_label("What is it about?").fill("CV review")
    page.get_by_label("Note for your host").fill("I would like feedback on my CV.")
    page.get_by_role("button", name="Book this time").click()

    pk = _appointment_id(page)
    expect(page.get_by_role("status")).to_have_text(
        f"Requested. {host} will confirm or decline it."
    )
    expect(page.get_by_role("heading", name="CV review")).to_be_visible()
    expect(page.locator(".status").first).to_have_text("Requested")
    expect(page.locator("dl.facts")).to_contain_text(
        f"{start.astimezone(berlin):%A} {wednesday.day} {wednesday:%B %Y}, "
        f"{label}{DASH}{_clock(start + SLOT, berlin)} (Europe/Berlin)"
    )
    # The participant may cancel a request, nothing more.
    expect(page.locator(".actions").get_by_role("button")).to_have_text(["Cancel appointment"])
    screenshot(page, "requested")

    appointment = Appointment.objects.get(pk=pk)
    assert appointment.status == Appointment.Status.REQUESTED
    assert (appointment.start, appointment.end) == (start, start + SLOT)
    assert appointment.host == host
    assert list(appointment.attendees.all()) == [participant]
    assert appointment.booked_by == participant
    assert not appointment.booked_on_behalf
    assert not appointment.availability_overridden
    assert appointment.notes == "I would like feedback on my CV."

    _main_nav(host_page, "Appointments").click()
    host_page.get_by_role("link", name="CV review").click()
    expect(host_page).to_have_url(re.compile(rf"/appointments/{pk}/$"))
    # The host reads the same appointment on their own (UTC) clock.
    expect(host_page.locator("dl.facts")).to_contain_text(f"09:00{DASH}09:30 (UTC)")
    expect(host_page.locator(".actions").get_by_role("button")).to_have_text(["Approve", "Decline"])
    screenshot(host_page, "host-review")
    host_page.get_by_role("button", name="Approve").click()

    expect(host_page).to_have_url(re.compile(rf"/appointments/{pk}/$"))
    expect(host_page.get_by_role("status")).to_have_text("The appointment is approved.")
    expect(host_page.locator(".status").first).to_have_text("Approved")
    expect(host_page.get_by_role("button", name="Approve")).to_have_count(0)
    history = _history(host_page)
    assert len(history) == 2, history
    assert history[0].endswith(f": Requested by {participant}")
    assert history[1].endswith(f": Requested → Approved by {host}")

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.APPROVED
    transitions = AppointmentTransition.objects.filter(appointment=appointment)
    assert [(t.from_status, t.to_status, t.actor) for t in transitions] == [
        ("", "requested", participant),
        ("requested", "approved", host),
    ]
    # The participant sees the decision too.
    page.reload()
    expect(page.locator(".status").first).to_have_text("Approved")


def test_a_slot_taken_before_submitting_is_refused_and_no_longer_offered(
    page: Page, log_in: LogIn, screenshot: Screenshot, booking: Booking
) -> None:
    berlin = booking.participant.zone
    week = _week_of(dt.datetime.now(berlin).date()) + dt.timedelta(days=7)
    thursday = week + dt.timedelta(days=3)
    start = dt.datetime.combine(thursday, dt.time(11, 0), UTC)
    log_in(page, booking.participant)
    _open_booking_page(page, booking, week)
    _day(page, thursday).get_by_role("radio", name=_clock(start, berlin), exact=True).check()
    page.get_by_label("What is it about?").fill("Internship applications")

    # Someone else books the same time while the page is open.
    taken = AppointmentFactory.create(
        program=booking.program,
        host=booking.host,
        start=start,
        end=start + SLOT,
        status=Appointment.Status.APPROVED,
    )
    page.get_by_role("button", name="Book this time").click()

    expect(page.get_by_role("alert")).to_contain_text("This slot was just taken")
    day = _day(page, thursday)
    expect(day.get_by_role("radio", name=_clock(start, berlin), exact=True)).to_have_count(0)
    # Only the overlapping starts went; the rest of the day is still on offer.
    for gone in (start - GRANULARITY, start + GRANULARITY):
        expect(day.get_by_role("radio", name=_clock(gone, berlin), exact=True)).to_have_count(0)
    expect(day.get_by_role("radio", name=_clock(start + SLOT, berlin), exact=True)).to_be_visible()
    # What the participant typed survives the refusal.
    expect(page.get_by_label("What is it about?")).to_have_value("Internship applications")
    screenshot(page, "taken")

    assert list(Appointment.objects.filter(host=booking.host)) == [taken]
    assert not Appointment.objects.filter(attendees=booking.participant).exists()


def test_staff_book_on_behalf_outside_working_hours_with_an_override(
    page: Page, log_in: LogIn, screenshot: Screenshot, booking: Booking
) -> None:
    staff, host, participant = booking.staff, booking.host, booking.participant
    london = staff.zone
    assert staff.time_zone == "Europe/London"
    day = dt.datetime.now(london).date() + dt.timedelta(days=2)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    # 22:00 in London is 21:00 or 22:00 UTC: after the UTC host's 20:00 end of day.
    local_start = dt.datetime.combine(day, dt.time(22, 0), london)
    start = local_start.astimezone(UTC)

    log_in(page, staff)
    page.goto("/book/on-behalf/")
    page.get_by_label("Programme").select_option(label=booking.program.name)
    page.get_by_label("Host", exact=True).select_option(label=str(host))
    page.get_by_label("Participant").select_option(label=str(participant))
    page.get_by_label("Title").fill("Placement check-in")
    page.get_by_label("Starts").fill(local_start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Length in minutes").fill("45")
    assert page.evaluate(UNLABELLED_FIELDS_JS) == []

    # Without the override the host's working hours hold, even for staff.
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert not Appointment.objects.exists()
    expect(page.get_by_label("Starts")).to_have_value(local_start.strftime("%Y-%m-%dT%H:%M"))
    screenshot(page, "refused")

    page.get_by_label("Book even if the host is not free").check()
    page.get_by_role("button", name="Book", exact=True).click()

    pk = _appointment_id(page)
    expect(page.get_by_role("alert")).to_have_text(
        f"Booked, although {host} was not free then: their availability was overridden."
    )
    expect(page.locator(".status-line")).to_contain_text(
        f"Overridden Booked by {staff} at a time {host} was not free."
    )
    expect(page.locator("dl.facts")).to_contain_text(f"22:00{DASH}22:45 (Europe/London)")
    expect(page.locator("dl.facts")).to_contain_text(f"{staff} (on behalf)")
    screenshot(page, "overridden")
    assert _history(page)[0].endswith(f": Approved (overrode availability) by {staff}")

    appointment = Appointment.objects.get(pk=pk)
    assert (appointment.start, appointment.end) == (start, start + dt.timedelta(minutes=45))
    assert appointment.availability_overridden
    assert appointment.booked_on_behalf
    assert appointment.booked_by == staff
    assert appointment.status == Appointment.Status.APPROVED
    assert list(appointment.attendees.all()) == [participant]


def test_participant_cancels_their_appointment(page: Page, log_in: LogIn, booking: Booking) -> None:
    appointment = AppointmentFactory.create(
        program=booking.program,
        host=booking.host,
        attendees=[booking.participant],
        booked_by=booking.participant,
        title="Mock interview",
    )
    log_in(page, booking.participant)
    _main_nav(page, "Appointments").click()
    page.get_by_role("link", name="Mock interview").click()
    expect(page).to_have_url(re.compile(rf"/appointments/{appointment.pk}/$"))
    expect(page.locator(".status").first).to_have_text("Approved")

    page.get_by_role("button", name="Cancel appointment").click()

    expect(page.get_by_role("status")).to_have_text("The appointment is canceled.")
    expect(page.locator(".status").first).to_have_text("Canceled")
    expect(page.locator(".actions").get_by_role("button")).to_have_count(0)
    assert _history(page)[-1].endswith(f": Approved → Canceled by {booking.participant}")

    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELED
    last = AppointmentTransition.objects.filter(appointment=appointment).last()
    assert last is not None
    assert (last.from_status, last.to_status, last.actor) == (
        "approved",
        "canceled",
        booking.participant,
    )


def test_outsider_opening_an_appointment_gets_404(
    page: Page, log_in: LogIn, screenshot: Screenshot, booking: Booking
) -> None:
    appointment = AppointmentFactory.create(
        program=booking.program,
        host=booking.host,
        attendees=[booking.participant],
        title="Private matter",
    )
    outsider: User = booking.outsider
    log_in(page, outsider)

    for suffix in ("", "ics/", "edit/"):
        response = page.goto(f"/appointments/{appointment.pk}/{suffix}")
        assert response is not None
        assert response.status == 404, suffix
        expect(page.get_by_text("Private matter")).to_have_count(0)
    screenshot(page, "not-found")
