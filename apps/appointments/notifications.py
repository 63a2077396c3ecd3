"""Emails about appointments to the people concerned, with an iCalendar invitation for
those who have no connected calendar (the others get the event written directly)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.email import email_enqueue
from apps.accounts.models import User
from apps.appointments.ics import appointment_ics
from apps.appointments.models import Appointment
from apps.calendars.models import Calendar

SUBJECTS = {
    "booked": "New appointment: {title}",
    "requested": "Appointment requested: {title}",
    Appointment.Status.APPROVED: "Appointment confirmed: {title}",
    Appointment.Status.DECLINED: "Appointment declined: {title}",
    Appointment.Status.CANCELED: "Appointment canceled: {title}",
    "edited": "Appointment changed: {title}",
}


def appointment_notify(appointment: Appointment, *, event: str, actor: User | None) -> None:
    """Email everyone concerned except the person who made the change."""
    subject = SUBJECTS.get(event)
    if subject is None:
        return  # started, completed, no show: nothing to tell anyone
    people = [appointment.host, *appointment.attendees.all()]
    with_calendar = set(
        Calendar.objects.filter(
            owner__in=people, is_write_target=True, is_deleted=False
        ).values_list("owner_id", flat=True)
    )
    method = (
        "CANCEL"
        if event in (Appointment.Status.DECLINED, Appointment.Status.CANCELED)
        else "REQUEST"
    )
    invitation = appointment_ics(appointment, method=method)
    link = settings.SITE_URL + reverse("appointment_detail", args=[appointment.pk])
    for person in people:
        if actor is not None and person.pk == actor.pk:
            continue
        with timezone.override(person.zone):
            body = render_to_string(
                "appointments/email/notification.txt",
                {
                    "appointment": appointment,
                    "event": event,
                    "person": person,
                    "actor": actor,
                    "link": link,
                    "time_zone": person.time_zone,
                },
            )
        message = EmailMultiAlternatives(
            subject=subject.format(title=appointment.title),
            body=body,
            # The organization's scheduling assistant mailbox, when it named one.
            from_email=appointment.program.organization.sender,
            to=[person.email],
        )
        if person.pk not in with_calendar:
            message.attach("invite.ics", invitation, f"text/calendar; method={method}")
        email_enqueue(message)
