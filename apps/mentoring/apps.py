from django.apps import AppConfig


class MentoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.mentoring"
    label = "mentoring"
    verbose_name = "Mentoring groups and meeting polls"
