"""The availability query of the API: people in, free periods or slots out, with each
member's sync status so callers can tell "busy" from "unknown"."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Any

from django.db.models import Q
from rest_framework.exceptions import ValidationError

from apps.accounts.models import User
from apps.appointments.availability import (
    Group,
    Interval,
    Member,
    Query,
    SyncStatus,
    availability,
)
from apps.appointments.selectors import busy_intervals, sync_statuses
from apps.integrations.api.auth import Caller, people_of

# Cronofy's three words: "pending" is a calendar whose data may be out of date (never
# synced yet, or the last syncs failed); "disconnected" means Convene cannot see one.
SYNC_WORDS = {
    SyncStatus.ACTIVE: "active",
    SyncStatus.STALE: "pending",
    SyncStatus.DISCONNECTED: "disconnected",
    SyncStatus.UNKNOWN: "disconnected",
}


def is_user_id(value: str) -> bool:
    """A `sub` is a database id: digits, small enough for a bigint."""
    return value.isascii() and value.isdigit() and len(value) <= 18


def resolve_members(caller: Caller, groups: list[dict[str, Any]]) -> dict[str, User]:
    """Map each `sub` / `email` given to a person of the caller's organizations, in one
    query. Anyone else is refused, naming them: a key never learns of strangers."""
    subs = {m["sub"] for g in groups for m in g["members"] if m.get("sub")}
    emails = {m["email"].lower() for g in groups for m in g["members"] if m.get("email")}
    bad_subs = {s for s in subs if not is_user_id(s)}
    people = list(
        User.objects.filter(people_of(caller.organization_ids))
        .filter(Q(pk__in=[int(s) for s in subs - bad_subs]) | Q(email__in=emails))
        .distinct()
        .only("pk", "email", "time_zone")
    )
    found = {str(p.pk): p for p in people} | {p.email: p for p in people}
    unknown = sorted((subs | emails) - found.keys())
    if unknown:
        raise ValidationError(
            {"participants": [f"Unknown member(s) for this API key: {', '.join(unknown)}."]}
        )
    return found


def availability_query(*, caller: Caller, query: dict[str, Any]) -> dict[str, Any]:
    people = resolve_members(caller, query["participants"])
    minutes = dt.timedelta(minutes=1)
    buffer = query.get("buffer") or {}
    before = (buffer.get("before") or {}).get("minutes", 0) * minutes
    after = (buffer.get("after") or {}).get("minutes", 0) * minutes
    periods = [Interval(p["start"], p["end"]) for p in query["query_periods"]]
    window = Interval(min(p.start for p in periods) - after, max(p.end for p in periods) + before)
    ids = sorted({p.pk for p in people.values()})
    busy = busy_intervals(ids, window)
    statuses = sync_statuses(ids)

    def member(ref: dict[str, str]) -> Member:
        person = people[ref.get("sub") or ref["email"].lower()]
        return Member(id=str(person.pk), busy=busy[person.pk], sync_status=statuses[person.pk])

    groups = []
    for group in query["participants"]:
        members = {m.id: m for m in map(member, group["members"])}  # a person once per group
        required = group["required"]
        groups.append(
            Group(
                members=list(members.values()),
                required=min(required, len(members)) if required else None,
            )
        )
    result = availability(
        Query(
            groups=groups,
            periods=periods,
            duration=query["required_duration"]["minutes"] * minutes,
            start_interval=(query.get("start_interval") or {"minutes": 15})["minutes"] * minutes,
            buffer_before=before,
            buffer_after=after,
        )
    )
    response: dict[str, Any] = {}
    fmt = query["response_format"]
    if fmt == "periods":
        edges = {pk: _Edges(busy[pk]) for pk in ids}
        response["available_periods"] = [
            {
                "start": period.start,
                "end": period.end,
                "participants": [
                    {"sub": str(pk)}
                    for pk in ids
                    if edges[pk].free_throughout(period, before, after)
                ],
            }
            for period in result.periods
        ]
    else:
        response["available_slots"] = [
            {
                "start": slot.start,
                "end": slot.end,
                "participants": [{"sub": sub} for sub in sorted(slot.free_member_ids, key=int)],
            }
            for slot in result.slots(overlapping=fmt == "overlapping_slots")
        ]
    if query["include_member_statuses"]:
        response["member_statuses"] = [
            {"sub": str(pk), "email": person.email, "sync_status": SYNC_WORDS[statuses[pk]]}
            for pk, person in sorted({p.pk: p for p in people.values()}.items())
        ]
    return response


class _Edges:
    """A member's busy starts and ends, sorted once, to ask about many periods."""

    def __init__(self, busy: list[Interval]) -> None:
        self.starts = sorted(b.start for b in busy)
        self.ends = sorted(b.end for b in busy)

    def free_throughout(self, period: Interval, before: dt.timedelta, after: dt.timedelta) -> bool:
        # Busy intervals that start before the period's (buffered) end, less those that
        # ended by its (buffered) start: whatever is left overlaps it.
        started = bisect.bisect_left(self.starts, period.end + after)
        ended = bisect.bisect_right(self.ends, period.start - before)
        return started - ended <= 0
