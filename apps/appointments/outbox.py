"""The push side: appointments written into calendars through a transactional outbox.

`outbox_enqueue` runs inside the transaction that changes an appointment, so the change
and its outbox rows commit together (or not at all). A task delivers each row right
after commit; a periodic sweep redelivers anything stuck. Delivery writes the
appointment's current state with a deterministic UID, so retries and duplicates never
create a second event.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.appointments.models import Appointment, CalendarWrite
from apps.appointments.signals import appointment_changed
from apps.calendars.models import Calendar, WrittenEvent
from apps.calendars.providers import ical, provider_class
from apps.calendars.providers.base import EventPayload, ProviderError, TransientError
from apps.calendars.services import calendar_event_delete, calendar_event_upsert

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_BACKOFF = dt.timedelta(hours=1)
Status = Appointment.Status

# DESIGN.md "Appointment life cycle": what each status looks like in a calendar.
TITLE_PREFIX = {
    Status.REQUESTED: "Requested: ",
    Status.APPROVED: "",
    Status.STARTED: "Started: ",
    Status.COMPLETED: "Completed: ",
    Status.NO_SHOW: "No show: ",
}


def event_key(appointment: Appointment) -> str:
    return f"appointment-{appointment.pk}"


def event_payload(appointment: Appointment, calendar: Calendar) -> EventPayload:
    """What the appointment looks like in one calendar. The UID is fixed per appointment
    and calendar, which makes every write idempotent."""
    people = ", ".join(str(p) for p in [appointment.host, *appointment.attendees.all()])
    link = settings.SITE_URL + reverse("appointment_detail", args=[appointment.pk])
    description = f"With {people}.\nBooked through Convene: {link}"
    if appointment.join_url:
        description = f"Join: {appointment.join_url}\n{description}"
    # Only the host's calendar makes the meeting; everyone else's gets its link.
    make_meeting = (
        appointment.integrated_conferencing
        and not appointment.join_url
        and calendar.owner_id == appointment.host_id
    )
    return EventPayload(
        uid=ical.convene_uid(f"appointment-{appointment.pk}-calendar-{calendar.pk}"),
        title=TITLE_PREFIX.get(Status(appointment.status), "") + appointment.title,
        start=appointment.start,
        end=appointment.end,
        description=description,
        location=appointment.location,
        join_url=appointment.join_url,
        conferencing=make_meeting,
    )


def outbox_enqueue(appointment: Appointment) -> list[CalendarWrite]:
    """Queue a write of `appointment` to every calendar it belongs in (or was written
    to). Call inside the transaction that changed the appointment."""
    people = [appointment.host_id, *appointment.attendees.values_list("pk", flat=True)]
    targets = set(
        Calendar.objects.filter(
            owner_id__in=people, is_write_target=True, is_deleted=False
        ).values_list("pk", flat=True)
    )
    # Calendars that already hold the event must hear of deletions and changes too.
    targets |= set(
        WrittenEvent.objects.filter(key=event_key(appointment)).values_list(
            "calendar_id", flat=True
        )
    )
    now = timezone.now()
    writes = CalendarWrite.objects.bulk_create(
        CalendarWrite(appointment=appointment, calendar_id=pk, next_attempt_at=now)
        for pk in sorted(targets)
    )
    ids = [w.pk for w in writes]
    if ids:
        transaction.on_commit(lambda: _deliver_soon(ids))
    return writes


def rewrite_drifted_events(*, calendar: Calendar, keys: list[str], **kwargs: object) -> None:
    """Convene's version wins: an appointment's event edited or deleted in someone's
    calendar app is written again (DESIGN.md, appointment life cycle)."""
    ids = [int(key.removeprefix("appointment-")) for key in keys if key.startswith("appointment-")]
    now = timezone.now()
    writes = CalendarWrite.objects.bulk_create(
        CalendarWrite(appointment_id=pk, calendar=calendar, next_attempt_at=now)
        for pk in Appointment.objects.filter(pk__in=ids).values_list("pk", flat=True)
    )
    write_ids = [w.pk for w in writes]
    if write_ids:
        transaction.on_commit(lambda: _deliver_soon(write_ids))


def _deliver_soon(ids: list[int]) -> None:
    from apps.appointments.tasks import deliver_calendar_write_task

    for write_id in ids:
        deliver_calendar_write_task.delay(write_id=write_id)


def calendar_write_deliver(*, write_id: int) -> CalendarWrite | None:
    """Deliver one outbox row. Returns it, or None when another worker has it or it is
    no longer pending. Provider errors are recorded and retried later, never raised."""
    with transaction.atomic():
        write = (
            CalendarWrite.objects.select_for_update(skip_locked=True)
            .select_related("appointment", "calendar__account__owner")
            .filter(pk=write_id, state=CalendarWrite.State.PENDING)
            .first()
        )
        if write is None:
            return None
        appointment, calendar = write.appointment, write.calendar
        key = event_key(appointment)
        try:
            if appointment.status in (Status.DECLINED, Status.CANCELED):
                calendar_event_delete(calendar=calendar, key=key)
            else:
                payload = event_payload(appointment, calendar)
                ref = calendar_event_upsert(calendar=calendar, key=key, payload=payload)
                if payload.conferencing and ref.join_url:
                    _conferencing_store(appointment, calendar, ref.join_url)
        except ProviderError as error:
            _failed(write, error)
        else:
            write.state = CalendarWrite.State.DONE
            write.delivered_at = timezone.now()
            write.last_error = ""
            write.attempts += 1
            write.save(update_fields=["state", "delivered_at", "last_error", "attempts"])
        return write


def _conferencing_store(appointment: Appointment, calendar: Calendar, join_url: str) -> None:
    """The host's calendar made the video meeting: keep its link on the appointment,
    write it into everyone else's calendar, and tell integrations."""
    updated = Appointment.objects.filter(pk=appointment.pk, join_url="").update(join_url=join_url)
    if not updated:
        return
    appointment.refresh_from_db()
    outbox_enqueue(appointment)
    name = provider_class(calendar.account.provider).conferencing_name
    transaction.on_commit(
        lambda: appointment_changed.send(
            sender=Appointment,
            appointment=appointment,
            change="conferencing_assigned",
            actor=None,
            provider_description=name,
        )
    )


def _failed(write: CalendarWrite, error: ProviderError) -> None:
    write.attempts += 1
    write.last_error = error.message
    if write.attempts >= MAX_ATTEMPTS:
        write.state = CalendarWrite.State.FAILED
        logger.warning("Calendar write %s failed for good: %s", write.pk, error.message)
    else:
        backoff = dt.timedelta(seconds=min(MAX_BACKOFF.total_seconds(), 15 * 2**write.attempts))
        if isinstance(error, TransientError) and error.retry_after:
            backoff = dt.timedelta(seconds=error.retry_after)
        write.next_attempt_at = timezone.now() + backoff
    write.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])


def outbox_sweep(*, now: dt.datetime | None = None) -> int:
    """Redeliver every pending row whose time has come (a lost task, a worker that
    died, a provider that was down). Returns how many were attempted."""
    now = now or timezone.now()
    ids = list(
        CalendarWrite.objects.filter(
            state=CalendarWrite.State.PENDING, next_attempt_at__lte=now
        ).values_list("pk", flat=True)[:1000]
    )
    for write_id in ids:
        calendar_write_deliver(write_id=write_id)
    return len(ids)
