"""Busy time from iCalendar resources, and the resource Convene writes.

Pure functions: no database, no server. Times in the expectations are written out in
UTC by hand, so a change in how zones, floating times or DST are read shows up here.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.calendars.providers import ical
from apps.calendars.providers.base import BadDataError, BusyInstance, BusyKind, EventPayload, Window
from apps.calendars.providers.ical import (
    MAX_INSTANCES_PER_EVENT,
    MAX_RULE_STEPS,
    busy_instances,
    convene_uid,
    event_to_ical,
    is_convene_uid,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
HREF = "/calendars/ana/work/event-1.ics"


def utc(*fields: int) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=dt.UTC)


WINDOW = Window(start=utc(2025, 3, 1), end=utc(2025, 5, 1))


def calendar(*events: str, before: str = "") -> str:
    """A VCALENDAR around VEVENTs given as their property lines; `before` adds
    components (VTIMEZONE, VTODO) ahead of them."""
    body = "".join(
        "BEGIN:VEVENT\nDTSTAMP:20250101T000000Z\n" + _lines(event) + "END:VEVENT\n"
        for event in events
    )
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Other//App//EN\n{_lines(before)}{body}"
    return (text + "END:VCALENDAR\n").replace("\n", "\r\n")


def _lines(text: str) -> str:
    return "".join(f"{line.strip()}\n" for line in text.strip().splitlines() if line.strip())


def event(times: str, extra: str = "", uid: str = "private-1@example.com") -> str:
    return f"UID:{uid}\nSUMMARY:Private: dentist\nDESCRIPTION:Secret notes\n{times}\n{extra}"


def busy(
    data: str | bytes, *, window: Window = WINDOW, zone: ZoneInfo = BERLIN
) -> list[BusyInstance]:
    return busy_instances(data, event_id=HREF, window=window, zone=zone)


def spans(instances: list[BusyInstance]) -> list[tuple[dt.datetime, dt.datetime, dt.datetime]]:
    """(instance start, start, end) of each instance, for compact expectations."""
    return [(i.instance_start, i.start, i.end) for i in instances]


# ---------------------------------------------------------------------------------
# Single events.
# ---------------------------------------------------------------------------------


def test_single_event_is_one_busy_instance_in_utc() -> None:
    data = calendar(
        event(
            "DTSTART;TZID=Europe/Berlin:20250305T090000\nDTEND;TZID=Europe/Berlin:20250305T100000"
        )
    )

    found = busy(data, zone=NEW_YORK)

    assert found == [
        BusyInstance(
            event_id=HREF,
            instance_start=utc(2025, 3, 5, 8),
            start=utc(2025, 3, 5, 8),
            end=utc(2025, 3, 5, 9),
            all_day=False,
            kind=BusyKind.BUSY,
        )
    ]
    assert {found[0].start.tzinfo, found[0].end.tzinfo, found[0].instance_start.tzinfo} == {dt.UTC}


def test_resource_given_as_bytes_reads_like_text() -> None:
    data = calendar(event("DTSTART:20250305T090000Z\nDTEND:20250305T100000Z"))

    assert busy(data.encode()) == busy(data)
    assert spans(busy(data)) == [(utc(2025, 3, 5, 9), utc(2025, 3, 5, 9), utc(2025, 3, 5, 10))]


def test_duration_gives_the_end() -> None:
    data = calendar(event("DTSTART:20250305T090000Z\nDURATION:PT1H30M"))

    assert spans(busy(data)) == [(utc(2025, 3, 5, 9), utc(2025, 3, 5, 9), utc(2025, 3, 5, 10, 30))]


def test_event_without_end_or_duration_takes_no_time() -> None:
    assert busy(calendar(event("DTSTART:20250305T090000Z"))) == []


def test_outlook_time_zone_defined_in_the_resource_is_honoured() -> None:
    vtimezone = """
        BEGIN:VTIMEZONE
        TZID:Customized Time Zone
        BEGIN:STANDARD
        DTSTART:16010101T030000
        TZOFFSETFROM:+0200
        TZOFFSETTO:+0100
        RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:16010101T020000
        TZOFFSETFROM:+0100
        TZOFFSETTO:+0200
        RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
        END:DAYLIGHT
        END:VTIMEZONE
    """
    data = calendar(
        event(
            "DTSTART;TZID=Customized Time Zone:20250407T090000\n"
            "DTEND;TZID=Customized Time Zone:20250407T100000"
        ),
        before=vtimezone,
    )

    assert spans(busy(data, zone=NEW_YORK)) == [
        (utc(2025, 4, 7, 7), utc(2025, 4, 7, 7), utc(2025, 4, 7, 8))
    ]


# ---------------------------------------------------------------------------------
# All-day and multi-day events: the owner's local days.
# ---------------------------------------------------------------------------------


def test_all_day_event_covers_the_owners_local_day() -> None:
    data = calendar(event("DTSTART;VALUE=DATE:20250305\nDTEND;VALUE=DATE:20250306"))

    assert busy(data, zone=NEW_YORK) == [
        BusyInstance(
            event_id=HREF,
            instance_start=utc(2025, 3, 5, 5),
            start=utc(2025, 3, 5, 5),
            end=utc(2025, 3, 6, 5),
            all_day=True,
            kind=BusyKind.BUSY,
        )
    ]


def test_all_day_event_without_dtend_lasts_one_day() -> None:
    data = calendar(event("DTSTART;VALUE=DATE:20250305"))

    assert spans(busy(data, zone=TOKYO)) == [
        (utc(2025, 3, 4, 15), utc(2025, 3, 4, 15), utc(2025, 3, 5, 15))
    ]


def test_multi_day_all_day_event_ends_at_local_midnight_after_a_dst_change() -> None:
    # New York moves its clocks forward on 9 March 2025: the last midnight is EDT.
    data = calendar(event("DTSTART;VALUE=DATE:20250308\nDTEND;VALUE=DATE:20250311"))

    found = busy(data, zone=NEW_YORK)

    assert spans(found) == [(utc(2025, 3, 8, 5), utc(2025, 3, 8, 5), utc(2025, 3, 11, 4))]
    assert found[0].all_day


def test_all_day_duration_in_days() -> None:
    data = calendar(event("DTSTART;VALUE=DATE:20250305\nDURATION:P2D"))

    assert spans(busy(data, zone=BERLIN)) == [
        (utc(2025, 3, 4, 23), utc(2025, 3, 4, 23), utc(2025, 3, 6, 23))
    ]


def test_multi_day_timed_event_is_one_instance() -> None:
    data = calendar(event("DTSTART:20250305T160000Z\nDTEND:20250308T120000Z"))

    assert spans(busy(data)) == [(utc(2025, 3, 5, 16), utc(2025, 3, 5, 16), utc(2025, 3, 8, 12))]


# ---------------------------------------------------------------------------------
# What kind of busy, if at all.
# ---------------------------------------------------------------------------------

ONE_HOUR = "DTSTART:20250305T090000Z\nDTEND:20250305T100000Z"


def test_transparent_event_is_not_busy() -> None:
    assert busy(calendar(event(ONE_HOUR, "TRANSP:TRANSPARENT"))) == []
    assert len(busy(calendar(event(ONE_HOUR, "TRANSP:OPAQUE")))) == 1


def test_cancelled_event_is_not_busy() -> None:
    assert busy(calendar(event(ONE_HOUR, "STATUS:CANCELLED"))) == []
    assert len(busy(calendar(event(ONE_HOUR, "STATUS:CONFIRMED")))) == 1


def test_tentative_status_is_tentative() -> None:
    [instance] = busy(calendar(event(ONE_HOUR, "STATUS:TENTATIVE")))

    assert instance.kind == BusyKind.TENTATIVE


@pytest.mark.parametrize(
    ("busystatus", "transp", "kind"),
    [
        ("FREE", "OPAQUE", None),
        ("WORKINGELSEWHERE", "OPAQUE", None),
        ("TENTATIVE", "OPAQUE", BusyKind.TENTATIVE),
        ("OOF", "OPAQUE", BusyKind.OUT_OF_OFFICE),
        ("BUSY", "TRANSPARENT", BusyKind.BUSY),
        ("OOF", "TRANSPARENT", BusyKind.OUT_OF_OFFICE),
    ],
)
def test_microsoft_busy_status_decides_over_transparency(
    busystatus: str, transp: str, kind: BusyKind | None
) -> None:
    extra = f"X-MICROSOFT-CDO-BUSYSTATUS:{busystatus}\nTRANSP:{transp}"

    found = busy(calendar(event(ONE_HOUR, extra)))

    assert [instance.kind for instance in found] == ([] if kind is None else [kind])


def test_microsoft_busy_status_decides_over_tentative_status() -> None:
    extra = "X-MICROSOFT-CDO-BUSYSTATUS:OOF\nSTATUS:TENTATIVE"

    assert [i.kind for i in busy(calendar(event(ONE_HOUR, extra)))] == [BusyKind.OUT_OF_OFFICE]


def test_cancelled_event_stays_free_whatever_its_busy_status() -> None:
    extra = "X-MICROSOFT-CDO-BUSYSTATUS:BUSY\nSTATUS:CANCELLED"

    assert busy(calendar(event(ONE_HOUR, extra))) == []


def test_tasks_are_not_busy() -> None:
    todo = "BEGIN:VTODO\nUID:todo-1\nDTSTAMP:20250101T000000Z\nDUE:20250305T090000Z\nEND:VTODO"

    assert busy(calendar(before=todo)) == []


# ---------------------------------------------------------------------------------
# Recurrence.
# ---------------------------------------------------------------------------------


def test_weekly_series_honours_exdate_moved_and_cancelled_instances() -> None:
    master = event(
        "DTSTART;TZID=Europe/Berlin:20250303T100000\nDTEND;TZID=Europe/Berlin:20250303T110000",
        "RRULE:FREQ=WEEKLY;COUNT=5\nEXDATE;TZID=Europe/Berlin:20250310T100000",
    )
    moved = event(
        "DTSTART;TZID=Europe/Berlin:20250318T140000\nDTEND;TZID=Europe/Berlin:20250318T150000",
        "RECURRENCE-ID;TZID=Europe/Berlin:20250317T100000",
    )
    cancelled = event(
        "DTSTART;TZID=Europe/Berlin:20250324T100000\nDTEND;TZID=Europe/Berlin:20250324T110000",
        "RECURRENCE-ID;TZID=Europe/Berlin:20250324T100000\nSTATUS:CANCELLED",
    )

    found = busy(calendar(master, moved, cancelled))

    assert spans(found) == [
        (utc(2025, 3, 3, 9), utc(2025, 3, 3, 9), utc(2025, 3, 3, 10)),
        # moved: identified by its original start, busy at its new time
        (utc(2025, 3, 17, 9), utc(2025, 3, 18, 13), utc(2025, 3, 18, 14)),
        # after the change to summer time: still 10:00 in Berlin
        (utc(2025, 3, 31, 8), utc(2025, 3, 31, 8), utc(2025, 3, 31, 9)),
    ]
    assert {instance.event_id for instance in found} == {HREF}


def test_override_may_change_the_kind_of_one_instance() -> None:
    master = event("DTSTART:20250303T100000Z\nDTEND:20250303T110000Z", "RRULE:FREQ=DAILY;COUNT=2")
    tentative = event(
        "DTSTART:20250304T100000Z\nDTEND:20250304T110000Z",
        "RECURRENCE-ID:20250304T100000Z\nSTATUS:TENTATIVE",
    )

    assert [i.kind for i in busy(calendar(master, tentative))] == [
        BusyKind.BUSY,
        BusyKind.TENTATIVE,
    ]


def test_override_without_its_series_is_busy() -> None:
    # Servers hand out a lone override when the owner is invited to one instance only.
    data = calendar(
        event("DTSTART:20250318T140000Z\nDTEND:20250318T150000Z", "RECURRENCE-ID:20250317T100000Z")
    )

    assert spans(busy(data)) == [(utc(2025, 3, 17, 10), utc(2025, 3, 18, 14), utc(2025, 3, 18, 15))]


def test_this_and_future_override_keeps_instance_starts_unique() -> None:
    master = event("DTSTART:20250303T090000Z\nDTEND:20250303T100000Z", "RRULE:FREQ=WEEKLY;COUNT=4")
    later = event(
        "DTSTART:20250317T110000Z\nDTEND:20250317T120000Z",
        "RECURRENCE-ID;RANGE=THISANDFUTURE:20250317T090000Z",
    )

    found = busy(calendar(master, later))

    assert [i.start for i in found] == [
        utc(2025, 3, 3, 9),
        utc(2025, 3, 10, 9),
        utc(2025, 3, 17, 11),
        utc(2025, 3, 24, 11),
    ]
    assert len({i.instance_start for i in found}) == len(found)


def test_weekly_series_keeps_berlin_local_time_across_dst_changes() -> None:
    data = calendar(
        event(
            "DTSTART;TZID=Europe/Berlin:20250317T090000\nDTEND;TZID=Europe/Berlin:20250317T100000",
            "RRULE:FREQ=WEEKLY",
        )
    )
    spring = Window(start=utc(2025, 3, 17), end=utc(2025, 4, 1))
    autumn = Window(start=utc(2025, 10, 13), end=utc(2025, 11, 1))

    # Berlin: summer time from 30 March, winter time again from 26 October.
    assert [i.start for i in busy(data, window=spring, zone=TOKYO)] == [
        utc(2025, 3, 17, 8),
        utc(2025, 3, 24, 8),
        utc(2025, 3, 31, 7),
    ]
    assert [i.start for i in busy(data, window=autumn, zone=TOKYO)] == [
        utc(2025, 10, 13, 7),
        utc(2025, 10, 20, 7),
        utc(2025, 10, 27, 8),
    ]


def test_weekly_series_keeps_new_york_local_time_across_dst_changes() -> None:
    data = calendar(
        event(
            "DTSTART;TZID=America/New_York:20250305T090000\n"
            "DTEND;TZID=America/New_York:20250305T093000",
            "RRULE:FREQ=WEEKLY",
        )
    )
    spring = Window(start=utc(2025, 3, 1), end=utc(2025, 3, 15))
    autumn = Window(start=utc(2025, 10, 27), end=utc(2025, 11, 10))

    # New York: daylight time from 9 March, standard time again from 2 November.
    assert spans(busy(data, window=spring, zone=BERLIN)) == [
        (utc(2025, 3, 5, 14), utc(2025, 3, 5, 14), utc(2025, 3, 5, 14, 30)),
        (utc(2025, 3, 12, 13), utc(2025, 3, 12, 13), utc(2025, 3, 12, 13, 30)),
    ]
    assert spans(busy(data, window=autumn, zone=BERLIN)) == [
        (utc(2025, 10, 29, 13), utc(2025, 10, 29, 13), utc(2025, 10, 29, 13, 30)),
        (utc(2025, 11, 5, 14), utc(2025, 11, 5, 14), utc(2025, 11, 5, 14, 30)),
    ]


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
    ),
    first_day=st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2025, 12, 31)),
    # 04:00-23:59 avoids the hours that do not exist on a change day
    hour=st.integers(min_value=4, max_value=23),
    minute=st.sampled_from([0, 15, 30, 45]),
    count=st.integers(min_value=1, max_value=60),
)
def test_weekly_series_keeps_its_local_wall_time(
    zone_name: str, first_day: dt.date, hour: int, minute: int, count: int
) -> None:
    data = calendar(
        event(
            f"DTSTART;TZID={zone_name}:{first_day:%Y%m%d}T{hour:02d}{minute:02d}00\nDURATION:PT45M",
            f"RRULE:FREQ=WEEKLY;COUNT={count}",
        )
    )
    window = Window(start=utc(2024, 12, 1), end=utc(2027, 6, 1))
    zone = ZoneInfo(zone_name)

    found = busy(data, window=window, zone=TOKYO)

    assert len(found) == count
    for week, instance in enumerate(found):
        local = instance.start.astimezone(zone)
        assert local.date() == first_day + dt.timedelta(weeks=week)
        assert (local.hour, local.minute) == (hour, minute)
        assert instance.end - instance.start == dt.timedelta(minutes=45)
        assert instance.instance_start == instance.start


# ---------------------------------------------------------------------------------
# Floating times: the owner's zone.
# ---------------------------------------------------------------------------------


def test_floating_time_is_read_in_the_owners_zone() -> None:
    data = calendar(event("DTSTART:20250305T090000\nDTEND:20250305T100000"))

    assert [i.start for i in busy(data, zone=TOKYO)] == [utc(2025, 3, 5, 0)]
    assert [i.start for i in busy(data, zone=BERLIN)] == [utc(2025, 3, 5, 8)]


def test_floating_series_follows_the_owners_dst_change() -> None:
    data = calendar(
        event("DTSTART:20250324T090000\nDTEND:20250324T100000", "RRULE:FREQ=WEEKLY;COUNT=2")
    )

    assert spans(busy(data, zone=BERLIN)) == [
        (utc(2025, 3, 24, 8), utc(2025, 3, 24, 8), utc(2025, 3, 24, 9)),
        (utc(2025, 3, 31, 7), utc(2025, 3, 31, 7), utc(2025, 3, 31, 8)),
    ]


def test_unknown_time_zone_is_read_in_the_owners_zone() -> None:
    # No VTIMEZONE and no IANA name: icalendar leaves the time floating.
    data = calendar(
        event(
            "DTSTART;TZID=Nowhere/Invented:20250305T090000\n"
            "DTEND;TZID=Nowhere/Invented:20250305T100000"
        )
    )

    assert [i.start for i in busy(data, zone=TOKYO)] == [utc(2025, 3, 5, 0)]


# ---------------------------------------------------------------------------------
# The window.
# ---------------------------------------------------------------------------------


def test_only_occurrences_overlapping_the_window_are_returned_whole() -> None:
    data = calendar(
        event("DTSTART:20250301T090000Z\nDTEND:20250301T100000Z", "RRULE:FREQ=DAILY;COUNT=10")
    )
    window = Window(start=utc(2025, 3, 3, 9, 30), end=utc(2025, 3, 5, 9))

    # 3 March overlaps the window start and is not clipped; 5 March starts at its end.
    assert spans(busy(data, window=window)) == [
        (utc(2025, 3, 3, 9), utc(2025, 3, 3, 9), utc(2025, 3, 3, 10)),
        (utc(2025, 3, 4, 9), utc(2025, 3, 4, 9), utc(2025, 3, 4, 10)),
    ]


def test_event_ending_at_the_window_start_is_outside() -> None:
    data = calendar(event("DTSTART:20250301T080000Z\nDTEND:20250301T090000Z"))

    assert busy(data, window=Window(start=utc(2025, 3, 1, 9), end=utc(2025, 3, 2))) == []
    assert len(busy(data, window=Window(start=utc(2025, 3, 1, 8, 59), end=utc(2025, 3, 2)))) == 1


@pytest.mark.parametrize(
    ("day", "zone", "start", "end"),
    [
        # 28 February in New York ends at 05:00 UTC on 1 March, inside the window
        ("20250228", NEW_YORK, utc(2025, 2, 28, 5), utc(2025, 3, 1, 5)),
        # 1 May in Tokyo begins at 15:00 UTC on 30 April, inside the window
        ("20250501", TOKYO, utc(2025, 4, 30, 15), utc(2025, 5, 1, 15)),
    ],
)
def test_all_day_event_at_the_window_edge_is_judged_by_the_owners_day(
    day: str, zone: ZoneInfo, start: dt.datetime, end: dt.datetime
) -> None:
    data = calendar(event(f"DTSTART;VALUE=DATE:{day}"))

    assert spans(busy(data, zone=zone)) == [(start, start, end)]


def test_long_event_begun_before_the_window_is_included() -> None:
    data = calendar(event("DTSTART;VALUE=DATE:20250220\nDTEND;VALUE=DATE:20250310"))

    assert spans(busy(data, zone=BERLIN)) == [
        (utc(2025, 2, 19, 23), utc(2025, 2, 19, 23), utc(2025, 3, 9, 23))
    ]


# ---------------------------------------------------------------------------------
# Bounded work.
# ---------------------------------------------------------------------------------


def _timed_bad_data(data: str) -> tuple[BadDataError, float]:
    began = time.monotonic()
    with pytest.raises(BadDataError) as caught:
        busy(data)
    return caught.value, time.monotonic() - began


def test_secondly_series_without_end_fails_fast_with_bad_data() -> None:
    data = calendar(event("DTSTART:20250301T000000Z\nDURATION:PT1S", "RRULE:FREQ=SECONDLY"))

    problem, seconds = _timed_bad_data(data)

    assert seconds < 2
    assert problem.item == HREF
    assert str(MAX_INSTANCES_PER_EVENT) in problem.message


def test_minutely_series_begun_years_before_the_window_fails_fast_with_bad_data() -> None:
    # All its 5 million occurrences lie before the window: the walk there is the work.
    data = calendar(event("DTSTART:20150301T000000Z\nDURATION:PT1M", "RRULE:FREQ=MINUTELY"))

    problem, seconds = _timed_bad_data(data)

    assert seconds < 2
    assert problem.item == HREF
    assert str(MAX_RULE_STEPS) in problem.message


def test_expansion_out_of_time_is_bad_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rule whose every step is slow: simulated by a deadline that has already passed.
    monkeypatch.setattr(ical, "MAX_EXPANSION_SECONDS", -1.0)
    data = calendar(event(ONE_HOUR, "RRULE:FREQ=DAILY;COUNT=3"))

    problem, _ = _timed_bad_data(data)

    assert "too long" in problem.message
    assert problem.item == HREF


def test_series_at_the_instance_cap_is_expanded_and_one_more_is_refused() -> None:
    rule = "RRULE:FREQ=MINUTELY;INTERVAL=15;COUNT={count}"
    times = "DTSTART:20250301T000000Z\nDURATION:PT5M"

    assert len(busy(calendar(event(times, rule.format(count=MAX_INSTANCES_PER_EVENT))))) == (
        MAX_INSTANCES_PER_EVENT
    )
    with pytest.raises(BadDataError):
        busy(calendar(event(times, rule.format(count=MAX_INSTANCES_PER_EVENT + 1))))


def test_daily_series_begun_long_ago_is_still_expanded() -> None:
    data = calendar(event("DTSTART:19500301T090000Z\nDTEND:19500301T100000Z", "RRULE:FREQ=DAILY"))
    began = time.monotonic()

    found = busy(data, window=Window(start=utc(2025, 3, 1), end=utc(2025, 4, 1)))

    assert time.monotonic() - began < 2
    assert [i.start for i in found] == [utc(2025, 3, day, 9) for day in range(1, 32)]


# ---------------------------------------------------------------------------------
# Malformed data: BadDataError, and nothing else.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("", id="empty"),
        pytest.param("this is not a calendar", id="prose"),
        pytest.param(b"\xff\xfe\x00\x01garbage", id="binary"),
        pytest.param(
            "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20250305T090000Z\r\nEND:VEVENT\r\n",
            id="event-without-calendar",
        ),
        pytest.param("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\n", id="truncated"),
        pytest.param(calendar(event("DTEND:20250305T100000Z")), id="no-dtstart"),
        pytest.param(
            calendar(event("DTSTART:20250305T100000Z\nDTEND:20250305T090000Z")),
            id="dtend-before-dtstart",
        ),
        pytest.param(
            calendar(event("DTSTART;VALUE=DATE:20250306\nDTEND;VALUE=DATE:20250305")),
            id="all-day-dtend-before-dtstart",
        ),
        pytest.param(
            calendar(event("DTSTART:20250305T100000Z\nDURATION:-PT1H")), id="negative-duration"
        ),
        pytest.param(
            calendar(event("DTSTART:tomorrow\nDTEND:20250305T100000Z")), id="dtstart-not-a-date"
        ),
        pytest.param(
            calendar(event("DTSTART:20250305T090000Z\nDTSTART:20250306T090000Z\nDURATION:PT1H")),
            id="two-dtstarts",
        ),
        pytest.param(
            calendar(event(ONE_HOUR, "RRULE:FREQ=SOMETIMES")), id="rrule-unknown-frequency"
        ),
        pytest.param(calendar(event(ONE_HOUR, "RRULE:whenever")), id="rrule-without-freq"),
        pytest.param(
            calendar(event(ONE_HOUR, "RRULE:FREQ=DAILY;UNTIL=someday")), id="rrule-bad-until"
        ),
        pytest.param(calendar(event(ONE_HOUR, "RRULE:FREQ=WEEKLY;BYDAY=XX")), id="rrule-bad-byday"),
        pytest.param(calendar(event(ONE_HOUR, "RRULE:FREQ=DAILY\nEXDATE:never")), id="bad-exdate"),
        pytest.param(calendar(event(ONE_HOUR, "RECURRENCE-ID:soon")), id="bad-recurrence-id"),
        pytest.param(
            calendar(event(ONE_HOUR), before="CALSCALE:ETHIOPIC"), id="other-calendar-scale"
        ),
    ],
)
def test_malformed_resource_raises_bad_data_for_its_href(data: str | bytes) -> None:
    with pytest.raises(BadDataError) as caught:
        busy(data)

    assert caught.value.item == HREF
    assert caught.value.message


def test_bad_data_message_does_not_quote_the_event() -> None:
    # Skipped items are stored and shown; a parser's message quoting the line would
    # carry the title into places it must never go.
    data = calendar(event("DTSTART:Divorce lawyer\nDURATION:PT1H"))

    with pytest.raises(BadDataError) as caught:
        busy(data)

    assert "lawyer" not in caught.value.message


SERIES = calendar(
    event(
        "DTSTART;TZID=Europe/Berlin:20250303T100000\nDTEND;TZID=Europe/Berlin:20250303T110000",
        "RRULE:FREQ=WEEKLY;UNTIL=20250501T000000Z\nEXDATE;TZID=Europe/Berlin:20250310T100000\n"
        "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE",
    ),
    event(
        "DTSTART;TZID=Europe/Berlin:20250318T140000\nDURATION:PT1H",
        "RECURRENCE-ID;TZID=Europe/Berlin:20250317T100000\nSTATUS:TENTATIVE",
    ),
    event(
        "DTSTART;VALUE=DATE:20250320\nDTEND;VALUE=DATE:20250322",
        "TRANSP:OPAQUE\nRDATE;VALUE=DATE:20250410",
        uid="other@example.com",
    ),
)


def _assert_only_bad_data_or_valid_instances(data: str | bytes) -> None:
    try:
        found, item = busy(data), HREF
    except BadDataError as problem:
        found, item = [], problem.item
    assert item == HREF
    for instance in found:
        assert instance.event_id == HREF
        assert instance.start.tzinfo is dt.UTC
        assert instance.instance_start.tzinfo is dt.UTC
        assert instance.start < instance.end
        assert instance.start < WINDOW.end
        assert instance.end > WINDOW.start


def test_undamaged_series_is_fully_busy() -> None:
    # Otherwise the damage below would start from data that is broken already.
    assert len(busy(SERIES)) == 10


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.text(), st.binary()))
def test_arbitrary_input_raises_only_bad_data(data: str | bytes) -> None:
    _assert_only_bad_data_or_valid_instances(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damage=st.data())
def test_damaged_resource_raises_only_bad_data(damage: st.DataObject) -> None:
    lines = SERIES.split("\r\n")
    for _ in range(damage.draw(st.integers(min_value=1, max_value=3))):
        index = damage.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        how = damage.draw(st.sampled_from(["drop", "repeat", "value", "insert"]))
        if how == "drop":
            del lines[index]
        elif how == "repeat":
            lines.insert(index, lines[index])
        elif how == "value":
            name = lines[index].partition(":")[0]
            lines[index] = f"{name}:{damage.draw(st.text(max_size=30))}"
        else:
            lines.insert(index, damage.draw(st.text(max_size=40)))
        if not lines:
            break

    _assert_only_bad_data_or_valid_instances("\r\n".join(lines))


# ---------------------------------------------------------------------------------
# Convene's own events.
# ---------------------------------------------------------------------------------


def test_resource_with_convene_uid_is_not_busy() -> None:
    uid = convene_uid("appointment-42-calendar-7")

    assert busy(calendar(event(ONE_HOUR, uid=uid))) == []
    assert len(busy(calendar(event(ONE_HOUR, uid="appointment-42@example.com")))) == 1


def test_resource_with_convene_property_is_not_busy() -> None:
    assert busy(calendar(event(ONE_HOUR, "X-CONVENE-EVENT:1"))) == []


def test_convene_marker_on_an_override_frees_the_whole_series() -> None:
    master = event(ONE_HOUR, "RRULE:FREQ=DAILY;COUNT=3", uid=convene_uid("appointment-1"))
    moved = event(
        "DTSTART:20250306T120000Z\nDTEND:20250306T130000Z",
        "RECURRENCE-ID:20250306T090000Z",
        uid=convene_uid("appointment-1"),
    )

    assert busy(calendar(master, moved)) == []


def test_event_titled_like_convenes_is_still_busy() -> None:
    data = calendar(event(ONE_HOUR, "SUMMARY:Requested: Career chat"))

    assert len(busy(data)) == 1


def test_convene_uid_is_deterministic_and_recognised() -> None:
    uid = convene_uid("appointment-42-calendar-7")

    assert uid == convene_uid("appointment-42-calendar-7")
    assert uid != convene_uid("appointment-42-calendar-8")
    assert is_convene_uid(uid)
    assert not is_convene_uid("appointment-42-calendar-7@example.com")
    assert not is_convene_uid(uid.split("@")[0])
    assert not is_convene_uid("@" + uid.split("@")[1])


@pytest.mark.parametrize("key", ["", "a/b", "a b", "../x", "é"])
def test_convene_uid_refuses_keys_unsafe_in_an_href(key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        convene_uid(key)


# ---------------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------------

PAYLOAD = EventPayload(
    uid=convene_uid("appointment-42-calendar-7"),
    title="Requested: Career chat, CV; with Ana",
    start=dt.datetime(2025, 3, 5, 9, 0, tzinfo=BERLIN),
    end=dt.datetime(2025, 3, 5, 9, 45, tzinfo=BERLIN),
    description="Bring your CV.\nSecond line",
    location="Room 3, Main building",
    join_url="https://meet.example.com/abc?x=1&y=2",
)


def _parsed(text: str) -> tuple[icalendar.Calendar, icalendar.Event]:
    parsed = icalendar.Calendar.from_ical(text)
    assert isinstance(parsed, icalendar.Calendar)
    [vevent] = parsed.events
    return parsed, vevent


def test_event_to_ical_round_trips() -> None:
    stamp = utc(2025, 3, 1, 12)

    parsed, vevent = _parsed(event_to_ical(PAYLOAD, stamp=stamp))

    assert str(parsed["PRODID"]) == "-//Convene//Convene//EN"
    assert str(parsed["VERSION"]) == "2.0"
    assert vevent.uid == PAYLOAD.uid
    assert vevent.start == utc(2025, 3, 5, 8)
    assert vevent.end == utc(2025, 3, 5, 8, 45)
    assert vevent["DTSTART"].to_ical() == b"20250305T080000Z"
    assert vevent["DTEND"].to_ical() == b"20250305T084500Z"
    assert vevent["DTSTAMP"].dt == stamp
    assert str(vevent["SUMMARY"]) == PAYLOAD.title
    assert str(vevent["DESCRIPTION"]).startswith(PAYLOAD.description)
    assert PAYLOAD.join_url in str(vevent["DESCRIPTION"])
    assert str(vevent["LOCATION"]) == PAYLOAD.location
    assert str(vevent["URL"]) == PAYLOAD.join_url
    assert str(vevent["TRANSP"]) == "OPAQUE"
    assert str(vevent["X-CONVENE-EVENT"]) == "1"


def test_event_to_ical_is_stable_for_the_same_stamp() -> None:
    stamp = utc(2025, 3, 1, 12)

    assert event_to_ical(PAYLOAD, stamp=stamp) == event_to_ical(PAYLOAD, stamp=stamp)


def test_event_to_ical_marks_a_free_event_transparent() -> None:
    free = EventPayload(
        uid=PAYLOAD.uid, title="x", start=PAYLOAD.start, end=PAYLOAD.end, busy=False
    )

    _, vevent = _parsed(event_to_ical(free))

    assert str(vevent["TRANSP"]) == "TRANSPARENT"
    assert "URL" not in vevent
    assert "DESCRIPTION" not in vevent
    assert "LOCATION" not in vevent


def test_event_to_ical_adds_the_join_url_to_an_empty_description() -> None:
    online = EventPayload(
        uid=PAYLOAD.uid,
        title="x",
        start=PAYLOAD.start,
        end=PAYLOAD.end,
        join_url="https://meet.example.com/abc",
    )

    _, vevent = _parsed(event_to_ical(online))

    assert str(vevent["DESCRIPTION"]) == "Join: https://meet.example.com/abc"


def test_event_convene_wrote_is_recognised_by_either_marker() -> None:
    text = event_to_ical(PAYLOAD)
    without_property = text.replace("X-CONVENE-EVENT:1\r\n", "")
    without_uid = text.replace(PAYLOAD.uid, "foreign@example.com")
    without_either = without_property.replace(PAYLOAD.uid, "foreign@example.com")

    assert busy(text) == []
    assert busy(without_property) == []
    assert busy(without_uid) == []
    assert spans(busy(without_either)) == [
        (utc(2025, 3, 5, 8), utc(2025, 3, 5, 8), utc(2025, 3, 5, 8, 45))
    ]


def test_event_to_ical_refuses_naive_times() -> None:
    naive = EventPayload(
        uid=PAYLOAD.uid,
        title="x",
        start=dt.datetime(2025, 3, 5, 9),  # noqa: DTZ001 - the mistake under test
        end=PAYLOAD.end,
    )

    with pytest.raises(ValueError, match="aware"):
        event_to_ical(naive)
