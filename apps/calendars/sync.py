"""The pull side: bring each calendar's busy time into `BusyBlock`.

Providers report changes; this module applies them. A full sync reconciles (upsert what
is there, delete what is gone), never "delete everything, then refetch", so a failure
half-way leaves the last known busy time in place.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.email import email_enqueue
from apps.accounts.models import Program, calendar_noun
from apps.calendars.models import BusyBlock, Calendar, CalendarAccount, SyncRun, WrittenEvent
from apps.calendars.providers import provider_for
from apps.calendars.providers.base import (
    AuthError,
    BusyChanges,
    CalendarProvider,
    PermissionError,
    ProviderError,
    TransientError,
    Window,
)
from apps.calendars.push import push_channels_reconcile
from apps.calendars.signals import calendar_account_disconnected, written_events_drifted

logger = logging.getLogger(__name__)

DEFAULT_SYNC_WINDOW_DAYS = 180
# Longer than any sync should take; a crashed worker's lock expires on its own.
LOCK_SECONDS = 15 * 60
# Sync records are for troubleshooting, not history: a month is plenty.
SYNC_RUN_RETENTION = dt.timedelta(days=30)
Status = CalendarAccount.Status


def sync_window(account: CalendarAccount, *, now: dt.datetime | None = None) -> Window:
    """From one day ago to the longest sync window of the owner's programmes, the end
    rounded up to the next midnight UTC: a window that moved on every sync would make
    every Google or Graph sync a full one (their sync tokens fix the window)."""
    now = now or timezone.now()
    days = (
        Program.objects.filter(memberships__user_id=account.owner_id, is_active=True).aggregate(
            days=Max("sync_window_days")
        )["days"]
        or DEFAULT_SYNC_WINDOW_DAYS
    )
    end = (now + dt.timedelta(days=days + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(start=now - dt.timedelta(days=1), end=end)


def calendar_account_sync(
    *,
    account: CalendarAccount,
    full: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULED,
    calendar_ids: list[int] | None = None,
) -> list[SyncRun]:
    """Sync every calendar of `account` that is checked for conflicts (or only those
    in `calendar_ids`: a change notification names one calendar).

    Returns one SyncRun per calendar. Raises TransientError (after recording it) so the
    caller can retry with backoff; authentication and permission problems are recorded
    on the account and not raised: retrying them cannot help.
    """
    if account.status == Status.DISCONNECTED:
        return []
    calendars = account.calendars.filter(check_conflicts=True, is_deleted=False)
    if calendar_ids is not None:
        calendars = calendars.filter(pk__in=calendar_ids)
    window = sync_window(account)
    CalendarAccount.objects.filter(pk=account.pk).update(
        status=Status.SYNCING, last_attempt_at=timezone.now()
    )
    provider = provider_for(account)
    runs: list[SyncRun] = []
    synced = False
    try:
        for calendar in calendars:
            runs.append(
                calendar_sync(
                    provider=provider, calendar=calendar, window=window, full=full, trigger=trigger
                )
            )
    except AuthError as error:
        calendar_account_mark_disconnected(account=account, reason=error.message)
    except PermissionError as error:
        _mark_failed(account, error.message)
    except TransientError as error:
        _mark_failed(account, f"{error.message} Convene will try again shortly.")
        raise
    else:
        account.status = Status.ACTIVE
        account.status_detail = ""
        account.last_synced_at = timezone.now()
        account.consecutive_failures = 0
        account.save(
            update_fields=["status", "status_detail", "last_synced_at", "consecutive_failures"]
        )
        synced = True
    finally:
        provider.close()
    if synced:
        push_channels_reconcile(account=account)
    return runs


def calendar_sync(
    *,
    provider: CalendarProvider,
    calendar: Calendar,
    window: Window,
    full: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULED,
) -> SyncRun:
    """Sync one calendar. Two syncs of one calendar never overlap: the second is
    recorded as skipped. Provider errors are recorded on the run, then raised."""
    lock = f"calendars:sync-lock:{calendar.pk}"
    if not cache.add(lock, "locked", LOCK_SECONDS):
        return SyncRun.objects.create(
            account_id=calendar.account_id,
            calendar=calendar,
            trigger=trigger,
            full=full,
            outcome=SyncRun.Outcome.SKIPPED,
            finished_at=timezone.now(),
        )
    try:
        run = SyncRun.objects.create(
            account_id=calendar.account_id, calendar=calendar, trigger=trigger, full=full
        )
        try:
            changes = provider.sync_busy(
                calendar.external_id, window, None if full else (calendar.sync_state or None)
            )
        except ProviderError as error:
            run.outcome = SyncRun.Outcome.FAILED
            run.error = error.message
            run.finished_at = timezone.now()
            run.save(update_fields=["outcome", "error", "finished_at"])
            raise
        with transaction.atomic():
            upserted, deleted = _apply(calendar, changes, window)
            calendar.sync_state = changes.state
            calendar.last_synced_at = timezone.now()
            calendar.save(update_fields=["sync_state", "last_synced_at"])
            run.full = changes.full
            run.upserted, run.deleted = upserted, deleted
            run.skipped = len(changes.skipped)
            run.requests = changes.requests
            run.error = "\n".join(f"Skipped {e.item}: {e.message}" for e in changes.skipped)[:4000]
            run.outcome = SyncRun.Outcome.OK
            run.finished_at = timezone.now()
            run.save()
        if changes.full and changes.versions is not None:
            _notice_drift(calendar, changes.versions)
        for problem in changes.skipped:
            logger.warning(
                "Skipped a malformed event in calendar %s: %s", calendar.pk, problem.message
            )
        return run
    finally:
        cache.delete(lock)


def _apply(calendar: Calendar, changes: BusyChanges, window: Window) -> tuple[int, int]:
    """Write the changes; returns (blocks upserted, blocks deleted). The number of
    queries does not depend on the number of events."""
    blocks = {
        (i.event_id, i.instance_start): BusyBlock(
            calendar=calendar,
            owner_id=calendar.owner_id,
            external_event_id=i.event_id,
            instance_start=i.instance_start,
            start=i.start,
            end=i.end,
            all_day=i.all_day,
            kind=i.kind,
        )
        for i in changes.instances
        if i.end > window.start and i.start < window.end
    }
    stored = BusyBlock.objects.filter(calendar=calendar)
    deleted = 0
    if changes.full:
        gone = [
            pk
            for pk, event_id, instance_start in stored.values_list(
                "pk", "external_event_id", "instance_start"
            )
            if (event_id, instance_start) not in blocks
        ]
        deleted += _delete_blocks(gone)
    elif replaced := changes.changed | changes.deleted:
        deleted += stored.filter(external_event_id__in=replaced).delete()[0]
    deleted += stored.filter(end__lte=window.start).delete()[0]
    # No batch_size: on PostgreSQL Django inserts through UNNEST with a fixed number of
    # parameters, so one statement serves any number of blocks.
    BusyBlock.objects.bulk_create(
        blocks.values(),
        update_conflicts=True,
        unique_fields=["calendar", "external_event_id", "instance_start"],
        update_fields=["start", "end", "all_day", "kind"],
    )
    return len(blocks), deleted


def _delete_blocks(pks: list[int]) -> int:
    if not pks:
        return 0
    if connection.vendor == "postgresql":
        # One statement with one array parameter, however many blocks went away.
        return BusyBlock.objects.extra(where=["id = ANY(%s)"], params=[pks]).delete()[0]
    deleted = 0
    for offset in range(0, len(pks), 500):  # SQLite's parameter limit
        deleted += BusyBlock.objects.filter(pk__in=pks[offset : offset + 500]).delete()[0]
    return deleted


def sync_runs_prune(*, older_than: dt.timedelta = SYNC_RUN_RETENTION) -> int:
    """Forget sync records older than the retention period; returns how many."""
    return SyncRun.objects.filter(started_at__lt=timezone.now() - older_than).delete()[0]


def _notice_drift(calendar: Calendar, versions: dict[str, str]) -> None:
    """Events Convene wrote that were edited or deleted in the calendar app: forget
    what we wrote and tell their owners (the appointments) to write them again."""
    drifted = [
        written
        for written in WrittenEvent.objects.filter(calendar=calendar)
        if versions.get(written.external_id) != written.etag
    ]
    if not drifted:
        return
    WrittenEvent.objects.filter(pk__in=[w.pk for w in drifted]).update(content_hash="")
    written_events_drifted.send(sender=Calendar, calendar=calendar, keys=[w.key for w in drifted])


def _mark_failed(account: CalendarAccount, detail: str) -> None:
    account.status = Status.ERROR
    account.status_detail = detail
    account.consecutive_failures += 1
    account.save(update_fields=["status", "status_detail", "consecutive_failures"])


def calendar_account_mark_disconnected(*, account: CalendarAccount, reason: str) -> None:
    """The credentials no longer work: stop syncing, keep the calendar choices, and
    tell the owner once, with a link that reconnects the same account."""
    with transaction.atomic():
        account = CalendarAccount.objects.select_for_update().get(pk=account.pk)
        account.status = Status.DISCONNECTED
        account.status_detail = reason
        account.consecutive_failures += 1
        notify = account.disconnect_notified_at is None
        if notify:
            account.disconnect_notified_at = timezone.now()
        account.save(
            update_fields=[
                "status",
                "status_detail",
                "consecutive_failures",
                "disconnect_notified_at",
            ]
        )
        if notify:
            _email_disconnected(account)
            transaction.on_commit(
                lambda: calendar_account_disconnected.send(
                    sender=CalendarAccount,
                    account=account,
                    account_id=account.pk,
                    owner=account.owner,
                    reason=reason,
                )
            )


def _email_disconnected(account: CalendarAccount) -> None:
    context = {
        "account": account,
        "provider": account.get_provider_display(),
        "reconnect_url": settings.SITE_URL
        + reverse("calendar_account_reconnect", args=[account.pk]),
    }
    email_enqueue(
        EmailMessage(
            subject=f"Action required: your {calendar_noun(account.provider)} is no longer "
            "connected",
            body=render_to_string("calendars/email/disconnected.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[account.owner.email],
        )
    )
