# Importing the modules registers their admin classes.
from apps.integrations.admin import api_keys, webhooks  # noqa: F401
