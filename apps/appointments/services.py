"""Writes for appointments: the life cycle, edits and host settings. Each transition
checks who may do it, is recorded, and queues the calendar writes in the same
transaction (the outbox)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.models import Membership, User
from apps.appointments.models import Appointment, AppointmentTransition, HostSettings
from apps.appointments.notifications import appointment_notify
from apps.appointments.outbox import outbox_enqueue
from apps.appointments.selectors import MANAGER_ROLES, integrated_conferencing_available
from apps.appointments.signals import appointment_changed

Status = Appointment.Status

ALLOWED: dict[str, set[str]] = {
    Status.REQUESTED: {Status.APPROVED, Status.DECLINED, Status.CANCELED},
    Status.APPROVED: {Status.STARTED, Status.CANCELED},
    Status.STARTED: {Status.COMPLETED, Status.NO_SHOW},
}


def announce(appointment: Appointment, *, change: str, actor: User | None) -> None:
    """Tell other apps (webhooks) once the change is committed."""
    transaction.on_commit(
        lambda: appointment_changed.send(
            sender=Appointment, appointment=appointment, change=change, actor=actor
        )
    )


class SlotTakenError(ValidationError):
    """Someone else booked this time a moment ago."""


def is_program_manager(user: User, program_id: int) -> bool:
    """Staff and programme admins of the programme manage its appointments."""
    return (
        user.is_superuser
        or Membership.objects.filter(
            user=user, program_id=program_id, role__in=MANAGER_ROLES
        ).exists()
    )


def may_manage(appointment: Appointment, actor: User | None) -> bool:
    """Whether `actor` may approve, start, complete and edit the appointment."""
    # None is the organization's own integration (an API key): the API has checked
    # that the appointment belongs to the key's organization.
    if actor is None:
        return True
    return actor.pk == appointment.host_id or is_program_manager(actor, appointment.program_id)


def _may_cancel(appointment: Appointment, actor: User | None) -> bool:
    if may_manage(appointment, actor):
        return True
    return actor is not None and appointment.attendees.filter(pk=actor.pk).exists()


def _record(appointment: Appointment, *, before: str, actor: User | None, note: str = "") -> None:
    AppointmentTransition.objects.create(
        appointment=appointment,
        from_status=before,
        to_status=appointment.status,
        actor=actor,
        note=note,
    )


def appointment_transition(
    *, appointment: Appointment, actor: User | None, to: str, note: str = ""
) -> Appointment:
    """Move an appointment along its life cycle.

    Hosts, staff and programme admins approve, decline, start and complete; attendees
    may only cancel. Raises PermissionDenied or ValidationError (not allowed from the
    current status).
    """
    allowed = _may_cancel if to == Status.CANCELED else may_manage
    if not allowed(appointment, actor):
        raise PermissionDenied("You may not change this appointment.")
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        before = appointment.status
        if to not in ALLOWED.get(before, set()):
            raise ValidationError(
                f"A {appointment.get_status_display().lower()} appointment cannot become "
                f"{Status(to).label.lower()}."
            )
        appointment.status = to
        appointment.save(update_fields=["status", "updated_at"])
        _record(appointment, before=before, actor=actor, note=note)
        outbox_enqueue(appointment)
        appointment_notify(appointment, event=to, actor=actor)
        change = "canceled" if to in (Status.CANCELED, Status.DECLINED) else "status_changed"
        announce(appointment, change=change, actor=actor)
    return appointment


def appointment_edit(
    *,
    appointment: Appointment,
    actor: User | None,
    start: dt.datetime,
    end: dt.datetime,
    location: str,
    join_url: str,
    integrated_conferencing: bool | None = None,
    title: str | None = None,
) -> Appointment:
    """Change time, place or conferencing while the appointment is not final.
    `integrated_conferencing=True` asks the host's calendar for a video meeting (the
    link it makes replaces `join_url`); None keeps the current choice."""
    if not may_manage(appointment, actor):
        raise PermissionDenied("Only the host or programme staff can edit this appointment.")
    if integrated_conferencing and not appointment.integrated_conferencing:
        if not integrated_conferencing_available(host=appointment.host):
            raise ValidationError(
                "The host's calendar cannot create video meetings: it must be a Google or "
                "Microsoft calendar that Convene may write to."
            )
        join_url = ""
    elif integrated_conferencing and appointment.integrated_conferencing:
        join_url = appointment.join_url  # the link the calendar made stays
    if end <= start:
        raise ValidationError("The appointment must end after it starts.")
    try:
        with transaction.atomic():
            appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
            if appointment.is_final:
                raise ValidationError("A finished appointment can no longer be edited.")
            appointment.start, appointment.end = start, end
            appointment.location, appointment.join_url = location, join_url
            if integrated_conferencing is not None:
                appointment.integrated_conferencing = integrated_conferencing
            if title:
                appointment.title = title
            appointment.save()
            _record(appointment, before=appointment.status, actor=actor, note="edited")
            outbox_enqueue(appointment)
            appointment_notify(appointment, event="edited", actor=actor)
            announce(appointment, change="updated", actor=actor)
    except IntegrityError as error:
        raise SlotTakenError("The host already has an appointment at that time.") from error
    return appointment


def host_settings_update(
    *, host: User, needs_approval: bool, video_meetings: bool = False
) -> HostSettings:
    if video_meetings and not integrated_conferencing_available(host=host):
        raise ValidationError(
            "Video meetings come from your appointments calendar: choose a Google or "
            "Microsoft calendar for appointments first (Settings, Calendars)."
        )
    settings, _ = HostSettings.objects.update_or_create(
        host=host, defaults={"needs_approval": needs_approval, "video_meetings": video_meetings}
    )
    return settings
