"""Reads for mentoring: groups, proposals from real availability, and the poll grid.

Each function makes a fixed number of queries however many members, options or votes
there are (the tests compare small and large polls).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from apps.accounts.models import Program, User
from apps.appointments.availability import (
    Group,
    Interval,
    Member,
    Query,
    SyncStatus,
    availability,
)
from apps.appointments.selectors import busy_intervals, sync_statuses, working_rules
from apps.mentoring.models import GroupMember, MeetingPoll, MentoringGroup, PollInvitation, Vote

MAX_PROPOSALS = 12
Role = GroupMember.Role
PollStatus = MeetingPoll.Status
LIVE_POLLS = (PollStatus.DRAFT, PollStatus.OPEN, PollStatus.CLOSED)


# --- groups ------------------------------------------------------------------------------


def _with_members(groups: QuerySet[MentoringGroup]) -> QuerySet[MentoringGroup]:
    return groups.select_related("program").prefetch_related(
        Prefetch("memberships", queryset=GroupMember.objects.select_related("user"))
    )


def groups_for(*, user: User) -> list[MentoringGroup]:
    """The active groups the person belongs to, with members and live polls. Three
    queries."""
    return list(
        _with_members(
            MentoringGroup.objects.filter(
                memberships__user=user, is_active=True, program__is_active=True
            )
        )
        .prefetch_related(
            Prefetch(
                "polls",
                queryset=MeetingPoll.objects.filter(status__in=LIVE_POLLS).order_by("created_at"),
                to_attr="live_polls",
            )
        )
        .distinct()
        .order_by("program__name", "name")
    )


def group_get(*, user: User, pk: int) -> MentoringGroup:
    """One group the person belongs to; raises MentoringGroup.DoesNotExist otherwise."""
    return _with_members(
        MentoringGroup.objects.filter(memberships__user=user, is_active=True).distinct()
    ).get(pk=pk)


def role_in(group: MentoringGroup, user: User) -> str | None:
    """The person's role in a group whose memberships are prefetched."""
    return next((m.role for m in group.memberships.all() if m.user_id == user.pk), None)


def mentors_of(group: MentoringGroup) -> list[User]:
    return [m.user for m in group.memberships.all() if m.role == Role.MENTOR]


def unanswered_poll_ids(*, user: User) -> set[int]:
    """Open polls the person is invited to and has not answered yet. One query."""
    return set(
        PollInvitation.objects.filter(
            invitee=user, answered_at__isnull=True, poll__status=PollStatus.OPEN
        ).values_list("poll_id", flat=True)
    )


# --- partner availability ----------------------------------------------------------------


@dataclass
class MemberBusy:
    """Another member's busy time (never why) for each day shown, in the viewer's zone."""

    user: User
    role: str
    status: SyncStatus
    days: list[list[Interval]]


def group_busy(
    *, group: MentoringGroup, viewer: User, days: Sequence[dt.date], zone: zoneinfo.ZoneInfo
) -> list[MemberBusy]:
    """When the group's other members are busy on `days` (local dates in `zone`).
    Three queries."""
    others = [m for m in group.memberships.all() if m.user_id != viewer.pk]
    ids = [m.user_id for m in others]
    bounds = [
        (
            dt.datetime.combine(day, dt.time(0), zone),
            dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone),
        )
        for day in days
    ]
    busy = busy_intervals(
        ids,
        Interval(bounds[0][0], bounds[-1][1]),
        tentative_is_busy=group.program.tentative_is_busy,
    )
    statuses = sync_statuses(ids)
    result = []
    for membership in others:
        merged = _merge(busy[membership.user_id])
        per_day = [
            [
                Interval(max(b.start, low), min(b.end, high))
                for b in merged
                if b.start < high and b.end > low
            ]
            for low, high in bounds
        ]
        result.append(
            MemberBusy(membership.user, membership.role, statuses[membership.user_id], per_day)
        )
    return result


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


# --- proposals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    start: dt.datetime
    end: dt.datetime
    known_free: int


@dataclass
class Proposals:
    """Proposed options, best first, and what they are based on."""

    options: list[Proposal]
    invitees: list[User]
    statuses: dict[int, SyncStatus]
    mentor_status: SyncStatus

    @property
    def connected(self) -> int:
        return sum(1 for u in self.invitees if self.statuses[u.pk] is SyncStatus.ACTIVE)


def proposal_periods(
    *,
    date_from: dt.date,
    date_to: dt.date,
    day_start: dt.time | None,
    day_end: dt.time | None,
    zone: zoneinfo.ZoneInfo,
) -> list[Interval]:
    """The days (and times of day) the mentor asked for, as UTC-comparable intervals."""
    periods = []
    day = date_from
    while day <= date_to:
        start = dt.datetime.combine(day, day_start or dt.time(0), zone)
        end = (
            dt.datetime.combine(day, day_end, zone)
            if day_end
            else dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
        )
        if end > start:
            periods.append(Interval(start, end))
        day += dt.timedelta(days=1)
    return periods


def poll_proposals(
    *,
    program: Program,
    mentor: User,
    invitees: Sequence[User],
    duration: dt.timedelta,
    periods: Sequence[Interval],
    required: int | None,
    zone: zoneinfo.ZoneInfo,
    now: dt.datetime | None = None,
    limit: int = MAX_PROPOSALS,
) -> Proposals:
    """Meeting times when the mentor and all (or `required`) invitees with connected
    calendars are free, within the programme's rules and everyone's working hours.

    Invitees whose calendars are not connected, stale or disconnected are reported in
    `statuses` and do not constrain: Convene cannot know when they are busy. Options are
    ranked by how many invitees are known to be free, then by time, and spread over the
    days (`zone` is the mentor's, whose days they are). Three queries.
    """
    ids = [mentor.pk, *(u.pk for u in invitees)]
    statuses = sync_statuses(ids)
    if not periods:
        return Proposals([], list(invitees), statuses, statuses[mentor.pk])
    window = Interval(min(p.start for p in periods), max(p.end for p in periods))
    margin = dt.timedelta(minutes=program.buffer_before_minutes + program.buffer_after_minutes + 1)
    busy = busy_intervals(
        ids,
        Interval(window.start - margin, window.end + margin),
        tentative_is_busy=program.tentative_is_busy,
    )

    def member(user: User) -> Member:
        return Member(
            id=str(user.pk),
            busy=busy[user.pk],
            rules=working_rules(program, user),
            sync_status=statuses[user.pk],
        )

    active = [u for u in invitees if statuses[u.pk] is SyncStatus.ACTIVE]
    # The mentor hosts the meeting, so their own time always counts, calendar or not.
    groups = [Group(members=[member(mentor)])]
    if active:
        needed = None if required is None else max(1, min(required, len(active)))
        groups.append(Group(members=[member(u) for u in active], required=needed))
    result = availability(
        Query(
            groups=groups,
            periods=periods,
            duration=duration,
            start_interval=dt.timedelta(minutes=program.slot_granularity_minutes),
            buffer_before=dt.timedelta(minutes=program.buffer_before_minutes),
            buffer_after=dt.timedelta(minutes=program.buffer_after_minutes),
            now=now or timezone.now(),
            minimum_notice=program.minimum_notice,
            horizon=program.booking_horizon,
        )
    )
    active_ids = frozenset(str(u.pk) for u in active)
    candidates = [
        Proposal(slot.start, slot.end, len(slot.free_member_ids & active_ids))
        for slot in result.slots(overlapping=True)
    ]
    return Proposals(
        _spread(candidates, zone=zone, limit=limit), list(invitees), statuses, statuses[mentor.pk]
    )


def _spread(candidates: list[Proposal], *, zone: zoneinfo.ZoneInfo, limit: int) -> list[Proposal]:
    """The best `limit` candidates, at most one more per day than any other day has
    (so a good Tuesday cannot take every place), never overlapping on one day."""
    ranked = sorted(candidates, key=lambda p: (-p.known_free, p.start))
    picked: list[Proposal] = []
    per_day: dict[dt.date, list[Proposal]] = defaultdict(list)
    cap = 0
    while len(picked) < limit:
        cap += 1
        added = False
        for candidate in ranked:
            if len(picked) >= limit:
                break
            day = candidate.start.astimezone(zone).date()
            chosen = per_day[day]
            if len(chosen) >= cap or any(
                candidate.start < other.end and other.start < candidate.end for other in chosen
            ):
                continue
            chosen.append(candidate)
            picked.append(candidate)
            added = True
        if not added:
            break
    return sorted(picked, key=lambda p: (-p.known_free, p.start))


# --- the poll and its grid ----------------------------------------------------------------


def poll_get(*, pk: int) -> MeetingPoll:
    return (
        MeetingPoll.objects.select_related("group__program", "created_by", "final_option")
        .prefetch_related(
            Prefetch("group__memberships", queryset=GroupMember.objects.select_related("user"))
        )
        .get(pk=pk)
    )


def polls_for_member(*, user: User, pk: int) -> MeetingPoll:
    """A poll of a group the person belongs to; raises MeetingPoll.DoesNotExist."""
    poll = poll_get(pk=pk)
    if role_in(poll.group, user) is None:
        raise MeetingPoll.DoesNotExist("Not a member of this poll's group.")
    return poll


@dataclass
class OptionSummary:
    """Per option: how many can come (the heat row)."""

    yes: int = 0
    if_need_be: int = 0
    no: int = 0
    unanswered: int = 0

    @property
    def can_come(self) -> int:
        return self.yes + self.if_need_be

    @property
    def total(self) -> int:
        return self.yes + self.if_need_be + self.no + self.unanswered


@dataclass
class PollGrid:
    """Everything the poll page shows: options x invitees, answers, calendar conflicts
    (per invitee, never why) and the heat row."""

    poll: MeetingPoll
    options: list
    invitations: list[PollInvitation]
    answers: dict[tuple[int, int], str]
    conflicts: set[tuple[int, int]]
    statuses: dict[int, SyncStatus]
    summaries: dict[int, OptionSummary] = field(default_factory=dict)

    @property
    def invitees(self) -> list[User]:
        return [i.invitee for i in self.invitations]

    @property
    def connected(self) -> int:
        return sum(1 for i in self.invitations if self.statuses[i.invitee_id] is SyncStatus.ACTIVE)

    @property
    def best_can_come(self) -> int:
        return max((s.can_come for s in self.summaries.values()), default=0)


def poll_invitees(poll: MeetingPoll) -> list[User]:
    """Who a poll invites: everyone in the group except the mentor who runs it."""
    return [m.user for m in poll.group.memberships.all() if m.user_id != poll.created_by_id]


def poll_grid(*, poll: MeetingPoll) -> PollGrid:
    """The grid of a poll loaded with `poll_get`. Six queries, whatever its size."""
    options = list(poll.options.all())
    invitations = list(poll.invitations.select_related("invitee"))
    if not invitations:
        # A draft has no invitations yet: show the people it will invite.
        invitations = [PollInvitation(poll=poll, invitee=u) for u in poll_invitees(poll)]
    ids = [i.invitee.pk for i in invitations]
    answers = {
        (option_id, voter_id): answer
        for option_id, voter_id, answer in Vote.objects.filter(option__poll=poll).values_list(
            "option_id", "voter_id", "answer"
        )
    }
    conflicts: set[tuple[int, int]] = set()
    if options and ids:
        busy = busy_intervals(
            ids,
            Interval(min(o.start for o in options), max(o.end for o in options)),
            tentative_is_busy=poll.group.program.tentative_is_busy,
            exclude_appointment=poll.appointment_id,
        )
        for user_id, intervals in busy.items():
            for option in options:
                if any(b.start < option.end and option.start < b.end for b in intervals):
                    conflicts.add((option.pk, user_id))
    statuses = sync_statuses(ids) if ids else {}
    summaries = {}
    for option in options:
        summary = OptionSummary()
        for user_id in ids:
            answer = answers.get((option.pk, user_id))
            if answer == Vote.Answer.YES:
                summary.yes += 1
            elif answer == Vote.Answer.IF_NEED_BE:
                summary.if_need_be += 1
            elif answer == Vote.Answer.NO:
                summary.no += 1
            else:
                summary.unanswered += 1
        summaries[option.pk] = summary
    return PollGrid(poll, options, invitations, answers, conflicts, statuses, summaries)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_for_token(*, poll_id: int, token: str) -> PollInvitation:
    """The live invitation a personal link stands for. Raises
    PollInvitation.DoesNotExist for an unknown, revoked or foreign token (one of
    another poll), for a poll not yet published, and for an invitee who has left the
    group. Two queries."""
    invitation = PollInvitation.objects.select_related("invitee", "poll").get(
        poll_id=poll_id, token_hash=token_hash(token), revoked_at__isnull=True
    )
    if invitation.poll.status == PollStatus.DRAFT:
        raise PollInvitation.DoesNotExist("The poll is not published.")
    if not GroupMember.objects.filter(
        group_id=invitation.poll.group_id, user_id=invitation.invitee_id
    ).exists():
        raise PollInvitation.DoesNotExist("The invitee is no longer in the group.")
    return invitation
