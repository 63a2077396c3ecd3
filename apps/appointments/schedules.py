"""The outbox sweep, created in code and edited in the admin (django-celery-beat)."""

from __future__ import annotations

from typing import Any


def ensure_outbox_schedule(**kwargs: Any) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.get_or_create(
        name="Appointments: redeliver calendar writes that are due",
        defaults={"task": "appointments.outbox_sweep", "interval": every, "queue": "push"},
    )
