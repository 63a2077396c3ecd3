"""Celery tasks for integrations: load by id, call the service. Webhooks run on the
"webhooks" queue, organization calendar connections on "sync" (set here: the routes
in settings name only the calendars and appointments tasks)."""

from __future__ import annotations

from celery import shared_task

from apps.accounts.models import User
from apps.integrations.models import OrgIntegration
from apps.integrations.org_calendars import (
    enabled_integrations_for,
    org_calendar_connect,
    org_calendars_connect,
)
from apps.integrations.webhooks import webhook_deliver, webhook_sweep


@shared_task(name="integrations.deliver_webhook", queue="webhooks", acks_late=True)
def deliver_webhook_task(*, delivery_id: int) -> None:
    webhook_deliver(delivery_id=delivery_id)


@shared_task(name="integrations.webhook_sweep", queue="webhooks")
def webhook_sweep_task() -> int:
    return webhook_sweep()


@shared_task(name="integrations.org_calendars_connect", queue="sync")
def org_calendars_connect_task(*, integration_id: int) -> int:
    """Connect everyone an enabled organization integration covers."""
    integration = OrgIntegration.objects.filter(pk=integration_id).first()
    return org_calendars_connect(integration=integration) if integration else 0


@shared_task(name="integrations.org_calendar_connect_member", queue="sync")
def org_calendar_connect_member_task(*, user_id: int) -> None:
    """A new member joined a programme: connect them through every enabled integration
    of its organization that covers their email domain."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    for integration in enabled_integrations_for(user=user):
        org_calendar_connect(integration=integration, user=user)
