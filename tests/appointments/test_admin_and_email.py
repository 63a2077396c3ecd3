from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.appointments.models import Appointment, CalendarWrite
from apps.appointments.services import appointment_transition
from tests.appointments.conftest import Booking
from tests.conftest import Personas
from tests.factories import AppointmentFactory, CalendarFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_admin_lists_filters_and_shows_history(client: Client, booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, status=Appointment.Status.REQUESTED
    )
    appointment_transition(appointment=appointment, actor=booking.host, to="approved")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get(
        reverse("admin:appointments_appointment_changelist"), {"status": "approved"}
    )
    assert [a.pk for a in listing.context["cl"].result_list] == [appointment.pk]
    page = client.get(reverse("admin:appointments_appointment_change", args=[appointment.pk]))
    assert page.status_code == 200
    assert b"approved" in page.content
    assert client.get(reverse("admin:appointments_calendarwrite_changelist")).status_code == 200


def test_admin_actions_go_through_the_services(client: Client, booking: Booking) -> None:
    requested = AppointmentFactory(
        program=booking.program, host=booking.host, status=Appointment.Status.REQUESTED
    )
    done = AppointmentFactory(
        program=booking.program,
        host=booking.host,
        status=Appointment.Status.COMPLETED,
        start=requested.end,
    )
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post(
        reverse("admin:appointments_appointment_changelist"),
        {"action": "approve", "_selected_action": [requested.pk, done.pk]},
        follow=True,
    )
    requested.refresh_from_db()
    done.refresh_from_db()
    assert requested.status == Appointment.Status.APPROVED
    assert requested.transitions.get().actor == admin
    assert done.status == Appointment.Status.COMPLETED  # refused, with a message
    assert "cannot become approved" in response.content.decode()


def test_org_admins_see_only_their_programmes_appointments(
    client: Client, personas: Personas
) -> None:
    ours = AppointmentFactory(program=personas.program)
    AppointmentFactory(program=personas.other_program)
    client.force_login(personas.org_admin)
    response = client.get(reverse("admin:appointments_appointment_changelist"))
    assert [a.pk for a in response.context["cl"].result_list] == [ours.pk]


def test_failed_writes_are_shown_to_the_host(client: Client, booking: Booking) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, attendees=[booking.participant]
    )
    calendar = CalendarFactory(account__owner=booking.host, name="Work")
    CalendarWrite.objects.create(
        appointment=appointment,
        calendar=calendar,
        state=CalendarWrite.State.FAILED,
        attempts=10,
        next_attempt_at=appointment.start,
        last_error="The server does not let Convene write the event.",
    )
    client.force_login(booking.host)
    content = client.get(reverse("appointment_detail", args=[appointment.pk])).content.decode()
    assert "Could not be added to “Work”" in content
    client.force_login(booking.participant)
    content = client.get(reverse("appointment_detail", args=[appointment.pk])).content.decode()
    assert "Could not be added" not in content


def test_cancel_emails_carry_a_cancel_invitation_only_without_a_calendar(
    booking: Booking, django_capture_on_commit_callbacks: Any
) -> None:
    appointment = AppointmentFactory(
        program=booking.program, host=booking.host, attendees=[booking.participant]
    )
    CalendarFactory(account__owner=booking.participant, is_write_target=True)
    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(appointment=appointment, actor=booking.staff, to="canceled")
    by_person = {m.to[0]: m for m in mail.outbox}
    assert set(by_person) == {booking.host.email, booking.participant.email}
    host_mail = by_person[booking.host.email]
    assert host_mail.subject == "Appointment canceled: Career advice"
    assert "METHOD:CANCEL" in host_mail.attachments[0][1]
    # The participant's calendar is connected: Convene removes the event there itself.
    assert by_person[booking.participant.email].attachments == []


def test_emails_show_times_in_each_recipients_zone(
    booking: Booking, django_capture_on_commit_callbacks: Any
) -> None:
    booking.host.time_zone = "Asia/Tokyo"
    booking.host.save()
    appointment = AppointmentFactory(
        program=booking.program,
        host=booking.host,
        attendees=[booking.participant],
        status=Appointment.Status.REQUESTED,
    )
    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(appointment=appointment, actor=booking.staff, to="approved")
    local = appointment.start.astimezone(booking.host.zone)
    host_mail = next(m for m in mail.outbox if m.to == [booking.host.email])
    assert f"{local:%H:%M}" in host_mail.body
    assert "(Asia/Tokyo)" in host_mail.body
