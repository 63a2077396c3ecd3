from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.appointments"
    label = "appointments"
    verbose_name = "Appointments"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.appointments.outbox import rewrite_drifted_events
        from apps.appointments.schedules import ensure_outbox_schedule
        from apps.calendars.signals import written_events_drifted

        post_migrate.connect(ensure_outbox_schedule, sender=self)
        written_events_drifted.connect(rewrite_drifted_events)
