"""Real CalDAV data through the whole pull side: server -> provider -> BusyBlock."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from caldav.collection import Calendar as DAVCalendar
from django.core.management import call_command

from apps.calendars.models import BusyBlock, Calendar, CalendarAccount, SyncRun
from apps.calendars.sync import calendar_account_sync
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.calendars.ics import vevent
from tests.factories import CalendarAccountFactory, CalendarFactory, MembershipFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def dav(caldav_server: CalDAVServer) -> Iterator[DAVCalendar]:
    client, calendar = make_calendar(caldav_server)
    yield calendar
    calendar.delete()
    client.close()


@pytest.fixture
def calendar(caldav_server: CalDAVServer, dav: DAVCalendar, settings: Any) -> Calendar:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    account = CalendarAccountFactory(
        provider="caldav",
        server_url=caldav_server.url,
        credentials={"username": caldav_server.username, "password": caldav_server.password},
        owner__time_zone="Europe/Berlin",
    )
    MembershipFactory(user=account.owner)
    return CalendarFactory(account=account, external_id=str(dav.url))


def _next_monday(weeks_ahead: int = 1) -> dt.date:
    today = dt.datetime.now(BERLIN).date()
    return today + dt.timedelta(days=(7 - today.weekday()) + 7 * (weeks_ahead - 1))


def test_weekly_series_with_moved_and_cancelled_instances(
    dav: DAVCalendar, calendar: Calendar
) -> None:
    first = _next_monday()
    start = dt.datetime.combine(first, dt.time(9), BERLIN)
    moved_from = start + dt.timedelta(weeks=1)
    cancelled = start + dt.timedelta(weeks=2)
    uid = f"series-{uuid.uuid4()}"
    stamp = "%Y%m%dT%H%M%S"
    dav.add_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID=Europe/Berlin:{start:{stamp}}\r\n"
        f"DTEND;TZID=Europe/Berlin:{start + dt.timedelta(hours=1):{stamp}}\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Lecture\r\n"
        f"EXDATE;TZID=Europe/Berlin:{cancelled:{stamp}}\r\nEND:VEVENT\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"RECURRENCE-ID;TZID=Europe/Berlin:{moved_from:{stamp}}\r\n"
        f"DTSTART;TZID=Europe/Berlin:{moved_from + dt.timedelta(hours=5):{stamp}}\r\n"
        f"DTEND;TZID=Europe/Berlin:{moved_from + dt.timedelta(hours=6):{stamp}}\r\n"
        "SUMMARY:Lecture (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    calendar_account_sync(account=calendar.account)
    starts = sorted(b.start.astimezone(BERLIN) for b in BusyBlock.objects.filter(calendar=calendar))
    assert starts == [
        start,
        moved_from + dt.timedelta(hours=5),
        start + dt.timedelta(weeks=3),
    ]


def test_all_day_multi_day_transparent_tentative_and_cancelled(
    dav: DAVCalendar, calendar: Calendar
) -> None:
    day = _next_monday()
    dav.add_event(vevent(f"trip-{uuid.uuid4()}", day, day + dt.timedelta(days=3)))
    at = dt.datetime.combine(day, dt.time(10), BERLIN)
    hour = dt.timedelta(hours=1)
    dav.add_event(vevent(f"free-{uuid.uuid4()}", at, at + hour, extra="TRANSP:TRANSPARENT"))
    dav.add_event(vevent(f"gone-{uuid.uuid4()}", at, at + hour, extra="STATUS:CANCELLED"))
    dav.add_event(vevent(f"maybe-{uuid.uuid4()}", at, at + hour, extra="STATUS:TENTATIVE"))
    dav.add_event(
        vevent(f"oof-{uuid.uuid4()}", at, at + hour, extra="X-MICROSOFT-CDO-BUSYSTATUS:OOF")
    )
    calendar_account_sync(account=calendar.account)
    blocks = list(BusyBlock.objects.filter(calendar=calendar).order_by("kind"))
    assert [(b.kind, b.all_day) for b in blocks] == [
        ("busy", True),
        ("out_of_office", False),
        ("tentative", False),
    ]
    trip = blocks[0]
    # All-day dates are the owner's days: midnight to midnight in Berlin, end exclusive.
    assert trip.start == dt.datetime.combine(day, dt.time(0), BERLIN)
    assert trip.end == dt.datetime.combine(day + dt.timedelta(days=3), dt.time(0), BERLIN)


def test_a_malformed_event_is_skipped_while_the_rest_syncs(
    dav: DAVCalendar, calendar: Calendar
) -> None:
    at = dt.datetime.combine(_next_monday(), dt.time(9), BERLIN)
    dav.add_event(vevent(f"good-{uuid.uuid4()}", at, at + dt.timedelta(hours=1)))
    dav.add_event(
        vevent(
            f"storm-{uuid.uuid4()}", at, at + dt.timedelta(seconds=1), extra="RRULE:FREQ=SECONDLY"
        )
    )
    (run,) = calendar_account_sync(account=calendar.account)
    assert run.outcome == SyncRun.Outcome.OK
    assert run.skipped == 1
    assert BusyBlock.objects.filter(calendar=calendar).count() == 1


def test_incremental_sync_after_a_broken_token_reconciles(
    dav: DAVCalendar, calendar: Calendar
) -> None:
    at = dt.datetime.combine(_next_monday(), dt.time(9), BERLIN)
    first = dav.add_event(vevent(f"a-{uuid.uuid4()}", at, at + dt.timedelta(hours=1)))
    calendar_account_sync(account=calendar.account)
    first.delete()
    dav.add_event(
        vevent(f"b-{uuid.uuid4()}", at + dt.timedelta(hours=3), at + dt.timedelta(hours=4))
    )
    Calendar.objects.filter(pk=calendar.pk).update(sync_state={"sync_token": "expired-token"})
    (run,) = calendar_account_sync(account=calendar.account)
    assert run.full
    assert [b.start for b in BusyBlock.objects.filter(calendar=calendar)] == [
        at + dt.timedelta(hours=3)
    ]


def test_titles_of_foreign_events_are_never_stored(dav: DAVCalendar, calendar: Calendar) -> None:
    at = dt.datetime.combine(_next_monday(), dt.time(9), BERLIN)
    dav.add_event(
        vevent(f"x-{uuid.uuid4()}", at, at + dt.timedelta(hours=1), summary="Therapy with Dr Who")
    )
    calendar_account_sync(account=calendar.account)
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("calendars_busyblock", "calendars_syncrun", "calendars_calendar"):
            cursor.execute(f"select * from {table}")  # noqa: S608 - fixed table names
            assert "Therapy" not in repr(cursor.fetchall())


def test_sync_calendars_command_prints_a_summary(
    dav: DAVCalendar, calendar: Calendar, capsys: pytest.CaptureFixture[str]
) -> None:
    at = dt.datetime.combine(_next_monday(), dt.time(9), BERLIN)
    dav.add_event(vevent(f"c-{uuid.uuid4()}", at, at + dt.timedelta(hours=1)))
    call_command("sync_calendars", "--full", "--user", calendar.owner.email)
    out = capsys.readouterr().out
    assert "Synced 1 account(s): 1 busy blocks upserted" in out
    assert CalendarAccount.objects.get().last_synced_at is not None
