from apps.integrations.admin import api_keys  # noqa: F401 - registers the admin
