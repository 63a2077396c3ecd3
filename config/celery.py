"""The Celery app. Queues: sync (pulling calendars), push (writing to calendars),
webhooks (outbound deliveries); everything else runs on the default queue."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("convene")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
