from django.apps import AppConfig


class MentoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.mentoring"
    label = "mentoring"
    verbose_name = "Mentoring groups and meeting polls"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.accounts.signals import demo_seeded
        from apps.mentoring.groups import demo_group_ensure
        from apps.mentoring.schedules import ensure_poll_schedules

        post_migrate.connect(ensure_poll_schedules, sender=self)
        demo_seeded.connect(demo_group_ensure)
