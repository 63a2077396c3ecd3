from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.mail import EmailMessage
from django.utils import timezone

from apps.mentoring.models import MeetingPoll
from apps.mentoring.services import poll_create, poll_publish

UTC = dt.UTC


def monday(weeks_ahead: int = 1) -> dt.date:
    """A Monday at least a few days away, so notice and "not in the past" never bite."""
    day = timezone.now().date() + dt.timedelta(days=3 + 7 * (weeks_ahead - 1))
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def at(day: dt.date, hour: int, minute: int = 0, zone: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), zone)


LINK = re.compile(r"(/mentoring/polls/(\d+)/t/([A-Za-z0-9_-]+)/)")


def personal_links(outbox: list[EmailMessage]) -> dict[str, str]:
    """The latest personal link path each recipient was sent, by email address."""
    links = {}
    for message in outbox:
        match = LINK.search(str(message.body))
        if match:
            links[message.to[0]] = match.group(1)
    return links


def publish_poll(circle: Any, capture: Any, *, days: int = 1, **kwargs: Any) -> MeetingPoll:
    """A published poll of the circle, its emails sent (on-commit callbacks run)."""
    day = monday()
    with capture(execute=True):
        poll = poll_create(
            group=circle.group,
            actor=circle.mentor,
            title="Check-in",
            duration_minutes=60,
            date_from=day,
            date_to=day + dt.timedelta(days=days - 1),
            **kwargs,
        )
        poll_publish(poll=poll, actor=circle.mentor)
    poll.refresh_from_db()
    return poll
