"""The availability engine: when can a meeting take place?

Pure Python (standard library only, no Django): intervals in, intervals out, so that the
booking service, meeting polls and the REST API share one fast, exhaustively tested rule.
The query shape follows the availability queries integrators know (participant groups
with "all" or N required, a duration, query periods, buffers, a start interval, answers
as periods or as slots, plus each member's calendar sync status).

Semantics, exactly:

- Every interval is half-open, ``[start, end)``; datetimes must be timezone-aware.
  Everything returned is in UTC.
- Query periods are a set: overlapping or touching periods merge, so a meeting may span
  two touching periods.
- A member is free for a meeting ``[s, e)`` when ``[s, e)`` lies inside their working
  hours and ``[s - buffer_before, e + buffer_after)`` overlaps none of their busy
  intervals (which may overlap each other, be unsorted, or reach outside the periods).
- Working hours are a wall-clock rule, applied instant by instant: the member is
  available at instant ``t`` when ``t`` shown on a clock in their IANA zone reads a
  working day (Monday to Friday unless weekends are allowed) and a time of day in
  ``[earliest_start, latest_end)``. On DST days this means: a local time that does not
  exist (spring forward) is reached at the end of the gap, so earliest 02:30 on the
  Berlin spring-forward day starts work at 03:00 CEST; a local day of 23 or 25 hours
  has 1 hour less or more working time only if its working hours contain the change;
  local times that occur twice (fall back) are working time both times they occur.
- A start ``s`` is valid when ``[s, s + duration)`` lies inside the query periods,
  ``s >= now + minimum_notice``, ``s <= now + horizon`` (the horizon bounds the *start*:
  the meeting may end after it), and every group has enough members free for the
  whole meeting: all of them, or at least ``required``. Members are identified by id:
  one person in several groups is evaluated once.
- ``periods`` are the maximal intervals covered by meetings at valid starts. With
  "all" groups every meeting that fits inside a period is valid; with N-of-M groups
  different members may cover different parts of a period, so take starts from
  ``slots()``, never from ``periods``.
- Slot starts are multiples of ``start_interval`` counted from the Unix epoch in UTC,
  so a 15-minute interval gives :00, :15, :30 and :45 UTC.
- A member's sync status is reported, never acted upon: a member whose calendar is
  stale, disconnected or unknown is evaluated on whatever busy data the caller passes
  (possibly none), and ``unknown_members`` lets the caller warn that "free" may be
  wrong.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Internally every instant is an int of microseconds since the Unix epoch: exact (the
# resolution of datetime itself), cheap to compare, and alignment is plain arithmetic.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECOND_US = 1_000_000
_DAY_US = 86_400 * _SECOND_US
# UTC-offset changes in tzdata are at least a week apart everywhere since 1970, so probing
# the offset every 6 hours cannot miss a change that is undone before the next probe.
_OFFSET_PROBE_S = 6 * 3600

# Sorted, disjoint, non-touching half-open [start, end) intervals in microseconds.
_Spans = list[tuple[int, int]]


class SyncStatus(enum.StrEnum):
    ACTIVE = "active"
    STALE = "stale"  # the last sync failed; busy data is the last known state
    DISCONNECTED = "disconnected"  # credentials revoked: busy data may be missing
    UNKNOWN = "unknown"  # no calendar connected at all


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open time interval ``[start, end)`` between aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "Interval start")
        _require_aware(self.end, "Interval end")
        if self.end <= self.start:
            raise ValueError(
                f"Interval end {self.end.isoformat()} must be after its start "
                f"{self.start.isoformat()}."
            )


@dataclass(frozen=True, slots=True)
class WorkingRules:
    """When a member can meet, in their own time zone (see the module docstring)."""

    time_zone: str
    weekends_allowed: bool = False
    earliest_start: time = time(8, 0)
    latest_end: time = time(20, 0)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"Unknown IANA time zone {self.time_zone!r}.") from error
        if self.earliest_start.tzinfo is not None or self.latest_end.tzinfo is not None:
            raise ValueError("earliest_start and latest_end are local times without tzinfo.")
        if self.latest_end <= self.earliest_start:
            raise ValueError(
                f"latest_end {self.latest_end.isoformat()} must be after earliest_start "
                f"{self.earliest_start.isoformat()}."
            )


@dataclass(frozen=True)
class Member:
    """One person: their busy intervals, working rules (None: no limit) and sync status."""

    id: str
    busy: Sequence[Interval]
    rules: WorkingRules | None = None
    sync_status: SyncStatus = SyncStatus.ACTIVE


@dataclass(frozen=True)
class Group:
    """Members of which all (``required=None``) or at least ``required`` must be free."""

    members: Sequence[Member]
    required: int | None = None

    def __post_init__(self) -> None:
        repeated = sorted(
            member_id
            for member_id, count in Counter(member.id for member in self.members).items()
            if count > 1
        )
        if repeated:
            raise ValueError(f"A group lists members more than once: {repeated}.")
        if not self.members:
            raise ValueError("A group needs at least one member.")
        if self.required is not None and not 1 <= self.required <= len(self.members):
            raise ValueError(
                f"required must be between 1 and {len(self.members)} (the group's size), "
                f"got {self.required}."
            )


@dataclass(frozen=True)
class Query:
    """An availability question; see the module docstring for what each part means."""

    groups: Sequence[Group]
    periods: Sequence[Interval]
    duration: timedelta
    start_interval: timedelta = timedelta(minutes=15)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    now: datetime | None = None
    minimum_notice: timedelta = timedelta(0)
    horizon: timedelta | None = None

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("An availability query needs at least one group.")
        if not self.periods:
            raise ValueError("An availability query needs at least one query period.")
        for name in ("duration", "start_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name in ("buffer_before", "buffer_after", "minimum_notice"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}.")
        if self.horizon is not None and self.horizon < timedelta(0):
            raise ValueError(f"horizon must not be negative, got {self.horizon}.")
        if self.now is None:
            if self.minimum_notice or self.horizon is not None:
                raise ValueError("minimum_notice and horizon are counted from now: pass now.")
        else:
            _require_aware(self.now, "now")
        _members_by_id(self.groups)


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    free_member_ids: frozenset[str]


@dataclass(frozen=True)
class Availability:
    """The answer to a `Query`: free periods, slots on demand, and sync statuses."""

    periods: list[Interval]
    member_statuses: dict[str, SyncStatus]
    # Built by `availability()` for `slots()`: the valid starts overall and per member.
    _starts: _Spans = field(repr=False)
    _member_starts: dict[str, _Spans] = field(repr=False)
    _duration: int = field(repr=False)
    _step: int = field(repr=False)

    @property
    def unknown_members(self) -> frozenset[str]:
        """Members whose busy data may be incomplete, so "free" may not mean free."""
        return frozenset(
            member_id
            for member_id, status in self.member_statuses.items()
            if status is not SyncStatus.ACTIVE
        )

    def slots(self, overlapping: bool = False) -> list[Slot]:
        """Meetings at aligned valid starts, earliest first.

        ``overlapping=True`` returns every aligned valid start; otherwise slots are laid
        back to back greedily: each is the earliest aligned valid start at or after the
        end of the previous one.
        """
        starts: list[int] = []
        next_allowed = -(2**63)
        for low, high in self._starts:
            start = _align_up(max(low, next_allowed), self._step)
            while start < high:
                starts.append(start)
                if overlapping:
                    start += self._step
                else:
                    next_allowed = start + self._duration
                    start = _align_up(next_allowed, self._step)
        return [
            Slot(_datetime(start), _datetime(start + self._duration), free)
            for start, free in zip(starts, self._free_members(starts), strict=True)
        ]

    def _free_members(self, starts: list[int]) -> list[frozenset[str]]:
        # One merge walk per member over their valid starts and the sorted slot starts,
        # instead of a search per slot and member.
        free: list[list[str]] = [[] for _ in starts]
        for member_id, spans in self._member_starts.items():
            index = 0
            for low, high in spans:
                while index < len(starts) and starts[index] < low:
                    index += 1
                while index < len(starts) and starts[index] < high:
                    free[index].append(member_id)
                    index += 1
        return [frozenset(ids) for ids in free]


def availability(query: Query) -> Availability:
    """Answer `query`. Raises nothing beyond the validation the dataclasses already did."""
    duration = query.duration // _MICROSECOND
    members = _members_by_id(query.groups)

    periods = _merge([(_micros(p.start), _micros(p.end)) for p in query.periods])
    if query.now is not None:
        # A start >= now + notice and <= now + horizon means the whole meeting lies in
        # [now + notice, now + horizon + duration): clipping the periods to that window
        # enforces both rules at once.
        # Counted in microseconds, not with `now + timedelta`: on a datetime in a ZoneInfo
        # zone that addition is wall-clock arithmetic and is off by the DST shift.
        now = _micros(query.now)
        earliest = now + query.minimum_notice // _MICROSECOND
        latest = 2**63 if query.horizon is None else now + query.horizon // _MICROSECOND
        periods = _intersect(periods, [(earliest, latest + duration)])

    # A member is busy for a meeting [s, e) when [s - before, e + after) meets a busy
    # interval [b, c), i.e. when [s, e) meets [b - after, c + before).
    before = query.buffer_before // _MICROSECOND
    after = query.buffer_after // _MICROSECOND
    working: dict[WorkingRules, _Spans] = {}
    member_starts: dict[str, _Spans] = {}
    for member_id, member in members.items():
        free = periods
        if member.rules is not None:
            if member.rules not in working:
                working[member.rules] = [
                    span
                    for low, high in periods
                    for span in _working_spans(member.rules, low, high)
                ]
            free = working[member.rules]
        # _micros inlined: this line converts every busy interval of every member.
        busy = _merge(
            [
                (
                    (b.start - _EPOCH) // _MICROSECOND - after,
                    (b.end - _EPOCH) // _MICROSECOND + before,
                )
                for b in member.busy
            ]
        )
        # Starts s with [s, s + duration) inside a free span [a, b) are a <= s <= b - duration;
        # in whole microseconds that closed range is the half-open [a, b - duration + 1).
        member_starts[member_id] = [
            (low, high - duration + 1)
            for low, high in _subtract(free, busy)
            if high - low >= duration
        ]

    starts: _Spans = [(-(2**63), 2**63)]
    for group in query.groups:
        needed = len(group.members) if group.required is None else group.required
        starts = _intersect(starts, _at_least([member_starts[m.id] for m in group.members], needed))

    return Availability(
        periods=[
            Interval(_datetime(low), _datetime(high))
            for low, high in _merge([(low, high - 1 + duration) for low, high in starts])
        ],
        member_statuses={member_id: m.sync_status for member_id, m in members.items()},
        _starts=starts,
        _member_starts=member_starts,
        _duration=duration,
        _step=query.start_interval // _MICROSECOND,
    )


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}.")


def _members_by_id(groups: Sequence[Group]) -> dict[str, Member]:
    members: dict[str, Member] = {}
    for group in groups:
        for member in group.members:
            known = members.setdefault(member.id, member)
            if known is not member and known != member:
                raise ValueError(
                    f"Member {member.id!r} appears in several groups with different data."
                )
    return members


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _align_up(micros: int, step: int) -> int:
    return -(-micros // step) * step


def _merge(spans: _Spans) -> _Spans:
    """Sort and union possibly overlapping or touching intervals."""
    if not spans:
        return []
    ordered = sorted(spans)
    merged: _Spans = []
    low, high = ordered[0]
    for next_low, next_high in ordered:
        if next_low <= high:
            high = max(high, next_high)
        else:
            merged.append((low, high))
            low, high = next_low, next_high
    merged.append((low, high))
    return merged


def _intersect(first: _Spans, second: _Spans) -> _Spans:
    result: _Spans = []
    i = j = 0
    while i < len(first) and j < len(second):
        low = max(first[i][0], second[j][0])
        high = min(first[i][1], second[j][1])
        if low < high:
            result.append((low, high))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return result


def _subtract(spans: _Spans, holes: _Spans) -> _Spans:
    result: _Spans = []
    j = 0
    for low, high in spans:
        # Holes that end before this span cannot touch any later span either.
        while j < len(holes) and holes[j][1] <= low:
            j += 1
        cursor = low
        k = j
        while k < len(holes) and holes[k][0] < high:
            if holes[k][0] > cursor:
                result.append((cursor, holes[k][0]))
            cursor = max(cursor, holes[k][1])
            k += 1
        if cursor < high:
            result.append((cursor, high))
    return result


def _at_least(span_lists: list[_Spans], needed: int) -> _Spans:
    """Where at least `needed` of the span lists (each disjoint) cover a point."""
    # Sorting plain ints is much faster than sorting (position, delta) tuples.
    opens = sorted(low for spans in span_lists for low, _ in spans)
    closes = sorted(high for spans in span_lists for _, high in spans)
    result: _Spans = []
    covered = i = j = 0
    region_start: int | None = None
    while i < len(opens):
        position = min(opens[i], closes[j])
        while i < len(opens) and opens[i] == position:
            covered += 1
            i += 1
        while closes[j] == position:
            covered -= 1
            j += 1
        if covered >= needed and region_start is None:
            region_start = position
        elif covered < needed and region_start is not None:
            result.append((region_start, position))
            region_start = None
    if region_start is not None:
        # Every span is open until the close that brings the count below `needed`.
        result.append((region_start, closes[j + covered - needed]))
    return result


def _working_spans(rules: WorkingRules, start: int, end: int) -> _Spans:
    """Instants of ``[start, end)`` at which the member's wall clock shows working time."""
    earliest = _time_of_day(rules.earliest_start)
    latest = _time_of_day(rules.latest_end)
    spans: _Spans = []
    for segment_start, segment_end, offset in _offset_segments(
        ZoneInfo(rules.time_zone), start, end
    ):
        # Within one segment the wall clock reads instant + offset, so working time is
        # found on the wall-clock axis and shifted back; a DST change splits the day
        # between two segments and each keeps only the wall times it really shows.
        wall_start, wall_end = segment_start + offset, segment_end + offset
        for day in range(wall_start // _DAY_US, (wall_end - 1) // _DAY_US + 1):
            # Day 0 (1970-01-01) was a Thursday: weekday() == 3.
            if not rules.weekends_allowed and (day + 3) % 7 >= 5:
                continue
            low = max(day * _DAY_US + earliest, wall_start)
            high = min(day * _DAY_US + latest, wall_end)
            if low < high:
                spans.append((low - offset, high - offset))
    return _merge(spans)


def _offset_segments(zone: ZoneInfo, start: int, end: int) -> list[tuple[int, int, int]]:
    """Split ``[start, end)`` into pieces of constant UTC offset: (start, end, offset)."""

    def offset_at(second: int) -> int:
        # A ZoneInfo answers for every aware datetime; the type says "maybe None" only
        # because tzinfo subclasses in general may decline.
        return cast(timedelta, datetime.fromtimestamp(second, zone).utcoffset()) // _MICROSECOND

    segments: list[tuple[int, int, int]] = []
    segment_start = start
    second = start // _SECOND_US
    offset = offset_at(second)
    # tzdata changes offsets on whole seconds; the last second that matters holds end - 1.
    last = (end - 1) // _SECOND_US
    while second < last:
        probe = min(second + _OFFSET_PROBE_S, last)
        if offset_at(probe) == offset:
            second = probe
            continue
        # Bisect for the first second with the new offset.
        low, high = second, probe
        while high - low > 1:
            middle = (low + high) // 2
            if offset_at(middle) == offset:
                low = middle
            else:
                high = middle
        segments.append((segment_start, high * _SECOND_US, offset))
        segment_start, offset, second = high * _SECOND_US, offset_at(high), high
    segments.append((segment_start, end, offset))
    return segments


def _time_of_day(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _SECOND_US + value.microsecond
