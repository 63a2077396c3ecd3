"""Slot proposals against the availability engine: calendars known and unknown, N of
M, time zones, the programme's rules, ranking and spreading."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import User
from apps.appointments.availability import Interval, SyncStatus
from apps.calendars.models import CalendarAccount
from apps.mentoring.models import MeetingPoll
from apps.mentoring.selectors import poll_proposals, proposal_periods
from apps.mentoring.services import poll_create
from tests.factories import UserFactory
from tests.factories.mentoring import busy, connect_calendar
from tests.mentoring.conftest import Circle
from tests.mentoring.helpers import UTC, at, monday

pytestmark = pytest.mark.django_db


def _create(
    circle: Circle, day: dt.date, last: dt.date | None = None, **kwargs: Any
) -> MeetingPoll:
    return poll_create(
        group=circle.group,
        actor=circle.mentor,
        title="Check-in",
        duration_minutes=60,
        date_from=day,
        date_to=last or day,
        **kwargs,
    )


def _options(poll: MeetingPoll) -> list[tuple[dt.datetime, dt.datetime, int]]:
    return [(o.start, o.end, o.known_free) for o in poll.options.order_by("start")]


def _day(day: dt.date) -> Interval:
    return Interval(at(day, 0), at(day + dt.timedelta(days=1), 0))


def _common_hours(day: dt.date, *zones: str) -> tuple[dt.datetime, dt.datetime]:
    """Where 08:00-20:00 local in every zone overlaps, in UTC, on `day`."""
    starts = [dt.datetime.combine(day, dt.time(8), ZoneInfo(z)) for z in zones]
    ends = [dt.datetime.combine(day, dt.time(20), ZoneInfo(z)) for z in zones]
    return max(starts).astimezone(UTC), min(ends).astimezone(UTC)


def test_options_fall_where_the_mentor_and_every_connected_invitee_can_meet(
    circle: Circle,
) -> None:
    day = monday()
    low, high = _common_hours(day, "UTC", "Europe/Berlin", "America/New_York")
    poll = _create(circle, day)
    options = _options(poll)
    assert options
    assert all(low <= start and end <= high for start, end, _ in options)
    # Both connected invitees are free in every option; Sam's calendar is unknown.
    assert {known for _, _, known in options} == {2}
    assert poll.status == "draft"


def test_a_busy_invitee_rules_out_the_overlapping_times(circle: Circle) -> None:
    day = monday()
    low, high = _common_hours(day, "UTC", "Europe/Berlin", "America/New_York")
    busy(circle.ana, low, high - dt.timedelta(hours=1))
    options = _options(_create(circle, day))
    assert options
    assert all(start >= high - dt.timedelta(hours=1) for start, _, _ in options)


def test_an_invitee_without_calendar_does_not_constrain(circle: Circle) -> None:
    # Sam lives in Auckland: were his unknown calendar a constraint, his night would
    # rule out the whole European afternoon.
    circle.sam.time_zone = "Pacific/Auckland"
    circle.sam.save()
    result = poll_proposals(
        program=circle.program,
        mentor=circle.mentor,
        invitees=circle.mentees,
        duration=dt.timedelta(hours=1),
        periods=[_day(monday())],
        required=None,
        zone=UTC,
    )
    assert result.options
    assert result.statuses[circle.sam.pk] is SyncStatus.UNKNOWN
    assert result.connected == 2


def test_n_of_m_accepts_times_when_enough_are_free_and_ranks_them_lower(
    circle: Circle,
) -> None:
    day = monday()
    low, high = _common_hours(day, "UTC", "Europe/Berlin", "America/New_York")
    # Ana is busy for all but the last hour the three share.
    busy(circle.ana, low, high - dt.timedelta(hours=1))
    options = list(_create(circle, day, required=1).options.all())
    ranked = sorted(options, key=lambda o: (-o.known_free, o.start))
    assert ranked[0].known_free == 2
    assert ranked[0].start >= high - dt.timedelta(hours=1)
    # Times when only Ben is free are proposed too, after those when both are.
    assert any(o.known_free == 1 and o.start < high - dt.timedelta(hours=1) for o in options)


def test_time_zones_of_connected_invitees_are_honoured(circle: Circle) -> None:
    # Ana works from Tokyo (08:00-20:00 JST is 23:00-11:00 UTC); Ben's calendar is
    # disconnected, so only the mentor's UTC day (08:00-20:00) and Ana's count.
    circle.ana.time_zone = "Asia/Tokyo"
    circle.ana.save()
    CalendarAccount.objects.filter(owner=circle.ben).update(
        status=CalendarAccount.Status.DISCONNECTED
    )
    day = monday()
    options = _options(_create(circle, day))
    assert options
    assert all(at(day, 8) <= start and end <= at(day, 11) for start, end, _ in options)


def test_disconnected_and_stale_calendars_are_reported(circle: Circle) -> None:
    CalendarAccount.objects.filter(owner=circle.ben).update(
        status=CalendarAccount.Status.DISCONNECTED
    )
    CalendarAccount.objects.filter(owner=circle.ana).update(
        last_synced_at=timezone.now() - dt.timedelta(hours=3)
    )
    result = poll_proposals(
        program=circle.program,
        mentor=circle.mentor,
        invitees=circle.mentees,
        duration=dt.timedelta(hours=1),
        periods=[_day(monday())],
        required=None,
        zone=UTC,
    )
    assert result.statuses[circle.ben.pk] is SyncStatus.DISCONNECTED
    assert result.statuses[circle.ana.pk] is SyncStatus.STALE
    assert result.connected == 0
    assert {o.known_free for o in result.options} == {0}


def test_the_mentors_own_busy_time_always_counts(circle: Circle) -> None:
    day = monday()
    low, high = _common_hours(day, "UTC", "Europe/Berlin", "America/New_York")
    connect_calendar(circle.mentor)
    busy(circle.mentor, low, high - dt.timedelta(hours=1))
    options = _options(_create(circle, day))
    assert options
    assert all(start >= high - dt.timedelta(hours=1) for start, _, _ in options)


def test_weekends_are_left_out_unless_the_programme_allows_them(circle: Circle) -> None:
    saturday = monday() + dt.timedelta(days=5)
    assert not _options(_create(circle, saturday, saturday + dt.timedelta(days=1)))
    circle.program.weekends_allowed = True
    circle.program.save()
    assert _options(_create(circle, saturday, saturday + dt.timedelta(days=1)))


def test_times_of_day_are_in_the_mentors_zone(circle: Circle) -> None:
    circle.mentor.time_zone = "America/New_York"
    circle.mentor.save()
    day = monday()
    zone = ZoneInfo("America/New_York")
    options = _options(_create(circle, day, day_start=dt.time(9), day_end=dt.time(12)))
    assert options
    for start, end, _ in options:
        assert dt.time(9) <= start.astimezone(zone).time()
        assert end.astimezone(zone) <= dt.datetime.combine(day, dt.time(12), zone)


def test_options_are_capped_and_spread_over_the_days(circle: Circle) -> None:
    day = monday()
    options = _options(_create(circle, day, day + dt.timedelta(days=11)))
    assert len(options) == 12
    days = [start.date() for start, _, _ in options]
    assert len(set(days)) == 10  # every weekday of the two weeks
    for one, other in itertools.pairwise(options):
        assert one[1] <= other[0] or one[0].date() != other[0].date()


def test_minimum_notice_is_respected(circle: Circle) -> None:
    circle.program.minimum_notice = dt.timedelta(days=4)
    circle.program.save()
    now = timezone.now()
    day = monday()
    poll = _create(circle, now.date() + dt.timedelta(days=1), day + dt.timedelta(days=4))
    assert all(start >= now + dt.timedelta(days=4) for start, _, _ in _options(poll))


@pytest.mark.parametrize("who", ["ana", "outsider", "other_member"])
def test_only_the_groups_mentors_create_polls(circle: Circle, who: str) -> None:
    with pytest.raises(PermissionDenied):
        poll_create(
            group=circle.group,
            actor=getattr(circle, who),
            title="Mine",
            duration_minutes=60,
            date_from=monday(),
            date_to=monday(),
        )


def test_bad_ranges_say_what_to_fix(circle: Circle) -> None:
    with pytest.raises(ValidationError) as error:
        _create(circle, monday(), monday() - dt.timedelta(days=1))
    assert "on or after the first day" in str(error.value)
    with pytest.raises(ValidationError) as error:
        _create(circle, monday(), monday() + dt.timedelta(days=40))
    assert "at most 31 days" in str(error.value)
    with pytest.raises(ValidationError) as error:
        _create(circle, monday(), day_start=dt.time(12), day_end=dt.time(9))
    assert "latest time must be after" in str(error.value)


def test_proposal_queries_do_not_grow_with_the_number_of_invitees(circle: Circle) -> None:
    def count(invitees: list[User]) -> int:
        with CaptureQueriesContext(connection) as queries:
            poll_proposals(
                program=circle.program,
                mentor=circle.mentor,
                invitees=invitees,
                duration=dt.timedelta(hours=1),
                periods=proposal_periods(
                    date_from=monday(),
                    date_to=monday() + dt.timedelta(days=4),
                    day_start=None,
                    day_end=None,
                    zone=UTC,
                ),
                required=None,
                zone=UTC,
            )
        return len(queries)

    many = [UserFactory() for _ in range(15)]
    for user in many[:8]:
        connect_calendar(user)
        busy(user, at(monday(), 9), at(monday(), 10))
    assert count(circle.mentees) == count(circle.mentees + many)
