"""End to end: finalising a poll writes the meeting into the mentor's and the invitees'
real CalDAV calendars (Radicale), through the appointments outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from caldav.collection import Calendar as DAVCalendar
from django.core.exceptions import ValidationError

from apps.accounts.models import User
from apps.appointments.models import CalendarWrite
from apps.appointments.services import appointment_transition
from apps.calendars.models import Calendar
from apps.mentoring.services import poll_cancel, poll_finalize
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.factories import CalendarAccountFactory
from tests.mentoring.conftest import Circle
from tests.mentoring.helpers import publish_poll

pytestmark = pytest.mark.django_db


@pytest.fixture
def dav_calendars(
    circle: Circle, radicale_server: CalDAVServer, settings: Any
) -> Iterator[dict[str, DAVCalendar]]:
    """A Radicale calendar each for the mentor and Ana, connected as write targets."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    made = {}
    for name in ("mentor", "ana"):
        user: User = getattr(circle, name)
        client, dav = make_calendar(radicale_server)
        account = CalendarAccountFactory(
            owner=user,
            server_url=radicale_server.url,
            credentials={
                "username": radicale_server.username,
                "password": radicale_server.password,
            },
        )
        Calendar.objects.create(
            account=account,
            owner=user,
            external_id=str(dav.url),
            name="Work",
            check_conflicts=True,
            is_write_target=True,
        )
        made[name] = (client, dav)
    yield {name: dav for name, (_, dav) in made.items()}
    for client, dav in made.values():
        dav.delete()
        client.close()


def _events(dav: DAVCalendar) -> list[tuple[str, dt.datetime]]:
    return sorted(
        (str(event.icalendar_component["SUMMARY"]), event.icalendar_component["DTSTART"].dt)
        for event in dav.events()
    )


def test_finalising_writes_the_meeting_into_everyones_calendar(
    circle: Circle,
    dav_calendars: dict[str, DAVCalendar],
    django_capture_on_commit_callbacks: Any,
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    option = poll.options.order_by("start").first()
    assert option is not None
    with django_capture_on_commit_callbacks(execute=True):
        appointment = poll_finalize(poll=poll, actor=circle.mentor, option_id=option.pk)
    assert _events(dav_calendars["mentor"]) == [("Check-in", option.start)]
    assert _events(dav_calendars["ana"]) == [("Check-in", option.start)]
    assert set(
        CalendarWrite.objects.filter(appointment=appointment).values_list("state", flat=True)
    ) == {CalendarWrite.State.DONE}
    # The poll cannot be canceled any more, but its appointment can: the events go.
    with pytest.raises(ValidationError, match="cancel its appointment"):
        poll_cancel(poll=poll, actor=circle.mentor)
    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(appointment=appointment, actor=circle.mentor, to="canceled")
    assert _events(dav_calendars["mentor"]) == []
    assert _events(dav_calendars["ana"]) == []
