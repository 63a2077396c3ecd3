"""Reads for appointments, and the bridge from the database to the pure availability
engine. Each function makes a fixed number of queries, however much data there is."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Membership, Program, Role, User
from apps.appointments.availability import (
    Availability,
    Group,
    Interval,
    Member,
    Query,
    SyncStatus,
    WorkingRules,
    availability,
)
from apps.appointments.models import Appointment
from apps.calendars.models import BusyBlock, Calendar, CalendarAccount
from apps.calendars.providers import offers_integrated_conferencing
from apps.calendars.providers.base import BusyKind

HOST_ROLES = (Role.MENTOR, Role.STAFF)
MANAGER_ROLES = (Role.STAFF, Role.PROGRAM_ADMIN)


def bookable_hosts(*, user: User) -> list[tuple[Program, list[User]]]:
    """Per programme the person takes part in, the hosts they may book."""
    programs = list(
        Program.objects.filter(
            is_active=True, memberships__user=user, memberships__role=Role.PARTICIPANT
        ).distinct()
    )
    hosts: dict[int, list[User]] = defaultdict(list)
    for membership in (
        Membership.objects.filter(program__in=programs, role__in=HOST_ROLES)
        .exclude(user=user)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    ):
        if membership.user not in hosts[membership.program_id]:
            hosts[membership.program_id].append(membership.user)
    return [(program, hosts[program.pk]) for program in programs if hosts[program.pk]]


def sync_statuses(user_ids: Iterable[int]) -> dict[int, SyncStatus]:
    """How much we know of each person's calendar: one query for all of them."""
    statuses = dict.fromkeys(user_ids, SyncStatus.UNKNOWN)
    accounts = CalendarAccount.objects.filter(
        owner_id__in=statuses, calendars__check_conflicts=True
    ).distinct()
    for account in accounts.only("owner_id", "status", "last_synced_at"):
        if account.status == CalendarAccount.Status.DISCONNECTED:
            status = SyncStatus.DISCONNECTED
        elif account.is_stale:
            status = SyncStatus.STALE
        else:
            status = SyncStatus.ACTIVE
        # One healthy account is better than any problem; a problem beats "unknown".
        order = [SyncStatus.UNKNOWN, SyncStatus.DISCONNECTED, SyncStatus.STALE, SyncStatus.ACTIVE]
        if order.index(status) > order.index(statuses[account.owner_id]):
            statuses[account.owner_id] = status
    return statuses


def busy_intervals(
    user_ids: Sequence[int],
    window: Interval,
    *,
    tentative_is_busy: bool = True,
    exclude_appointment: int | None = None,
) -> dict[int, list[Interval]]:
    """Each person's busy time in the window: their calendars' busy blocks plus their
    active appointments (as host or attendee). Two queries."""
    busy: dict[int, list[Interval]] = {pk: [] for pk in user_ids}
    blocks = BusyBlock.objects.filter(
        owner_id__in=user_ids,
        start__lt=window.end,
        end__gt=window.start,
        calendar__check_conflicts=True,
        calendar__is_deleted=False,
    )
    if not tentative_is_busy:
        blocks = blocks.exclude(kind=BusyKind.TENTATIVE)
    for owner_id, start, end in blocks.values_list("owner_id", "start", "end"):
        busy[owner_id].append(Interval(start, end))
    appointments = Appointment.objects.filter(
        Q(host_id__in=user_ids) | Q(attendees__in=user_ids),
        status__in=Appointment.ACTIVE,
        start__lt=window.end,
        end__gt=window.start,
    )
    if exclude_appointment is not None:
        appointments = appointments.exclude(pk=exclude_appointment)
    for host_id, attendee_id, start, end in appointments.values_list(
        "host_id", "attendees", "start", "end"
    ).distinct():
        for pk in {host_id, attendee_id}:
            if pk in busy:
                busy[pk].append(Interval(start, end))
    return busy


def working_rules(program: Program, user: User) -> WorkingRules:
    return WorkingRules(
        time_zone=user.time_zone,
        weekends_allowed=program.weekends_allowed,
        earliest_start=program.earliest_start,
        latest_end=program.latest_end,
    )


def host_availability(
    *,
    program: Program,
    host: User,
    periods: Sequence[Interval],
    duration: dt.timedelta,
    now: dt.datetime | None = None,
) -> Availability:
    """When `host` can be booked in `program`: their calendars, their appointments and
    the programme's rules (day limits in the host's own time zone, notice, horizon,
    granularity, buffers)."""
    window = Interval(min(p.start for p in periods), max(p.end for p in periods))
    busy = busy_intervals(
        [host.pk],
        Interval(
            window.start - dt.timedelta(minutes=program.buffer_before_minutes + 1),
            window.end + dt.timedelta(minutes=program.buffer_after_minutes + 1),
        ),
        tentative_is_busy=program.tentative_is_busy,
    )[host.pk]
    member = Member(
        id=str(host.pk),
        busy=busy,
        rules=working_rules(program, host),
        sync_status=sync_statuses([host.pk])[host.pk],
    )
    return availability(
        Query(
            groups=[Group(members=[member])],
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


def programs_managed_by(*, user: User) -> QuerySet[Program]:
    """Programmes whose appointments the person manages (staff, programme admins)."""
    if user.is_superuser:
        return Program.objects.all()
    return Program.objects.filter(
        memberships__user=user, memberships__role__in=MANAGER_ROLES
    ).distinct()


def appointments_for(*, user: User) -> QuerySet[Appointment]:
    """Appointments the person hosts, attends or booked for someone, soonest first."""
    return (
        Appointment.objects.filter(Q(host=user) | Q(attendees=user) | Q(booked_by=user))
        .distinct()
        .select_related("program", "host")
        .prefetch_related("attendees")
        .order_by("start")
    )


def appointment_for(*, user: User, pk: int) -> Appointment:
    """One appointment the person may see: as host, attendee, or programme staff."""
    visible = Q(host=user) | Q(attendees=user) | Q(program__in=programs_managed_by(user=user))
    return (
        Appointment.objects.filter(visible)
        .distinct()
        .select_related("program", "host", "booked_by")
        .prefetch_related("attendees", "transitions__actor")
        .get(pk=pk)
    )


def integrated_conferencing_available(*, host: User) -> bool:
    """Whether the host's write calendar can make its own video meetings."""
    calendar = (
        Calendar.objects.filter(owner=host, is_write_target=True, is_deleted=False)
        .select_related("account")
        .first()
    )
    return (
        calendar is not None
        and not calendar.is_read_only
        and calendar.account.status != CalendarAccount.Status.DISCONNECTED
        and offers_integrated_conferencing(calendar.account.provider)
    )
