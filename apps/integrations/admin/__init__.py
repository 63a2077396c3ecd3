# Importing the modules registers their admin classes.
from apps.integrations.admin import api_keys, org_integrations, webhooks  # noqa: F401
