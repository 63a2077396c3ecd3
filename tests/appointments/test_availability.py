from __future__ import annotations

import random
import statistics
import time as timer
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.appointments.availability import (
    Group,
    Interval,
    Member,
    Query,
    SyncStatus,
    WorkingRules,
    availability,
)
from tests.appointments.oracle import MINUTE, oracle

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # DST moves the clock by 30 minutes
    "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45 local
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# UTC instants of the 2025 DST changes of ZONES, so random windows around them cross one.
DST_CHANGES = {
    "Europe/Berlin": [utc(2025, 3, 30, 1), utc(2025, 10, 26, 1)],
    "America/New_York": [utc(2025, 3, 9, 7), utc(2025, 11, 2, 6)],
    "Australia/Lord_Howe": [utc(2025, 4, 5, 15), utc(2025, 10, 4, 15, 30)],
    "Pacific/Chatham": [utc(2025, 4, 5, 14), utc(2025, 9, 27, 14)],
}
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def span(start: datetime, end: datetime) -> Interval:
    return Interval(start, end)


def one_group_query(
    members: Sequence[Member], periods: Sequence[Interval], minutes: int, **options: Any
) -> Query:
    return Query(
        groups=[Group(members)],
        periods=periods,
        duration=timedelta(minutes=minutes),
        **options,
    )


def slot_starts(query: Query, overlapping: bool = False) -> list[datetime]:
    return [slot.start for slot in availability(query).slots(overlapping=overlapping)]


# --- the oracle comparison -------------------------------------------------------------

WINDOW = 36 * 60  # minutes of a random query window


@st.composite
def working_rules(draw: st.DrawFn, zones: st.SearchStrategy[str]) -> WorkingRules | None:
    kind = draw(st.sampled_from(["none", "default", "default", "random"]))
    if kind == "none":
        return None
    zone = draw(zones)
    weekends = draw(st.sampled_from([True, True, False]))
    if kind == "default":
        return WorkingRules(zone, weekends_allowed=weekends)
    # Early-morning bounds land on and around the DST changes (01:00-04:00 local).
    earliest = draw(st.integers(0, 1438) | st.integers(60, 240))
    latest = draw(st.integers(earliest + 1, 1439) | st.integers(earliest + 1, earliest + 120))
    return WorkingRules(
        zone,
        weekends_allowed=weekends,
        earliest_start=time(earliest // 60, earliest % 60),
        latest_end=time(min(latest, 1439) // 60, min(latest, 1439) % 60),
    )


@st.composite
def queries(draw: st.DrawFn) -> Query:
    dst_zone = draw(st.sampled_from(list(DST_CHANGES)))
    if draw(st.booleans()):
        # A window that contains a DST change of the zone most members then live in.
        change = draw(st.sampled_from(DST_CHANGES[dst_zone]))
        anchor = change + draw(st.integers(-WINDOW // 2, WINDOW // 2)) * MINUTE
    else:
        week = draw(st.sampled_from([utc(2025, 6, 2), utc(2025, 12, 29)]))
        anchor = week + draw(st.integers(0, 7 * 1440)) * MINUTE
    base = anchor - WINDOW // 2 * MINUTE

    def in_some_zone(instant: datetime) -> datetime:
        # Inputs come in assorted zones: the engine must compare instants, not wall times.
        return instant.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))

    def moment(low: int, high: int) -> datetime:
        return in_some_zone(base + draw(st.integers(low, high)) * MINUTE)

    def interval(low: int, high: int, shortest: int, longest: int) -> Interval:
        start = base + draw(st.integers(low, high)) * MINUTE
        end = start + draw(st.integers(shortest, longest)) * MINUTE
        return Interval(in_some_zone(start), in_some_zone(end))

    pool = [
        Member(
            id=f"m{index}",
            busy=[interval(-600, WINDOW + 600, 1, 240) for _ in range(draw(st.integers(0, 5)))],
            rules=draw(working_rules(st.just(dst_zone) | st.sampled_from(ZONES))),
            sync_status=draw(st.sampled_from(SyncStatus)),
        )
        for index in range(draw(st.integers(1, 4)))
    ]
    groups = []
    for _ in range(draw(st.integers(1, 3))):
        members = draw(st.lists(st.sampled_from(pool), min_size=1, unique_by=lambda m: m.id))
        groups.append(Group(members, draw(st.none() | st.integers(1, len(members)))))
    now = moment(-120, WINDOW) if draw(st.booleans()) else None
    return Query(
        groups=groups,
        # One long period, so that the other constraints decide what is free, plus others.
        periods=[interval(0, WINDOW // 2, WINDOW // 3, WINDOW)]
        + [interval(0, WINDOW - 1, 1, WINDOW) for _ in range(draw(st.integers(0, 2)))],
        duration=draw(st.sampled_from([15, 30, 60]) | st.integers(1, 180)) * MINUTE,
        start_interval=draw(st.sampled_from([1, 5, 7, 15, 30, 60])) * MINUTE,
        buffer_before=draw(st.sampled_from([0, 15]) | st.integers(0, 90)) * MINUTE,
        buffer_after=draw(st.sampled_from([0, 10]) | st.integers(0, 90)) * MINUTE,
        now=now,
        minimum_notice=draw(st.integers(0, 600)) * MINUTE if now else timedelta(0),
        horizon=draw(st.integers(0, WINDOW)) * MINUTE if now and draw(st.booleans()) else None,
    )


def assert_matches_oracle(query: Query) -> None:
    expected = oracle(query)
    result = availability(query)
    assert result.periods == expected.periods
    for overlapping, expected_slots in (
        (True, expected.overlapping_slots),
        (False, expected.slots),
    ):
        slots = result.slots(overlapping=overlapping)
        assert [(slot.start, slot.free_member_ids) for slot in slots] == expected_slots
        assert all(slot.end - slot.start == query.duration for slot in slots)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=queries())
def test_availability_matches_minute_by_minute_oracle(query: Query) -> None:
    assert_matches_oracle(query)


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(list(DST_CHANGES)),
    change=st.integers(0, 1),
    shift=st.integers(-1440, 1440),
    earliest=st.integers(0, 300),
    length=st.integers(1, 1439),
)
def test_working_hours_follow_the_wall_clock_across_dst_changes(
    zone: str, change: int, shift: int, earliest: int, length: int
) -> None:
    # One member, no busy time, one-minute meetings: the free periods are exactly the
    # working hours, with bounds near the DST changes (which happen between 00:00 and 04:00).
    latest = min(earliest + length, 1439)
    rules = WorkingRules(
        zone,
        weekends_allowed=True,
        earliest_start=time(earliest // 60, earliest % 60),
        latest_end=time(latest // 60, latest % 60),
    )
    middle = DST_CHANGES[zone][change] + shift * MINUTE
    query = one_group_query(
        [Member("m", busy=[], rules=rules)],
        [span(middle - timedelta(hours=30), middle + timedelta(hours=30))],
        minutes=1,
        start_interval=MINUTE,
    )
    assert_matches_oracle(query)


def test_dst_anchors_of_the_property_tests_are_real_offset_changes() -> None:
    for zone, changes in DST_CHANGES.items():
        for change in changes:
            before = (change - timedelta(seconds=1)).astimezone(ZoneInfo(zone)).utcoffset()
            assert change.astimezone(ZoneInfo(zone)).utcoffset() != before, (zone, change)


# --- DST days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "first_day", "expected_utc_hours"),
    [
        # Saturday before / Sunday of the change: 08:00-20:00 local in UTC.
        ("Europe/Berlin", (2025, 3, 29), [(7, 19), (6, 18)]),
        ("Europe/Berlin", (2025, 10, 25), [(6, 18), (7, 19)]),
        ("America/New_York", (2025, 3, 8), [(13, 25), (12, 24)]),
        ("America/New_York", (2025, 11, 1), [(12, 24), (13, 25)]),
    ],
)
def test_working_hours_on_dst_change_days_map_to_the_right_utc_times(
    zone: str, first_day: tuple[int, int, int], expected_utc_hours: list[tuple[int, int]]
) -> None:
    midnight = utc(*first_day)
    query = one_group_query(
        [Member("m", busy=[], rules=WorkingRules(zone, weekends_allowed=True))],
        # 06:00 UTC to 06:00 UTC two days later holds whole local days in both zones.
        [span(midnight + timedelta(hours=6), midnight + timedelta(hours=54))],
        minutes=30,
    )
    assert availability(query).periods == [
        span(midnight + timedelta(days=day, hours=start), midnight + timedelta(days=day, hours=end))
        for day, (start, end) in enumerate(expected_utc_hours)
    ]


@pytest.mark.parametrize(
    ("earliest", "latest", "expected"),
    [
        # 02:30 does not exist on 2025-03-30 in Berlin: work starts when the clock jumps
        # from 02:00 CET to 03:00 CEST (01:00 UTC).
        (time(2, 30), time(4, 0), span(utc(2025, 3, 30, 1), utc(2025, 3, 30, 2))),
        # ... and a latest end inside the gap ends work at the jump.
        (time(1, 0), time(2, 30), span(utc(2025, 3, 30, 0), utc(2025, 3, 30, 1))),
    ],
)
def test_working_hours_bound_in_the_spring_forward_gap_snaps_to_the_jump(
    earliest: time, latest: time, expected: Interval
) -> None:
    rules = WorkingRules(
        "Europe/Berlin", earliest_start=earliest, latest_end=latest, weekends_allowed=True
    )
    local_day = span(utc(2025, 3, 29, 23), utc(2025, 3, 30, 22))
    query = one_group_query([Member("m", busy=[], rules=rules)], [local_day], minutes=15)
    assert availability(query).periods == [expected]


def test_working_hours_in_the_repeated_fall_back_hour_count_both_times() -> None:
    rules = WorkingRules(
        "Europe/Berlin", earliest_start=time(2, 15), latest_end=time(2, 45), weekends_allowed=True
    )
    local_day = span(utc(2025, 10, 25, 22), utc(2025, 10, 26, 23))
    query = one_group_query([Member("m", busy=[], rules=rules)], [local_day], minutes=15)
    assert availability(query).periods == [
        span(utc(2025, 10, 26, 0, 15), utc(2025, 10, 26, 0, 45)),  # 02:15-02:45 CEST
        span(utc(2025, 10, 26, 1, 15), utc(2025, 10, 26, 1, 45)),  # 02:15-02:45 CET
    ]


@pytest.mark.parametrize(
    ("local_day", "expected_length"),
    [
        (span(utc(2025, 3, 29, 23), utc(2025, 3, 30, 22)), timedelta(hours=22, minutes=59)),
        (span(utc(2025, 10, 25, 22), utc(2025, 10, 26, 23)), timedelta(hours=24, minutes=59)),
    ],
)
def test_whole_day_working_hours_last_23_or_25_hours_on_dst_days(
    local_day: Interval, expected_length: timedelta
) -> None:
    rules = WorkingRules(
        "Europe/Berlin", earliest_start=time(0, 0), latest_end=time(23, 59), weekends_allowed=True
    )
    query = one_group_query([Member("m", busy=[], rules=rules)], [local_day], minutes=15)
    [period] = availability(query).periods
    assert period.start == local_day.start
    assert period.end - period.start == expected_length


# --- time zones and weekends ------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # Both on summer time: 09-17 Berlin is 07-15 UTC, 09-17 New York is 13-21 UTC.
        (utc(2025, 6, 11), [utc(2025, 6, 11, 13), utc(2025, 6, 11, 14)]),
        # New York already on summer time, Berlin not yet: Berlin works 08-16 UTC.
        (utc(2025, 3, 19), [utc(2025, 3, 19, 13), utc(2025, 3, 19, 14), utc(2025, 3, 19, 15)]),
    ],
)
def test_berlin_and_new_york_members_meet_only_in_their_short_overlap(
    day: datetime, expected: list[datetime]
) -> None:
    berlin = WorkingRules("Europe/Berlin", earliest_start=time(9), latest_end=time(17))
    new_york = WorkingRules("America/New_York", earliest_start=time(9), latest_end=time(17))
    query = one_group_query(
        [
            Member("berlin", busy=[], rules=berlin),
            Member("new-york", busy=[], rules=new_york),
        ],
        [span(day, day + timedelta(days=1))],
        minutes=60,
    )
    assert slot_starts(query) == expected


def test_weekends_are_the_members_local_weekend() -> None:
    # Monday 08:00 in Auckland (+12:00 in June) is Sunday 20:00 UTC.
    sunday_utc = span(utc(2025, 6, 15), utc(2025, 6, 16))
    auckland = Member("auckland", busy=[], rules=WorkingRules("Pacific/Auckland"))
    query = one_group_query([auckland], [sunday_utc], minutes=30)
    assert availability(query).periods == [span(utc(2025, 6, 15, 20), utc(2025, 6, 16))]


def test_weekend_days_are_free_only_when_weekends_are_allowed() -> None:
    saturday = span(utc(2025, 6, 14), utc(2025, 6, 15))
    weekdays_only = Member("a", busy=[], rules=WorkingRules("Europe/Berlin"))
    every_day = Member("b", busy=[], rules=WorkingRules("Europe/Berlin", weekends_allowed=True))
    assert availability(one_group_query([weekdays_only], [saturday], minutes=30)).periods == []
    assert availability(one_group_query([every_day], [saturday], minutes=30)).periods == [
        span(utc(2025, 6, 14, 6), utc(2025, 6, 14, 18))
    ]


# --- busy time and buffers ----------------------------------------------------------------


def test_buffers_keep_meetings_away_from_busy_time_but_not_from_period_edges() -> None:
    member = Member("m", busy=[span(utc(2025, 6, 2, 10), utc(2025, 6, 2, 11))])
    query = one_group_query(
        [member],
        [span(utc(2025, 6, 2, 8), utc(2025, 6, 2, 14))],
        minutes=30,
        buffer_before=timedelta(minutes=15),
        buffer_after=timedelta(minutes=10),
    )
    result = availability(query)
    assert result.periods == [
        span(utc(2025, 6, 2, 8), utc(2025, 6, 2, 9, 50)),
        span(utc(2025, 6, 2, 11, 15), utc(2025, 6, 2, 14)),
    ]
    assert [slot.start for slot in result.slots()] == [
        utc(2025, 6, 2, 8),
        utc(2025, 6, 2, 8, 30),
        utc(2025, 6, 2, 9),
        utc(2025, 6, 2, 11, 15),
        utc(2025, 6, 2, 11, 45),
        utc(2025, 6, 2, 12, 15),
        utc(2025, 6, 2, 12, 45),
        utc(2025, 6, 2, 13, 15),
    ]


def test_busy_intervals_may_be_unsorted_overlapping_and_outside_the_periods() -> None:
    day = utc(2025, 6, 2)
    member = Member(
        "m",
        busy=[
            span(day + timedelta(hours=13), day + timedelta(hours=14)),
            span(day + timedelta(hours=-5), day + timedelta(hours=9, minutes=30)),
            span(day + timedelta(hours=9), day + timedelta(hours=10)),
            span(day + timedelta(hours=13, minutes=30), day + timedelta(hours=13, minutes=45)),
            span(day + timedelta(days=3), day + timedelta(days=4)),
        ],
    )
    query = one_group_query(
        [member], [span(day + timedelta(hours=8), day + timedelta(hours=15))], 30
    )
    assert availability(query).periods == [
        span(day + timedelta(hours=10), day + timedelta(hours=13)),
        span(day + timedelta(hours=14), day + timedelta(hours=15)),
    ]


def test_periods_shorter_than_the_duration_are_dropped() -> None:
    member = Member("m", busy=[span(utc(2025, 6, 2, 9, 20), utc(2025, 6, 2, 10))])
    query = one_group_query([member], [span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 11))], 30)
    assert availability(query).periods == [span(utc(2025, 6, 2, 10), utc(2025, 6, 2, 11))]


def test_everyone_busy_gives_no_periods_and_no_slots() -> None:
    period = span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 17))
    members = [
        Member("a", busy=[span(utc(2025, 6, 2, 8), utc(2025, 6, 2, 13))]),
        Member("b", busy=[span(utc(2025, 6, 2, 12, 45), utc(2025, 6, 2, 18))]),
    ]
    result = availability(one_group_query(members, [period], minutes=30))
    assert result.periods == []
    assert result.slots() == []
    assert result.slots(overlapping=True) == []


# --- groups -----------------------------------------------------------------------------


def hour_busy(member_id: str, hour: int) -> Member:
    return Member(member_id, busy=[span(utc(2025, 6, 2, hour), utc(2025, 6, 2, hour + 1))])


def test_two_of_three_are_enough_and_slots_say_who_is_free() -> None:
    members = [hour_busy("a", 9), hour_busy("b", 10), hour_busy("c", 11)]
    periods = [span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 12))]
    two_of_three = Query([Group(members, required=2)], periods, duration=timedelta(hours=1))
    assert [(slot.start, slot.free_member_ids) for slot in availability(two_of_three).slots()] == [
        (utc(2025, 6, 2, 9), {"b", "c"}),
        (utc(2025, 6, 2, 10), {"a", "c"}),
        (utc(2025, 6, 2, 11), {"a", "b"}),
    ]
    everyone = Query([Group(members)], periods, duration=timedelta(hours=1))
    assert availability(everyone).periods == []


def test_with_n_of_m_a_period_may_hold_starts_that_no_single_member_can_take() -> None:
    # a is free 09:00-10:00, b is free 09:30-11:00: every minute of 09:00-11:00 is
    # covered by a one-hour meeting of one of them, but 09:15-10:15 suits neither.
    a = Member("a", busy=[span(utc(2025, 6, 2, 10), utc(2025, 6, 2, 11))])
    b = Member("b", busy=[span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 9, 30))])
    query = Query(
        [Group([a, b], required=1)],
        [span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 11))],
        duration=timedelta(hours=1),
    )
    result = availability(query)
    assert result.periods == [span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 11))]
    assert [(s.start, s.free_member_ids) for s in result.slots(overlapping=True)] == [
        (utc(2025, 6, 2, 9), {"a"}),
        (utc(2025, 6, 2, 9, 30), {"b"}),
        (utc(2025, 6, 2, 9, 45), {"b"}),
        (utc(2025, 6, 2, 10), {"b"}),
    ]
    assert [slot.start for slot in result.slots()] == [utc(2025, 6, 2, 9), utc(2025, 6, 2, 10)]


def test_all_groups_must_hold_at_once_and_shared_members_count_once() -> None:
    host = hour_busy("host", 9)
    x = hour_busy("x", 10)
    y = Member("y", busy=[span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 11))])
    query = Query(
        [Group([host]), Group([host, x, y], required=2)],
        [span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 12))],
        duration=timedelta(hours=1),
    )
    result = availability(query)
    assert [(s.start, s.free_member_ids) for s in result.slots(overlapping=True)] == [
        (utc(2025, 6, 2, 11), {"host", "x", "y"})
    ]
    assert list(result.member_statuses) == ["host", "x", "y"]


# --- statuses -----------------------------------------------------------------------------


def test_members_without_fresh_calendar_data_are_reported_not_hidden() -> None:
    members = [
        Member("active", busy=[]),
        Member("no-calendar", busy=[], sync_status=SyncStatus.UNKNOWN),
        Member("stale", busy=[], sync_status=SyncStatus.STALE),
        Member("revoked", busy=[], sync_status=SyncStatus.DISCONNECTED),
    ]
    period = span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 10))
    result = availability(one_group_query(members, [period], minutes=60))
    # Evaluated on the (empty) data given, so free, but flagged.
    assert result.periods == [period]
    assert result.member_statuses == {
        "active": SyncStatus.ACTIVE,
        "no-calendar": SyncStatus.UNKNOWN,
        "stale": SyncStatus.STALE,
        "revoked": SyncStatus.DISCONNECTED,
    }
    assert result.unknown_members == {"no-calendar", "stale", "revoked"}


# --- slots, notice, horizon, periods -------------------------------------------------------


def test_slot_starts_align_to_the_interval_from_the_unix_epoch() -> None:
    period = span(utc(2025, 6, 2, 9, 7), utc(2025, 6, 2, 10))
    query = one_group_query([Member("m", busy=[])], [period], minutes=15)
    assert slot_starts(query) == [
        utc(2025, 6, 2, 9, 15),
        utc(2025, 6, 2, 9, 30),
        utc(2025, 6, 2, 9, 45),
    ]


def test_hourly_starts_are_whole_utc_hours_even_in_a_half_hour_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    period = span(datetime(2025, 6, 2, 9, tzinfo=kolkata), datetime(2025, 6, 2, 12, tzinfo=kolkata))
    query = one_group_query(
        [Member("m", busy=[])], [period], minutes=60, start_interval=timedelta(hours=1)
    )
    assert [start.astimezone(kolkata).time() for start in slot_starts(query)] == [
        time(9, 30),
        time(10, 30),
    ]


def test_back_to_back_slots_round_up_to_the_next_aligned_start() -> None:
    period = span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 12))
    query = one_group_query([Member("m", busy=[])], [period], minutes=50)
    assert slot_starts(query) == [utc(2025, 6, 2, 9), utc(2025, 6, 2, 10), utc(2025, 6, 2, 11)]
    overlapping = slot_starts(query, overlapping=True)
    assert overlapping[0] == utc(2025, 6, 2, 9)
    assert overlapping[-1] == utc(2025, 6, 2, 11)
    assert len(overlapping) == 9


def test_notice_bounds_the_start_and_the_horizon_bounds_the_start_not_the_end() -> None:
    query = one_group_query(
        [Member("m", busy=[])],
        [span(utc(2025, 6, 2, 8), utc(2025, 6, 2, 14))],
        minutes=30,
        start_interval=timedelta(minutes=30),
        now=utc(2025, 6, 2, 9),
        minimum_notice=timedelta(hours=1),
        horizon=timedelta(hours=2),
    )
    result = availability(query)
    assert result.periods == [span(utc(2025, 6, 2, 10), utc(2025, 6, 2, 11, 30))]
    assert [slot.start for slot in result.slots(overlapping=True)] == [
        utc(2025, 6, 2, 10),
        utc(2025, 6, 2, 10, 30),
        utc(2025, 6, 2, 11),
    ]


def test_notice_counts_real_time_when_now_is_given_in_a_dst_zone() -> None:
    # 01:30 CEST on the fall-back night; two real hours later the clock shows 02:30 CET
    # (01:30 UTC), not the 03:30 that wall-clock arithmetic would give.
    now = datetime(2025, 10, 26, 1, 30, tzinfo=BERLIN)
    query = one_group_query(
        [Member("m", busy=[])],
        [span(utc(2025, 10, 25, 22), utc(2025, 10, 26, 6))],
        minutes=30,
        now=now,
        minimum_notice=timedelta(hours=2),
    )
    assert slot_starts(query)[0] == utc(2025, 10, 26, 1, 30)


def test_touching_and_overlapping_query_periods_merge() -> None:
    periods = [
        span(utc(2025, 6, 2, 10), utc(2025, 6, 2, 11)),
        span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 10)),
        span(utc(2025, 6, 2, 10, 30), utc(2025, 6, 2, 10, 45)),
    ]
    query = one_group_query([Member("m", busy=[])], periods, minutes=60)
    assert availability(query).periods == [span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 11))]
    assert utc(2025, 6, 2, 9, 30) in slot_starts(query, overlapping=True)


def test_results_are_in_utc_whatever_zone_the_input_uses() -> None:
    period = span(datetime(2025, 6, 2, 9, tzinfo=BERLIN), datetime(2025, 6, 2, 10, tzinfo=BERLIN))
    result = availability(one_group_query([Member("m", busy=[])], [period], minutes=30))
    assert result.periods[0].start.tzinfo is UTC
    assert all(slot.start.tzinfo is UTC for slot in result.slots())
    assert result.periods == [span(utc(2025, 6, 2, 7), utc(2025, 6, 2, 8))]


# --- validation ----------------------------------------------------------------------------

NAIVE = datetime(2025, 6, 2, 9)  # noqa: DTZ001 - the input under test
PERIOD = span(utc(2025, 6, 2, 9), utc(2025, 6, 2, 10))
ALICE = Member("alice", busy=[])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Interval(NAIVE, utc(2025, 6, 2, 10)), "timezone-aware"),
        (lambda: Interval(utc(2025, 6, 2, 10), utc(2025, 6, 2, 10)), "must be after its start"),
        (lambda: Query([Group([ALICE])], [PERIOD], timedelta(0)), "duration must be positive"),
        (
            lambda: Query([Group([ALICE])], [PERIOD], MINUTE, start_interval=-MINUTE),
            "start_interval must be positive",
        ),
        (
            lambda: Query([Group([ALICE])], [PERIOD], MINUTE, buffer_before=-MINUTE),
            "buffer_before must not be negative",
        ),
        (lambda: Query([Group([ALICE])], [PERIOD], MINUTE, now=NAIVE), "now must be timezone"),
        (
            lambda: Query([Group([ALICE])], [PERIOD], MINUTE, minimum_notice=MINUTE),
            "pass now",
        ),
        (lambda: Query([Group([ALICE])], [PERIOD], MINUTE, horizon=MINUTE), "pass now"),
        (lambda: Query([], [PERIOD], MINUTE), "at least one group"),
        (lambda: Query([Group([ALICE])], [], MINUTE), "at least one query period"),
        (lambda: Group([ALICE], required=0), "between 1 and 1"),
        (lambda: Group([ALICE], required=2), "between 1 and 1"),
        (lambda: Group([]), "at least one member"),
        (lambda: Group([ALICE, Member("alice", busy=[])]), "more than once: ['alice']"),
        (
            lambda: Query(
                [Group([ALICE]), Group([Member("alice", busy=[PERIOD])])], [PERIOD], MINUTE
            ),
            "different data",
        ),
        (lambda: WorkingRules("Mars/Olympus_Mons"), "Unknown IANA time zone"),
        (
            lambda: WorkingRules("UTC", earliest_start=time(9), latest_end=time(9)),
            "must be after earliest_start",
        ),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build()


# --- performance ----------------------------------------------------------------------------


def test_twenty_members_over_180_days_with_1500_busy_blocks_each_is_fast() -> None:
    generator = random.Random(2025)
    first = utc(2025, 1, 6)
    minutes_in_range = 180 * 24 * 60
    zones = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"]
    members = []
    for index in range(20):
        busy = []
        for _ in range(1500):
            start = first + generator.randrange(0, minutes_in_range, 15) * MINUTE
            busy.append(Interval(start, start + generator.choice([15, 30, 60, 90, 120]) * MINUTE))
        members.append(Member(f"m{index}", busy, WorkingRules(zones[index % len(zones)])))
    query = Query(
        groups=[Group(members[:2]), Group(members[2:], required=3)],
        periods=[span(first, first + timedelta(days=180))],
        duration=timedelta(minutes=30),
        start_interval=timedelta(minutes=15),
    )

    def run() -> int:
        result = availability(query)
        return len(result.slots()) + len(result.slots(overlapping=True))

    wall, cpu = [], []
    for _ in range(5):
        began, began_cpu = timer.perf_counter(), timer.process_time()
        found = run()
        wall.append(timer.perf_counter() - began)
        cpu.append(timer.process_time() - began_cpu)
    median = statistics.median(wall)
    # CPU time too: on a shared machine the wall clock also counts other processes.
    print(
        f"20 members x 180 days x 1500 busy blocks, availability + both slot lists: "
        f"median {median * 1000:.1f} ms wall, {statistics.median(cpu) * 1000:.1f} ms CPU"
    )
    assert found > 0
    assert median < 2.0
