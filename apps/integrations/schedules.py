"""The webhook sweep, created in code and edited in the admin (django-celery-beat)."""

from __future__ import annotations

from typing import Any


def ensure_webhook_schedule(**kwargs: Any) -> None:
    """Runs after every migrate; get_or_create keeps it idempotent and leaves an
    admin's edits (interval, enabled) alone."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.get_or_create(
        name="Integrations: redeliver webhooks that are due",
        defaults={"task": "integrations.webhook_sweep", "interval": every, "queue": "webhooks"},
    )
