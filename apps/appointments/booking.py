"""Booking: a participant takes a free slot of a host, or staff book on someone's
behalf. Double booking is impossible: the host's row is locked while availability is
re-checked, and on PostgreSQL an exclusion constraint refuses overlapping active
appointments of one host as the last guard."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Membership, Program, Role, User
from apps.appointments.availability import Interval
from apps.appointments.models import Appointment, AppointmentTransition, HostSettings
from apps.appointments.notifications import appointment_notify
from apps.appointments.outbox import outbox_enqueue
from apps.appointments.selectors import (
    HOST_ROLES,
    host_availability,
    integrated_conferencing_available,
)
from apps.appointments.services import SlotTakenError, announce, is_program_manager

MAX_DURATION = dt.timedelta(hours=8)
TAKEN = "This slot was just taken. Please pick one of the times still free."


def appointment_book(
    *,
    program: Program,
    host: User,
    attendees: list[User],
    start: dt.datetime,
    end: dt.datetime,
    title: str,
    booked_by: User | None,
    notes: str = "",
    location: str = "",
    join_url: str = "",
    integrated_conferencing: bool | None = None,
    override_availability: bool = False,
) -> Appointment:
    """Book `host` for `attendees` from `start` to `end`.

    A participant books for themselves, only in free slots. Staff and programme admins
    book on anyone's behalf and may override availability (recorded on the
    appointment). `booked_by=None` is the organization's own integration (an API key,
    whose organization the API has checked): it books on behalf, in free slots only.
    `integrated_conferencing` asks the host's calendar for a video meeting (Google
    Meet, Teams); None follows the host's booking settings, and an explicit `join_url`
    wins over both. Raises PermissionDenied, ValidationError, or SlotTakenError when
    the time is not (or no longer) free.
    """
    if not attendees:
        raise ValidationError("An appointment needs at least one attendee.")
    if not dt.timedelta(0) < end - start <= MAX_DURATION:
        raise ValidationError("An appointment lasts between a minute and eight hours.")
    members = Membership.objects.filter(program=program)
    if not members.filter(user=host, role__in=HOST_ROLES).exists():
        raise ValidationError(f"{host} does not take appointments in {program}.")
    participant_ids = set(
        members.filter(role=Role.PARTICIPANT, user__in=attendees).values_list("user_id", flat=True)
    )
    if participant_ids != {a.pk for a in attendees}:
        raise ValidationError(f"Every attendee must be a participant of {program}.")
    on_behalf = booked_by is None or booked_by not in attendees
    manager = booked_by is not None and is_program_manager(booked_by, program.pk)
    if on_behalf and not manager and booked_by is not None:
        raise PermissionDenied("Only programme staff can book on someone else's behalf.")
    if override_availability and not manager:
        raise PermissionDenied("Only programme staff can book outside the host's free time.")

    available = integrated_conferencing_available(host=host)
    if integrated_conferencing and not available:
        raise ValidationError(
            f"{host}'s calendar cannot create video meetings: it must be a Google or "
            "Microsoft calendar that Convene may write to."
        )
    if integrated_conferencing is None:
        integrated_conferencing = (
            available and HostSettings.objects.filter(host=host, video_meetings=True).exists()
        )
    try:
        with transaction.atomic():
            # Serialises bookings of one host: the check below sees every commit before it.
            User.objects.select_for_update().filter(pk=host.pk).first()
            free = _is_free(program, host, start, end)
            if not free and not override_availability:
                raise SlotTakenError(TAKEN)
            needs_approval = (
                booked_by is not None
                and not manager
                and HostSettings.objects.filter(host=host, needs_approval=True).exists()
            )
            appointment = Appointment.objects.create(
                program=program,
                host=host,
                start=start,
                end=end,
                title=title,
                notes=notes,
                location=location,
                join_url=join_url,
                integrated_conferencing=integrated_conferencing and not join_url,
                status=Appointment.Status.REQUESTED
                if needs_approval
                else Appointment.Status.APPROVED,
                booked_by=booked_by,
                booked_on_behalf=on_behalf,
                availability_overridden=override_availability and not free,
            )
            appointment.attendees.set(attendees)
            AppointmentTransition.objects.create(
                appointment=appointment,
                from_status="",
                to_status=appointment.status,
                actor=booked_by,
                note="overrode availability" if appointment.availability_overridden else "",
            )
            outbox_enqueue(appointment)
            appointment_notify(
                appointment, event="requested" if needs_approval else "booked", actor=booked_by
            )
            announce(appointment, change="created", actor=booked_by)
    except IntegrityError as error:
        # The exclusion constraint: a concurrent booking won the race.
        raise SlotTakenError(TAKEN) from error
    return appointment


def _is_free(program: Program, host: User, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether [start, end) is a bookable slot of the host right now."""
    result = host_availability(
        program=program,
        host=host,
        periods=[Interval(start, end)],
        duration=end - start,
        now=timezone.now(),
    )
    # Compare in UTC: Python calls two zones' datetimes unequal inside a repeated
    # (fall-back) hour even when they are the same instant.
    wanted = start.astimezone(dt.UTC)
    return any(slot.start.astimezone(dt.UTC) == wanted for slot in result.slots(overlapping=True))
