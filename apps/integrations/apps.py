from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.integrations"
    label = "integrations"
    verbose_name = "Integrations: API keys and webhooks"

    def ready(self) -> None:
        from apps.integrations import receivers  # noqa: F401 - connects signal receivers
