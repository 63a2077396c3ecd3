"""A brute-force availability oracle: the rules of the engine, minute by minute.

Written to be obviously right, not fast: it tries every whole-minute start and checks
every minute of the meeting. It is exact when every input (busy intervals, periods,
durations, buffers, now, notice, horizon, working hours, DST changes) falls on whole
minutes, because then every boundary of the answer does too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apps.appointments.availability import Interval, Member, Query

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class OracleAnswer:
    periods: list[Interval]
    slots: list[tuple[datetime, frozenset[str]]]
    overlapping_slots: list[tuple[datetime, frozenset[str]]]


def works_at(member: Member, instant: datetime) -> bool:
    if member.rules is None:
        return True
    local = instant.astimezone(ZoneInfo(member.rules.time_zone))
    if local.weekday() >= 5 and not member.rules.weekends_allowed:
        return False
    return member.rules.earliest_start <= local.time() < member.rules.latest_end


def oracle(query: Query) -> OracleAnswer:
    members = {m.id: m for group in query.groups for m in group.members}
    # Step on UTC datetimes: adding a timedelta to a datetime in a ZoneInfo zone is
    # wall-clock arithmetic, which is not what a minute of real time is across DST.
    first = min(p.start for p in query.periods).astimezone(UTC)
    minutes = [
        first + i * MINUTE for i in range((max(p.end for p in query.periods) - first) // MINUTE)
    ]
    length = query.duration // MINUTE
    # Per-minute facts, looked up below as slices: "every minute of the meeting is ...".
    in_periods = [any(p.start <= t < p.end for p in query.periods) for t in minutes]
    works = {i: [works_at(m, t) for t in minutes] for i, m in members.items()}

    def is_free(member_id: str, index: int) -> bool:
        start = minutes[index]
        padded_start = start - query.buffer_before
        padded_end = start + query.duration + query.buffer_after
        return all(works[member_id][index : index + length]) and not any(
            b.start < padded_end and padded_start < b.end for b in members[member_id].busy
        )

    def is_valid(index: int) -> bool:
        start = minutes[index]
        if not all(in_periods[index : index + length]):
            return False
        if query.now is not None:
            now = query.now.astimezone(UTC)
            if start < now + query.minimum_notice:
                return False
            if query.horizon is not None and start > now + query.horizon:
                return False
        for group in query.groups:
            free = sum(is_free(m.id, index) for m in group.members)
            needed = len(group.members) if group.required is None else group.required
            if free < needed:
                return False
        return True

    valid = [i for i in range(len(minutes) - length + 1) if is_valid(i)]

    periods: list[Interval] = []
    for index in valid:
        start, end = minutes[index], minutes[index] + query.duration
        if periods and start <= periods[-1].end:
            periods[-1] = Interval(periods[-1].start, max(end, periods[-1].end))
        else:
            periods.append(Interval(start, end))

    def with_free(index: int) -> tuple[datetime, frozenset[str]]:
        return minutes[index], frozenset(i for i in members if is_free(i, index))

    aligned = [i for i in valid if (minutes[i] - EPOCH) % query.start_interval == timedelta(0)]
    back_to_back: list[int] = []
    for index in aligned:
        if not back_to_back or minutes[index] >= minutes[back_to_back[-1]] + query.duration:
            back_to_back.append(index)
    return OracleAnswer(
        periods=periods,
        slots=[with_free(i) for i in back_to_back],
        overlapping_slots=[with_free(i) for i in aligned],
    )
