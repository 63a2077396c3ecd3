"""Emails about meeting polls, rendered in each recipient's own time zone and queued
for delivery once the transaction commits (apps.accounts.email)."""

from __future__ import annotations

from typing import Any

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
from apps.mentoring.models import MeetingPoll, PollOption


def poll_url(poll: MeetingPoll) -> str:
    return settings.SITE_URL + reverse("poll_detail", args=[poll.pk])


def personal_url(poll: MeetingPoll, token: str) -> str:
    return settings.SITE_URL + reverse("poll_link", args=[poll.pk, token])


def _send(
    person: User,
    subject: str,
    template: str,
    context: dict[str, Any],
    attachment: tuple[str, str, str] | None = None,
) -> None:
    with timezone.override(person.zone):
        body = render_to_string(
            f"mentoring/email/{template}.txt",
            {**context, "person": person, "time_zone": person.time_zone},
        )
    poll: MeetingPoll = context["poll"]
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        # The organization's scheduling assistant mailbox, when it named one.
        from_email=poll.group.program.organization.sender,
        to=[person.email],
    )
    if attachment is not None:
        message.attach(*attachment)
    email_enqueue(message)


def send_invitation(
    poll: MeetingPoll, invitee: User, *, token: str | None, reminder: bool = False
) -> None:
    """The invitation (or a reminder) with the personal link, when there is one."""
    prefix = "Reminder: please answer" if reminder else "Please answer"
    _send(
        invitee,
        f"{prefix}: when should “{poll.title}” take place?",
        "invitation",
        {
            "poll": poll,
            "reminder": reminder,
            "personal_link": personal_url(poll, token) if token else None,
            "link": poll_url(poll),
        },
    )


def send_closed(poll: MeetingPoll) -> None:
    """Tell the mentor a poll closed on its deadline, so they pick the winner."""
    _send(
        poll.created_by,
        f"Poll closed: pick a time for “{poll.title}”",
        "closed",
        {"poll": poll, "link": poll_url(poll)},
    )


def send_canceled(poll: MeetingPoll, people: list[User]) -> None:
    for person in people:
        _send(person, f"Poll canceled: {poll.title}", "canceled", {"poll": poll})


def send_finalized(
    poll: MeetingPoll, option: PollOption, appointment: Appointment, people: list[User]
) -> None:
    """Tell every invitee which option won, with an iCalendar invitation for those
    without a connected calendar: the others get the event written into their
    calendar directly, and a second copy from the email would be a duplicate."""
    with_calendar = set(
        Calendar.objects.filter(
            owner__in=people, is_write_target=True, is_deleted=False
        ).values_list("owner_id", flat=True)
    )
    invitation = appointment_ics(appointment, method="REQUEST")
    link = settings.SITE_URL + reverse("appointment_detail", args=[appointment.pk])
    for person in people:
        has_calendar = person.pk in with_calendar
        _send(
            person,
            f"Meeting scheduled: {poll.title}",
            "finalized",
            {
                "poll": poll,
                "option": option,
                "appointment": appointment,
                "link": link,
                "in_calendar": has_calendar,
            },
            None if has_calendar else ("invite.ics", invitation, "text/calendar; method=REQUEST"),
        )
