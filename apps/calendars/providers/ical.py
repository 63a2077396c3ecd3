"""iCalendar for the CalDAV providers (iCloud, any CalDAV server): busy time from the
calendar object resources a server returns, and the resource Convene writes.

Pure Python (no Django, no HTTP). Recurrences are expanded by recurring-ical-events,
with a bound on the work one resource may cost: a series that never ends, or repeats
every second, must cost one skipped item, not a stuck worker.

RFC 5545: https://www.rfc-editor.org/rfc/rfc5545
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from collections.abc import Iterator
from typing import TYPE_CHECKING

import icalendar
import recurring_ical_events
from recurring_ical_events import ComponentsWithName, Series
from recurring_ical_events.util import compare_greater, convert_to_datetime

from apps.calendars.providers.base import (
    BadDataError,
    BusyInstance,
    BusyKind,
    EventPayload,
    Window,
)

if TYPE_CHECKING:
    from recurring_ical_events import CalendarQuery, ComponentAdapter
    from recurring_ical_events.types import Time

# Occurrences of one resource inside the sync window before it counts as bad data.
MAX_INSTANCES_PER_EVENT = 5000
# Occurrences a recurrence rule may generate from its DTSTART on, those before the
# window included: dateutil always starts counting at DTSTART, so a FREQ=SECONDLY
# series begun a year ago costs 31 million steps before its first one in the window.
# A daily series begun in 1900 takes about 46,000; 100,000 steps take well under 1 s.
MAX_RULE_STEPS = 100_000
# Wall time one series may spend in expansion: the step cap bounds the count, this
# bounds rules whose every step is expensive (many BYxxx filters).
MAX_EXPANSION_SECONDS = 2.0

PRODID = "-//Convene//Convene//EN"
# The second marker of Convene's events, next to the UID: it survives a client that
# copies the event under a new UID.
CONVENE_PROPERTY = "X-CONVENE-EVENT"
# `.invalid` is reserved (RFC 2606), so no one else's UID ends like this.
_UID_DOMAIN = "@convene.invalid"
# Keys end up in UIDs and in CalDAV hrefs: keep them to characters safe in both.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Outlook and Exchange write the free/busy state the owner picked here; when present
# it says more than TRANSP (which only knows opaque or transparent). None: not busy.
_BUSYSTATUS: dict[str, BusyKind | None] = {
    "FREE": None,
    "WORKINGELSEWHERE": None,
    "TENTATIVE": BusyKind.TENTATIVE,
    "BUSY": BusyKind.BUSY,
    "OOF": BusyKind.OUT_OF_OFFICE,
}


# ---------------------------------------------------------------------------------
# Convene's own events.
# ---------------------------------------------------------------------------------


def convene_uid(key: str) -> str:
    """The UID of the event Convene writes for `key` (e.g. "appointment-42-calendar-7").

    Deterministic, so a retried write replaces the event instead of duplicating it.
    Raises ValueError for a key with characters unsafe in a UID or an href.
    """
    if not _KEY.fullmatch(key):
        raise ValueError(f"A Convene event key must match {_KEY.pattern}: {key!r}.")
    return f"{key}{_UID_DOMAIN}"


def is_convene_uid(uid: str) -> bool:
    """Whether `uid` was made by `convene_uid`."""
    return uid.endswith(_UID_DOMAIN) and _KEY.fullmatch(uid.removesuffix(_UID_DOMAIN)) is not None


def event_to_ical(event: EventPayload, *, stamp: dt.datetime | None = None) -> str:
    """A VCALENDAR holding the one VEVENT Convene writes for `event`, times in UTC.

    `stamp` (DTSTAMP, default now) is a parameter so equal payloads can give equal
    text. Raises ValueError for naive start or end times.
    """
    if event.start.tzinfo is None or event.end.tzinfo is None:
        raise ValueError("Event times must be aware datetimes.")
    description = event.description
    if event.join_url and event.join_url not in description:
        description = f"{description}\n\nJoin: {event.join_url}".strip()

    vevent = icalendar.Event()
    vevent.add("UID", event.uid)
    vevent.add("DTSTAMP", (stamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    vevent.add("DTSTART", event.start.astimezone(dt.UTC))
    vevent.add("DTEND", event.end.astimezone(dt.UTC))
    vevent.add("SUMMARY", event.title)
    if description:
        vevent.add("DESCRIPTION", description)
    if event.location:
        vevent.add("LOCATION", event.location)
    if event.join_url:
        vevent.add("URL", event.join_url)
    vevent.add("TRANSP", "OPAQUE" if event.busy else "TRANSPARENT")
    vevent.add(CONVENE_PROPERTY, "1")

    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add_component(vevent)
    return calendar.to_ical().decode("utf-8")


# ---------------------------------------------------------------------------------
# Busy time.
# ---------------------------------------------------------------------------------


def busy_instances(
    data: str | bytes, *, event_id: str, window: Window, zone: zoneinfo.ZoneInfo
) -> list[BusyInstance]:
    """The busy occurrences of one calendar object resource within `window`.

    `data` is the resource (a VCALENDAR: one event, or a series with its overrides);
    `event_id` its href, copied into every result. `zone` is the owner's time zone, the
    one floating times and all-day dates happen in. Occurrences overlapping the window
    are returned whole (not clipped), sorted by start, times in UTC.

    Not busy: transparent, free, working-elsewhere and cancelled events or instances,
    zero-length events, tasks, and every resource Convene wrote itself.

    Raises BadDataError (with `item=event_id`) for anything that is not readable
    iCalendar or that would take unbounded work to expand; never another exception.
    """
    try:
        return _busy_instances(data, event_id=event_id, window=window, zone=zone)
    except BadDataError as problem:
        problem.item = event_id
        raise
    except Exception as exc:
        # The data is untrusted and two third-party parsers read it: whatever they
        # raise (ValueError, KeyError, TypeError, icalendar's own errors...) means
        # this item cannot be understood, which the contract spells BadDataError.
        # The message stays generic: parser messages quote lines of the event, and
        # skipped items are stored, where titles and descriptions must never go.
        raise BadDataError(
            "Convene could not read this calendar entry (it is not valid iCalendar "
            "data) and skipped it.",
            item=event_id,
        ) from exc


def _busy_instances(
    data: str | bytes, *, event_id: str, window: Window, zone: zoneinfo.ZoneInfo
) -> list[BusyInstance]:
    calendar = icalendar.Calendar.from_ical(data)
    if not isinstance(calendar, icalendar.Calendar):
        raise BadDataError(
            "Convene could not read this calendar entry (it is not a VCALENDAR) and skipped it."
        )
    events = calendar.events
    if any(_is_convenes(event) for event in events):
        return []
    for event in events:
        _check_event(event, zone=zone)

    query = recurring_ical_events.of(calendar, components=[_BOUNDED_EVENTS])
    found: list[BusyInstance] = []
    for occurrence in _occurrences(query, window=window, zone=zone):
        instance = _busy_instance(occurrence, event_id=event_id, zone=zone)
        if instance is not None:
            found.append(instance)
    return sorted(found, key=lambda instance: (instance.start, instance.instance_start))


def _is_convenes(event: icalendar.Event) -> bool:
    return CONVENE_PROPERTY in event or is_convene_uid(event.uid)


def _check_event(event: icalendar.Event, *, zone: zoneinfo.ZoneInfo) -> None:
    """Reject what the libraries would otherwise repair by guessing: recurring-ical-events
    swaps an end before the start, and icalendar reads an RRULE without FREQ as no rule
    at all (the event would quietly lose every occurrence but the first)."""
    if event.DTSTART is None:
        raise BadDataError("An event has no start time (DTSTART), so Convene skipped it.")
    if event.DTEND is not None and _utc(event.DTEND, zone) < _utc(event.DTSTART, zone):
        raise BadDataError(
            "An event ends (DTEND) before it starts (DTSTART), so Convene skipped it."
        )
    if event.DURATION is not None and event.DURATION.total_seconds() < 0:
        raise BadDataError("An event has a negative DURATION, so Convene skipped it.")
    for rule in event.rrules:
        # A rule icalendar cannot parse arrives as a vBroken placeholder, not a vRecur.
        if not isinstance(rule, icalendar.vRecur) or "FREQ" not in rule:
            raise BadDataError(
                "An event's repeat rule (RRULE) cannot be understood, so Convene skipped it."
            )


def _occurrences(
    query: CalendarQuery, *, window: Window, zone: zoneinfo.ZoneInfo
) -> Iterator[icalendar.Event]:
    """Each occurrence overlapping the window, as a VEVENT with its own DTSTART, DTEND
    and RECURRENCE-ID, generated one at a time so the cap stops the work itself.

    `CalendarQuery.between` would build the whole list first; `Series.between` is a
    generator (lazy once `_BoundedRecurrence` feeds it lazily). The bounds are in the
    owner's zone because the library gives floating times and dates the bounds' zone.
    """
    start = window.start.astimezone(zone)
    end = window.end.astimezone(zone)
    count = 0
    for series in query.series:
        for occurrence in series.between(start, end):
            count += 1
            if count > MAX_INSTANCES_PER_EVENT:
                raise BadDataError(
                    f"A recurring event has more than {MAX_INSTANCES_PER_EVENT} "
                    "occurrences in the sync window, so Convene skipped it."
                )
            yield occurrence.as_component(keep_recurrence_attributes=False)


def _busy_instance(
    occurrence: icalendar.Event, *, event_id: str, zone: zoneinfo.ZoneInfo
) -> BusyInstance | None:
    kind = _kind(occurrence)
    if kind is None:
        return None
    # recurring-ical-events sets DTSTART, DTEND and RECURRENCE-ID on every occurrence
    # (DTEND computed from DURATION, or a day after an all-day DTSTART).
    start_value, end_value, recurrence_id = (
        occurrence.DTSTART,
        occurrence.DTEND,
        occurrence.RECURRENCE_ID,
    )
    if start_value is None or end_value is None or recurrence_id is None:
        raise BadDataError("An occurrence of an event has no start or end.")
    start = _utc(start_value, zone)
    end = _utc(end_value, zone)
    if end <= start:
        return None  # RFC 5545: DTSTART without DTEND or DURATION takes no time
    # An override with RANGE=THISANDFUTURE lends its RECURRENCE-ID to every later
    # occurrence it reshapes; their own start keeps (event, instance start) unique.
    if str(occurrence["RECURRENCE-ID"].params.get("RANGE", "")).upper() == "THISANDFUTURE":
        instance_start = start
    else:
        instance_start = _utc(recurrence_id, zone)
    return BusyInstance(
        event_id=event_id,
        instance_start=instance_start,
        start=start,
        end=end,
        all_day=not isinstance(start_value, dt.datetime),
        kind=kind,
    )


def _kind(occurrence: icalendar.Event) -> BusyKind | None:
    """How busy one occurrence makes its owner; None: not at all."""
    status = str(occurrence.get("STATUS", "")).strip().upper()
    if status == "CANCELLED":
        return None
    busystatus = str(occurrence.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).strip().upper()
    if busystatus in _BUSYSTATUS:
        return _BUSYSTATUS[busystatus]
    if str(occurrence.get("TRANSP", "")).strip().upper() == "TRANSPARENT":
        return None
    if status == "TENTATIVE":
        return BusyKind.TENTATIVE
    return BusyKind.BUSY


def _utc(value: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A DATE or DATE-TIME value as an aware UTC datetime: floating times and dates
    happen in the owner's zone (an all-day event starts at their local midnight).

    icalendar also leaves a TZID it knows no VTIMEZONE or IANA name for as a naive
    time, which this therefore reads in the owner's zone too.
    """
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    else:
        aware = dt.datetime.combine(value, dt.time(), tzinfo=zone)
    return aware.astimezone(dt.UTC)


# ---------------------------------------------------------------------------------
# Bounded expansion, through the `series=` extension point of recurring-ical-events.
# ---------------------------------------------------------------------------------


class _BoundedRecurrence(Series.RecurrenceRules):
    """The library's recurrence rules, walked one occurrence at a time under a budget.

    Upstream `rrule_between` calls dateutil's `rrule.between`, which builds a list of
    every occurrence in the span (15 million for a FREQ=SECONDLY series over 180 days)
    and walks silently from DTSTART to get there. Iterating the rule instead yields
    each step here, where it is counted and timed. Mirrors upstream (3.8.2) for the
    zoneinfo and dateutil zones icalendar 7 produces, without its pytz branch; the
    tests of DST, exceptions and the caps fail if an upgrade changes what it relies on.
    """

    def __init__(self, core: ComponentAdapter) -> None:
        super().__init__(core)
        self._steps = 0
        self._deadline = time.monotonic() + MAX_EXPANSION_SECONDS

    def rrule_between(self, span_start: Time, span_stop: Time) -> Iterator[Time]:
        first = convert_to_datetime(span_start, self.tzinfo)
        last = convert_to_datetime(span_stop, self.tzinfo)
        for rule in self.rrules:
            for start in rule:
                self._step()
                if start > last:
                    break
                if start >= first and (
                    rule.until is None or not compare_greater(start, rule.until)
                ):
                    yield start

    def _step(self) -> None:
        self._steps += 1
        if self._steps > MAX_RULE_STEPS:
            raise BadDataError(
                f"A recurring event repeats more than {MAX_RULE_STEPS} times before the "
                "end of the sync window, so Convene skipped it."
            )
        if time.monotonic() > self._deadline:
            raise BadDataError("A recurring event took too long to expand, so Convene skipped it.")


class _BoundedSeries(Series):
    RecurrenceRules = _BoundedRecurrence


_BOUNDED_EVENTS = ComponentsWithName("VEVENT", series=_BoundedSeries)
