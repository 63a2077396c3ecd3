"""Video meetings made by the host's calendar: Google Meet and Microsoft Teams, their
link stored back on the appointment, written to everyone, and announced."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.test import Client, TestCase
from django.utils import timezone

from apps.appointments.models import Appointment, HostSettings
from apps.appointments.services import appointment_edit, host_settings_update
from apps.calendars.models import Calendar, CalendarAccount
from apps.calendars.providers.google import event_id_for
from apps.integrations.models import WebhookDelivery, WebhookSubscription
from tests.appointments.conftest import Booking
from tests.factories import next_weekday_at
from tests.fakes.google import FakeGoogle
from tests.fakes.microsoft import FakeMicrosoft

GOOGLE_SCOPES = {
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly",
    "https://www.googleapis.com/auth/calendar.events.owned",
}


def _connected(
    owner: object, provider: str, identity: str, token: str, external_id: str
) -> Calendar:
    account = CalendarAccount.objects.create(
        owner=owner,
        provider=provider,
        identity=identity,
        credentials={
            "access_token": token,
            "refresh_token": "unused",
            "expires_at": (timezone.now() + dt.timedelta(hours=1)).isoformat(),
        },
    )
    return Calendar.objects.create(
        account=account,
        owner=account.owner,
        external_id=external_id,
        name="Calendar",
        is_primary=True,
        check_conflicts=True,
        is_write_target=True,
    )


def _book(booking: Booking) -> Appointment:
    # Runs what commits queue, and what they queue in turn (storing the link queues
    # the rewrite of every calendar).
    with TestCase.captureOnCommitCallbacks(execute=True):
        appointment = booking.book(next_weekday_at(10))
    appointment.refresh_from_db()
    return appointment


def test_a_google_host_gets_a_meet_link_that_everyone_sees(
    booking: Booking, google: FakeGoogle, client: Client
) -> None:
    user = google.add_user(booking.host.email)
    _connected(
        booking.host,
        "google",
        user.email,
        google.issue_token(user.email, GOOGLE_SCOPES),
        user.email,
    )
    host_settings_update(host=booking.host, needs_approval=False, video_meetings=True)
    hook = WebhookSubscription.objects.create(
        organization=booking.program.organization,
        url="https://hooks.example.org/convene",
        events=["conferencing_assigned"],
    )

    appointment = _book(booking)

    assert appointment.integrated_conferencing
    assert appointment.join_url.startswith("https://meet.google.com/")
    event = user.primary.events[event_id_for(_uid(appointment, booking))].resource
    assert event["hangoutLink"] == appointment.join_url
    # Written again with the link in it, as every attendee's calendar is.
    assert appointment.join_url in event["description"]
    client.force_login(booking.participant)
    page = client.get(f"/appointments/{appointment.pk}/").content.decode()
    assert appointment.join_url in page
    deliveries = WebhookDelivery.objects.filter(subscription=hook)
    assert [d.event_type for d in deliveries] == ["conferencing_assigned"]
    delivery = deliveries[0]
    assert delivery.payload["data"]["conferencing"] == {
        "provider_description": "Google Meet",
        "join_url": appointment.join_url,
    }


def _uid(appointment: Appointment, booking: Booking) -> str:
    from apps.appointments.outbox import event_payload

    calendar = Calendar.objects.get(owner=booking.host)
    return event_payload(appointment, calendar).uid


def test_a_microsoft_host_gets_a_teams_link(booking: Booking, graph: FakeMicrosoft) -> None:
    mailbox = graph.add_mailbox(booking.host.email)
    _connected(
        booking.host,
        "microsoft",
        mailbox.mail,
        graph.issue_token(mailbox.mail),
        mailbox.default_calendar_id,
    )
    HostSettings.objects.create(host=booking.host, video_meetings=True)

    appointment = _book(booking)

    assert appointment.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    (event,) = graph.events_in(mailbox.default_calendar_id)
    assert event.online_provider == "teamsForBusiness"
    assert event.join_url == appointment.join_url
    assert appointment.join_url in event.body


def test_an_explicit_link_wins_and_nothing_is_generated(
    booking: Booking, google: FakeGoogle
) -> None:
    user = google.add_user(booking.host.email)
    _connected(
        booking.host,
        "google",
        user.email,
        google.issue_token(user.email, GOOGLE_SCOPES),
        user.email,
    )
    HostSettings.objects.create(host=booking.host, video_meetings=True)
    with TestCase.captureOnCommitCallbacks(execute=True):
        appointment = booking.book(next_weekday_at(11), join_url="https://zoom.example/j/1")
    appointment.refresh_from_db()
    assert appointment.join_url == "https://zoom.example/j/1"
    assert not appointment.integrated_conferencing
    (event,) = [e for e in user.primary.events.values() if not e.cancelled]
    assert "hangoutLink" not in event.resource


def test_video_meetings_need_a_google_or_microsoft_write_calendar(booking: Booking) -> None:
    with pytest.raises(ValidationError, match="choose a Google or Microsoft calendar"):
        host_settings_update(host=booking.host, needs_approval=False, video_meetings=True)
    appointment = booking.book(next_weekday_at(12))
    with pytest.raises(ValidationError, match="cannot create video meetings"):
        appointment_edit(
            appointment=appointment,
            actor=booking.host,
            start=appointment.start,
            end=appointment.end,
            location="",
            join_url="",
            integrated_conferencing=True,
        )
