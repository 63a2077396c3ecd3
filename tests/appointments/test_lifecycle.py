"""The life cycle, its permissions, and what lands in the host's real CalDAV calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from caldav.collection import Calendar as DAVCalendar
from django.core.exceptions import PermissionDenied, ValidationError

from apps.appointments.models import Appointment, CalendarWrite
from apps.appointments.outbox import outbox_sweep
from apps.appointments.services import appointment_edit, appointment_transition
from apps.calendars.models import Calendar
from apps.calendars.sync import calendar_account_sync
from tests.appointments.conftest import Booking
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.factories import AppointmentFactory, CalendarAccountFactory, next_weekday_at

pytestmark = pytest.mark.django_db
Status = Appointment.Status


@pytest.mark.parametrize(
    ("status", "path", "who"),
    [
        ("requested", ["approved", "started", "completed"], "host"),
        ("requested", ["approved", "started", "no_show"], "host"),
        ("requested", ["declined"], "host"),
        ("approved", ["canceled"], "participant"),
        ("requested", ["canceled"], "participant"),
        ("requested", ["approved", "canceled"], "staff"),
    ],
)
def test_allowed_paths_are_recorded(
    booking: Booking, status: str, path: list[str], who: str
) -> None:
    appointment = AppointmentFactory(
        program=booking.program,
        host=booking.host,
        status=status,
        attendees=[booking.participant],
    )
    actor = getattr(booking, who)
    for to in path:
        appointment = appointment_transition(appointment=appointment, actor=actor, to=to)
    assert appointment.status == path[-1]
    assert [t.to_status for t in appointment.transitions.all()] == path
    assert all(t.actor == actor for t in appointment.transitions.all())


@pytest.mark.parametrize("to", ["approved", "declined", "started"])
def test_participants_and_outsiders_cannot_manage(booking: Booking, to: str) -> None:
    appointment = AppointmentFactory(
        program=booking.program,
        host=booking.host,
        status=Status.REQUESTED,
        attendees=[booking.participant],
    )
    for intruder in (booking.participant, booking.outsider):
        with pytest.raises(PermissionDenied):
            appointment_transition(appointment=appointment, actor=intruder, to=to)


def test_an_outsider_cannot_cancel(booking: Booking) -> None:
    appointment = AppointmentFactory(program=booking.program, host=booking.host)
    with pytest.raises(PermissionDenied):
        appointment_transition(appointment=appointment, actor=booking.outsider, to="canceled")


@pytest.mark.parametrize(
    ("status", "to"),
    [
        ("requested", "started"),
        ("approved", "completed"),
        ("completed", "canceled"),
        ("declined", "approved"),
        ("canceled", "approved"),
    ],
)
def test_impossible_transitions_are_refused(booking: Booking, status: str, to: str) -> None:
    appointment = AppointmentFactory(program=booking.program, host=booking.host, status=status)
    with pytest.raises(ValidationError, match="cannot become"):
        appointment_transition(appointment=appointment, actor=booking.host, to=to)


def test_final_appointments_cannot_be_edited(booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, status=Status.COMPLETED
    )
    with pytest.raises(ValidationError, match="no longer be edited"):
        appointment_edit(
            appointment=appointment,
            actor=booking.host,
            start=appointment.start,
            end=appointment.end,
            location="Room 2",
            join_url="",
        )


def test_only_host_or_staff_edit(booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, attendees=[booking.participant]
    )
    with pytest.raises(PermissionDenied):
        appointment_edit(
            appointment=appointment,
            actor=booking.participant,
            start=appointment.start,
            end=appointment.end,
            location="",
            join_url="",
        )


# --- written into a real calendar ------------------------------------------------------


@pytest.fixture
def host_dav(
    booking: Booking, radicale_server: CalDAVServer, settings: Any
) -> Iterator[tuple[DAVCalendar, Calendar]]:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    client, dav = make_calendar(radicale_server)
    account = CalendarAccountFactory(
        owner=booking.host,
        server_url=radicale_server.url,
        credentials={"username": radicale_server.username, "password": radicale_server.password},
    )
    calendar = Calendar.objects.create(
        account=account,
        owner=booking.host,
        external_id=str(dav.url),
        name="Work",
        check_conflicts=True,
        is_write_target=True,
    )
    yield dav, calendar
    dav.delete()
    client.close()


def _events(dav: DAVCalendar) -> list[tuple[str, dt.datetime]]:
    listing = dav.get_objects_by_sync_token(load_objects=True)
    gone = {str(url) for url in listing.deleted_urls}
    return sorted(
        (str(obj.icalendar_component["SUMMARY"]), obj.icalendar_component["DTSTART"].dt)
        for obj in listing
        if str(obj.url) not in gone and obj.data
    )


def test_the_life_cycle_shows_in_the_hosts_calendar(
    booking: Booking,
    host_dav: tuple[DAVCalendar, Calendar],
    django_capture_on_commit_callbacks: Any,
) -> None:
    dav, _ = host_dav
    from apps.appointments.models import HostSettings

    HostSettings.objects.create(host=booking.host, needs_approval=True)
    start = next_weekday_at(10)

    def step(action: Any) -> Appointment:
        with django_capture_on_commit_callbacks(execute=True):
            return action()

    appointment = step(lambda: booking.book(start, title="CV review"))
    assert _events(dav) == [("Requested: CV review", start)]
    for to, title in [
        ("approved", "CV review"),
        ("started", "Started: CV review"),
        ("completed", "Completed: CV review"),
    ]:
        appointment = step(
            lambda to=to, appointment=appointment: appointment_transition(
                appointment=appointment, actor=booking.host, to=to
            )
        )
        assert _events(dav) == [(title, start)]
    assert CalendarWrite.objects.filter(state=CalendarWrite.State.DONE).count() == 4


def test_edit_and_cancel_update_then_remove_the_event(
    booking: Booking,
    host_dav: tuple[DAVCalendar, Calendar],
    django_capture_on_commit_callbacks: Any,
) -> None:
    dav, _ = host_dav
    start = next_weekday_at(10)
    with django_capture_on_commit_callbacks(execute=True):
        appointment = booking.book(start, title="Mock interview")
    later = start + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        appointment_edit(
            appointment=appointment,
            actor=booking.host,
            start=later,
            end=later + dt.timedelta(minutes=45),
            location="Room 4",
            join_url="",
        )
    assert _events(dav) == [("Mock interview", later)]
    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(appointment=appointment, actor=booking.participant, to="canceled")
    assert _events(dav) == []


def test_nothing_is_lost_or_duplicated_while_the_server_is_down(
    booking: Booking,
    host_dav: tuple[DAVCalendar, Calendar],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dav, calendar = host_dav
    good_url = calendar.account.server_url
    # The server "goes down": its address now points at a closed port.
    calendar.account.server_url = "http://127.0.0.1:9/"
    calendar.account.save()
    Calendar.objects.filter(pk=calendar.pk).update(external_id="http://127.0.0.1:9/cal/")
    start = next_weekday_at(10)
    with django_capture_on_commit_callbacks(execute=True):
        booking.book(start, title="Advice")
    write = CalendarWrite.objects.get()
    assert write.state == CalendarWrite.State.PENDING
    assert write.attempts == 1
    assert write.last_error
    # A sweep before the backoff has passed does nothing.
    assert outbox_sweep() == 0
    # The server comes back; the sweep delivers, twice over without duplicating.
    calendar.account.server_url = good_url
    calendar.account.save()
    Calendar.objects.filter(pk=calendar.pk).update(external_id=str(dav.url))
    CalendarWrite.objects.update(next_attempt_at=write.created_at)
    assert outbox_sweep() == 1
    CalendarWrite.objects.update(state=CalendarWrite.State.PENDING)
    assert outbox_sweep() == 1
    assert _events(dav) == [("Advice", start)]


def test_an_event_edited_outside_convene_is_rewritten_by_the_full_resync(
    booking: Booking,
    host_dav: tuple[DAVCalendar, Calendar],
    django_capture_on_commit_callbacks: Any,
) -> None:
    dav, calendar = host_dav
    start = next_weekday_at(10)
    with django_capture_on_commit_callbacks(execute=True):
        booking.book(start, title="Advice")
    (obj,) = [o for o in dav.get_objects_by_sync_token(load_objects=True) if o.data]
    dav.client.put(
        str(obj.url),
        obj.data.replace("SUMMARY:Advice", "SUMMARY:Hacked"),
        {"Content-Type": "text/calendar"},
    )
    assert _events(dav) == [("Hacked", start)]
    with django_capture_on_commit_callbacks(execute=True):
        calendar_account_sync(account=calendar.account, full=True)
    assert _events(dav) == [("Advice", start)]
