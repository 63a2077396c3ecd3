"""Celery tasks for integrations: load by id, call the service. Both run on the
"webhooks" queue (set here: the routes in settings name only sync and push)."""

from __future__ import annotations

from celery import shared_task

from apps.integrations.webhooks import webhook_deliver, webhook_sweep


@shared_task(name="integrations.deliver_webhook", queue="webhooks", acks_late=True)
def deliver_webhook_task(*, delivery_id: int) -> None:
    webhook_deliver(delivery_id=delivery_id)


@shared_task(name="integrations.webhook_sweep", queue="webhooks")
def webhook_sweep_task() -> int:
    return webhook_sweep()
