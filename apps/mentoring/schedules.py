"""The poll deadline and reminder jobs, created in code and edited in the admin
(django-celery-beat). Created once; an admin's later change is kept."""

from __future__ import annotations

from typing import Any

POLL_INTERVAL_MINUTES = 5


def ensure_poll_schedules(**kwargs: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(
        every=POLL_INTERVAL_MINUTES, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.get_or_create(
        name="Mentoring: close meeting polls whose deadline has passed",
        defaults={"task": "mentoring.close_due_polls", "interval": every},
    )
    PeriodicTask.objects.get_or_create(
        name="Mentoring: remind invitees who have not answered a poll",
        defaults={"task": "mentoring.remind_due_polls", "interval": every},
    )
