"""The periodic sync jobs, created in code and edited in the admin (django-celery-beat).

Created once; an admin's later change of interval or time is kept, never overwritten.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def ensure_sync_schedules(**kwargs: Any) -> None:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.CALENDAR_SYNC_INTERVAL_MINUTES, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.get_or_create(
        name="Calendars: incremental sync of every connected calendar",
        defaults={"task": "calendars.sync_due", "interval": every, "queue": "sync"},
    )
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="3", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name="Calendars: nightly full reconciling sync",
        defaults={"task": "calendars.sync_all_full", "crontab": nightly, "queue": "sync"},
    )
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.get_or_create(
        name="Calendars: renew push channels before they expire",
        defaults={"task": "calendars.renew_push_channels", "interval": hourly, "queue": "sync"},
    )
