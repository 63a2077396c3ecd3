from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.appointments.models import Appointment
from apps.calendars.models import BusyBlock
from tests.appointments.conftest import Booking
from tests.factories import AppointmentFactory, CalendarFactory, next_weekday_at

pytestmark = pytest.mark.django_db


def _monday(day: dt.datetime) -> str:
    return (day.date() - dt.timedelta(days=day.weekday())).isoformat()


def test_the_week_shows_slots_in_the_viewers_time_zone(client: Client, booking: Booking) -> None:
    client.force_login(booking.participant)  # Europe/Berlin
    day = next_weekday_at(9, days_ahead=8)
    url = reverse("book_host", args=[booking.program.pk, booking.host.pk])
    response = client.get(url, {"week": _monday(day)})
    assert response.status_code == 200
    local = timezone.localtime(day, booking.participant.zone)
    slots = dict(response.context["days"])[local.date()]
    assert day in slots
    content = response.content.decode()
    assert f'value="{local.isoformat()}"' in content
    assert f"> {local:%H:%M}</label>" in content


def test_the_slot_page_query_count_does_not_grow(client: Client, booking: Booking) -> None:
    client.force_login(booking.participant)
    day = next_weekday_at(9, days_ahead=8)
    url = reverse("book_host", args=[booking.program.pk, booking.host.pk])

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, {"week": _monday(day)}).status_code == 200
        return len(captured)

    few = count()
    calendar = CalendarFactory(account__owner=booking.host)
    BusyBlock.objects.bulk_create(
        BusyBlock(
            calendar=calendar,
            owner=booking.host,
            external_event_id=f"e{i}",
            instance_start=day + dt.timedelta(hours=i),
            start=day + dt.timedelta(hours=i),
            end=day + dt.timedelta(hours=i, minutes=20),
        )
        for i in range(200)
    )
    for i in range(30):
        AppointmentFactory(
            program=booking.program,
            host=booking.host,
            start=day + dt.timedelta(days=i % 5, minutes=45 + 60 * (i // 5)),
        )
    assert count() == few


def test_booking_through_the_page(client: Client, booking: Booking) -> None:
    client.force_login(booking.participant)
    start = next_weekday_at(10)
    response = client.post(
        reverse("book_host", args=[booking.program.pk, booking.host.pk]),
        {"start": start.isoformat(), "title": "Internships", "notes": "About summer"},
    )
    appointment = Appointment.objects.get()
    assert response["Location"] == reverse("appointment_detail", args=[appointment.pk])
    assert appointment.start == start
    assert appointment.notes == "About summer"


def test_the_loser_of_a_race_is_told_and_sees_fresh_slots(client: Client, booking: Booking) -> None:
    start = next_weekday_at(10)
    AppointmentFactory(program=booking.program, host=booking.host, start=start)
    client.force_login(booking.participant)
    response = client.post(
        reverse("book_host", args=[booking.program.pk, booking.host.pk])
        + f"?week={_monday(start)}",
        {"start": start.isoformat(), "title": "Internships"},
        follow=True,
    )
    content = response.content.decode()
    assert "This slot was just taken" in content
    assert start.isoformat() not in content
    assert Appointment.objects.count() == 1


def test_outsiders_cannot_open_a_hosts_booking_page(client: Client, booking: Booking) -> None:
    client.force_login(booking.outsider)
    url = reverse("book_host", args=[booking.program.pk, booking.host.pk])
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("who", ["outsider", "staff_of_another_programme"])
def test_outsiders_cannot_see_or_change_an_appointment(
    client: Client, booking: Booking, who: str
) -> None:
    from apps.accounts.models import Role
    from tests.factories import MembershipFactory, UserFactory

    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, attendees=[booking.participant]
    )
    intruder = booking.outsider
    if who == "staff_of_another_programme":
        intruder = UserFactory()
        MembershipFactory(user=intruder, role=Role.STAFF)
    client.force_login(intruder)
    for name in ("appointment_detail", "appointment_ics", "appointment_edit"):
        assert client.get(reverse(name, args=[appointment.pk])).status_code == 404
    url = reverse("appointment_transition", args=[appointment.pk, "canceled"])
    assert client.post(url).status_code == 404
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.APPROVED


def test_the_participant_cancels_from_the_page(client: Client, booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, attendees=[booking.participant]
    )
    client.force_login(booking.participant)
    detail = client.get(reverse("appointment_detail", args=[appointment.pk])).content.decode()
    assert "Cancel appointment" in detail
    assert ">Approve<" not in detail
    client.post(reverse("appointment_transition", args=[appointment.pk, "canceled"]))
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELED


def test_the_host_sees_management_actions(client: Client, booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, status=Appointment.Status.REQUESTED
    )
    client.force_login(booking.host)
    detail = client.get(reverse("appointment_detail", args=[appointment.pk])).content.decode()
    for label in ("Approve", "Decline", "Edit time or place"):
        assert label in detail
    # On a request, declining says it all: no second red button.
    assert "Cancel appointment" not in detail


def test_ics_download(client: Client, booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program,
        host=booking.host,
        attendees=[booking.participant],
        title="Mock interview",
    )
    client.force_login(booking.participant)
    response = client.get(reverse("appointment_ics", args=[appointment.pk]))
    assert response["Content-Type"].startswith("text/calendar")
    body = response.content.decode()
    assert "SUMMARY:Mock interview" in body
    assert f"UID:appointment-{appointment.pk}@convene.invalid" in body
    assert f"DTSTART:{appointment.start:%Y%m%dT%H%M%S}Z" in body


def test_the_host_edits_time_in_their_own_zone(client: Client, booking: Booking) -> None:
    booking.host.time_zone = "America/New_York"
    booking.host.save()
    appointment = AppointmentFactory(program=booking.program, host=booking.host)
    client.force_login(booking.host)
    local = timezone.localtime(next_weekday_at(15), booking.host.zone)
    response = client.post(
        reverse("appointment_edit", args=[appointment.pk]),
        {
            "start": local.strftime("%Y-%m-%dT%H:%M"),
            "duration": 45,
            "location": "Room 9",
            "join_url": "https://meet.example.org/abc",
        },
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.start == next_weekday_at(15)
    assert appointment.end - appointment.start == dt.timedelta(minutes=45)
    assert appointment.location == "Room 9"


def test_host_settings_are_for_hosts_only(client: Client, booking: Booking) -> None:
    client.force_login(booking.participant)
    assert client.get(reverse("host_settings")).status_code == 404
    client.force_login(booking.host)
    client.post(reverse("host_settings"), {"needs_approval": "on"})
    assert booking.host.host_settings.needs_approval


def test_only_staff_book_on_behalf(client: Client, booking: Booking, settings: Any) -> None:
    client.force_login(booking.participant)
    assert client.get(reverse("book_on_behalf")).status_code == 404
    client.force_login(booking.staff)
    start = timezone.localtime(next_weekday_at(22), booking.staff.zone)
    response = client.post(
        reverse("book_on_behalf"),
        {
            "program": booking.program.pk,
            "host": booking.host.pk,
            "attendee": booking.participant.pk,
            "title": "Urgent",
            "duration": 30,
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "override_availability": "on",
        },
        follow=True,
    )
    assert "availability was overridden" in response.content.decode()
    assert Appointment.objects.get().availability_overridden
