"""Celery tasks for the pull side. Each loads by id and calls a service."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from apps.calendars.models import Calendar, CalendarAccount, PushChannel, SyncRun
from apps.calendars.providers.base import ProviderError, TransientError
from apps.calendars.push import push_channel_renew, push_channels_due, push_channels_reconcile
from apps.calendars.sync import calendar_account_sync, sync_runs_prune

MAX_BACKOFF_SECONDS = 30 * 60
logger = logging.getLogger(__name__)


@shared_task(bind=True, name="calendars.sync_account", max_retries=8, acks_late=True)
def sync_account_task(
    self: Task[Any, Any],
    *,
    account_id: int,
    full: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULED,
) -> None:
    account = CalendarAccount.objects.filter(pk=account_id).select_related("owner").first()
    if account is None:  # disconnected meanwhile
        return
    _sync_or_retry(self, account=account, full=full, trigger=trigger)


def _sync_or_retry(task: Task[Any, Any], **arguments: Any) -> None:
    """Run `calendar_account_sync`; a temporary failure retries the task later."""
    try:
        calendar_account_sync(**arguments)
    except TransientError as error:
        if task.request.is_eager:
            # In-process (`make run`): the failure is on the account; never retry
            # inside somebody's page request.
            return
        # Exponential backoff, or the provider's own Retry-After when it gives one.
        countdown = error.retry_after or min(MAX_BACKOFF_SECONDS, 30 * 2**task.request.retries)
        raise task.retry(exc=error, countdown=countdown) from error


@shared_task(name="calendars.sync_due")
def sync_due_task() -> int:
    """Queue an incremental sync of every account that is not disconnected. One task
    per account, so one slow or failing account never holds up the others."""
    ids = list(
        CalendarAccount.objects.exclude(status=CalendarAccount.Status.DISCONNECTED).values_list(
            "pk", flat=True
        )
    )
    for account_id in ids:
        sync_account_task.delay(account_id=account_id)
    return len(ids)


@shared_task(name="calendars.sync_all_full")
def sync_all_full_task() -> int:
    """The nightly reconciling full sync: it corrects anything an incremental missed,
    and rolls the sync window forward. Old sync records are pruned on the way."""
    sync_runs_prune()
    ids = list(
        CalendarAccount.objects.exclude(status=CalendarAccount.Status.DISCONNECTED).values_list(
            "pk", flat=True
        )
    )
    for account_id in ids:
        sync_account_task.delay(account_id=account_id, full=True, trigger=SyncRun.Trigger.NIGHTLY)
    return len(ids)


@shared_task(bind=True, name="calendars.sync_calendar", max_retries=8, acks_late=True)
def sync_calendar_task(self: Task[Any, Any], *, calendar_id: int, full: bool = False) -> None:
    """An incremental sync of the one calendar a change notification named."""
    calendar = Calendar.objects.filter(pk=calendar_id).select_related("account__owner").first()
    if calendar is None:
        return
    _sync_or_retry(
        self,
        account=calendar.account,
        full=full,
        trigger=SyncRun.Trigger.PUSH,
        calendar_ids=[calendar_id],
    )


@shared_task(name="calendars.renew_push_channels")
def renew_push_channels_task() -> int:
    """Renew the push channels that expire soon, one task each."""
    due = push_channels_due()
    for channel_id in due:
        renew_push_channel_task.delay(channel_id=channel_id)
    return len(due)


@shared_task(name="calendars.renew_push_channel")
def renew_push_channel_task(*, channel_id: int) -> None:
    channel = PushChannel.objects.filter(pk=channel_id).select_related("calendar__account").first()
    if channel is None:
        return
    try:
        push_channel_renew(channel=channel)
    except ProviderError as error:
        # Polling covers the calendar meanwhile; the next sync makes a new channel.
        logger.warning("Could not renew push channel %s: %s", channel_id, error.message)
        channel.delete()


@shared_task(name="calendars.resubscribe")
def resubscribe_task(*, calendar_id: int) -> None:
    """The service dropped a subscription: forget it and make a new one."""
    calendar = Calendar.objects.filter(pk=calendar_id).select_related("account__owner").first()
    if calendar is None:
        return
    PushChannel.objects.filter(calendar=calendar).delete()
    push_channels_reconcile(account=calendar.account)
