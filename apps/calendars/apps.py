from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CalendarsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.calendars"
    label = "calendars"
    verbose_name = "Calendar connections"

    def ready(self) -> None:
        from apps.calendars import oauth_connect  # noqa: F401 - connects allauth's signals
        from apps.calendars.schedules import ensure_sync_schedules

        post_migrate.connect(ensure_sync_schedules, sender=self)
