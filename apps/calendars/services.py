"""Writes for calendar connections: connect, choose calendars, refresh, disconnect, and
the events Convene writes. Only the owner acts on an account; nobody else can."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import CalendarService, User
from apps.calendars.models import Calendar, CalendarAccount, SyncRun, WrittenEvent
from apps.calendars.providers import provider_class, provider_for
from apps.calendars.providers.base import EventPayload, EventRef, ProviderError, RemoteCalendar
from apps.calendars.push import push_channels_remove
from apps.calendars.selectors import connect_allowance, outbound_policy
from apps.calendars.signals import calendar_account_connected, calendar_account_disconnected

logger = logging.getLogger(__name__)


def _require_owner(account: CalendarAccount, actor: User) -> None:
    if account.owner_id != actor.pk:
        raise PermissionDenied("Only the owner of a calendar account can change it.")


def _require_allowance(owner: User, provider: str) -> None:
    """Raises ValidationError unless `owner` may connect one more `provider` account."""
    allowance = connect_allowance(user=owner)
    label = CalendarService(provider).label
    if provider not in allowance.services:
        raise ValidationError(f"Your programmes do not allow connecting {label} calendars.")
    if allowance.remaining == 0:
        raise ValidationError(
            f"You have connected {allowance.used} calendar accounts, the most your "
            "programme allows. Disconnect one to connect another."
        )


def calendar_account_connect(
    *, owner: User, provider: str, credentials: Mapping[str, str], server_url: str = ""
) -> CalendarAccount:
    """Test the credentials, then save the account and its calendars.

    Raises ValidationError when the person may not connect this service, or already
    has, and the provider's typed errors (with actionable messages) when the test fails.
    Nothing is saved unless the connection works.
    """
    _require_allowance(owner, provider)
    client = provider_class(provider)(
        {**credentials, "server_url": server_url},
        time_zone=owner.time_zone,
        policy=outbound_policy(),
    )
    try:
        identity = client.test_connection()
        remotes = client.list_calendars()
    finally:
        client.close()
    if CalendarAccount.objects.filter(
        owner=owner, provider=provider, identity=identity.display
    ).exists():
        label = CalendarService(provider).label
        raise ValidationError(f"This {label} account ({identity.display}) is already connected.")
    with transaction.atomic():
        account = CalendarAccount.objects.create(
            owner=owner,
            provider=provider,
            identity=identity.display,
            server_url=server_url,
            credentials=dict(credentials),
            last_attempt_at=timezone.now(),
        )
        _supersede_managed(account)  # before the upsert: its write calendar goes too
        _calendars_upsert(account, remotes, first_time=True)
        _enqueue_sync(account, full=True, trigger=SyncRun.Trigger.CONNECT)
        _announce_connected(account)
    return account


def calendar_account_reconnect(
    *, account: CalendarAccount, actor: User, credentials: Mapping[str, str]
) -> CalendarAccount:
    """New credentials for an existing account; calendar choices are kept."""
    _require_owner(account, actor)
    client = provider_class(account.provider)(
        {**credentials, "server_url": account.server_url},
        time_zone=account.owner.time_zone,
        policy=outbound_policy(),
    )
    try:
        client.test_connection()
        remotes = client.list_calendars()
    finally:
        client.close()
    with transaction.atomic():
        account.credentials = dict(credentials)
        account.status = CalendarAccount.Status.ACTIVE
        account.status_detail = ""
        account.consecutive_failures = 0
        account.disconnect_notified_at = None
        account.save()
        _calendars_upsert(account, remotes, first_time=False)
        _enqueue_sync(account, full=True, trigger=SyncRun.Trigger.CONNECT)
        _announce_connected(account)
    return account


def calendar_account_connect_oauth(
    *, owner: User, social_account: SocialAccount, credentials: dict[str, Any]
) -> CalendarAccount:
    """Connect the calendar of a Google or Microsoft account that just signed in, or
    reconnect it (new tokens, calendar choices kept) if it was connected before.

    Raises ValidationError (not allowed, limit reached) and the provider's typed errors
    (a permission unticked on the consent screen). Nothing is saved unless it works.
    """
    provider = social_account.provider
    # The fresh access token from the sign-in; nothing to refresh yet.
    client = provider_class(provider)(credentials, time_zone=owner.time_zone)
    try:
        identity = client.test_connection()
        remotes = client.list_calendars()
    finally:
        client.close()
    existing = CalendarAccount.objects.filter(
        owner=owner, provider=provider, social_account=social_account
    ).first()
    if existing is None:
        _require_allowance(owner, provider)
    with transaction.atomic():
        account = existing or CalendarAccount(
            owner=owner, provider=provider, social_account=social_account
        )
        account.identity = identity.display
        account.credentials = {**credentials, "identity": identity.display}
        account.status = CalendarAccount.Status.ACTIVE
        account.status_detail = ""
        account.consecutive_failures = 0
        account.disconnect_notified_at = None
        account.last_attempt_at = timezone.now()
        account.save()
        _supersede_managed(account)  # before the upsert: its write calendar goes too
        _calendars_upsert(account, remotes, first_time=existing is None)
        _enqueue_sync(account, full=True, trigger=SyncRun.Trigger.CONNECT)
        _announce_connected(account)
    return account


def _supersede_managed(account: CalendarAccount) -> None:
    """A person's own connection takes precedence: the organization's connection of
    the same mailbox goes."""
    for managed in CalendarAccount.objects.filter(
        owner_id=account.owner_id,
        source=CalendarAccount.Source.ORGANIZATION,
        provider=account.provider,
        identity__iexact=account.identity,
    ):
        push_channels_remove(account=managed)
        managed.delete()


def calendar_account_connect_managed(
    *,
    owner: User,
    provider: str,
    identity: str,
    credentials: dict[str, Any],
    organization_id: int,
    writes_allowed: bool,
    server_url: str = "",
) -> CalendarAccount:
    """Connect `owner`'s mailbox through their organization's integration (the
    organization's service account, never the person's credentials), or refresh the
    credentials of the one already connected. Raises the provider's typed errors."""
    account = CalendarAccount(
        owner=owner,
        provider=provider,
        source=CalendarAccount.Source.ORGANIZATION,
        organization_id=organization_id,
        identity=identity,
        server_url=server_url,
        credentials=credentials,
        writes_allowed=writes_allowed,
    )
    client = provider_for(account)
    try:
        client.test_connection()
        remotes = client.list_calendars()
    finally:
        client.close()
    existing = CalendarAccount.objects.filter(
        owner=owner, source=CalendarAccount.Source.ORGANIZATION, organization_id=organization_id
    ).first()
    with transaction.atomic():
        if existing is not None:
            existing.credentials, existing.writes_allowed = credentials, writes_allowed
            existing.server_url = server_url
            existing.status = CalendarAccount.Status.ACTIVE
            existing.status_detail = ""
            existing.save()
            account = existing
        else:
            account.last_attempt_at = timezone.now()
            account.save()
        _calendars_upsert(account, remotes, first_time=existing is None)
        if not writes_allowed:
            account.calendars.update(is_write_target=False)
        _enqueue_sync(account, full=True, trigger=SyncRun.Trigger.CONNECT)
        _announce_connected(account)
    return account


def calendar_accounts_remove_managed(
    *, organization_id: int, provider: str, remove_events: bool
) -> list[str]:
    """Remove every account connected through the organization's integration for
    `provider`, first removing Convene's events if asked. Returns the problems met."""
    problems: list[str] = []
    accounts = CalendarAccount.objects.filter(
        source=CalendarAccount.Source.ORGANIZATION,
        organization_id=organization_id,
        provider=provider,
    ).select_related("owner")
    for account in accounts:
        if remove_events:
            problems += _remove_written_events(account)
        push_channels_remove(account=account)
        account.delete()
    return problems


def calendar_list_refresh(*, account: CalendarAccount, actor: User) -> list[Calendar]:
    """Reload the account's calendars from the provider ("Refresh list")."""
    _require_owner(account, actor)
    client = provider_for(account)
    try:
        remotes = client.list_calendars()
    finally:
        client.close()
    with transaction.atomic():
        calendars = _calendars_upsert(account, remotes, first_time=False)
        _enqueue_sync(account, full=False, trigger=SyncRun.Trigger.MANUAL)
    return calendars


def _calendars_upsert(
    account: CalendarAccount, remotes: Iterable[RemoteCalendar], *, first_time: bool
) -> list[Calendar]:
    """Mirror the provider's list. New calendars: the primary is checked for conflicts
    and, if writable and the owner has no write calendar yet, receives appointments."""
    existing = {c.external_id: c for c in account.calendars.all()}
    seen: set[str] = set()
    has_target = Calendar.objects.filter(owner_id=account.owner_id, is_write_target=True).exists()
    result: list[Calendar] = []
    for remote in remotes:
        seen.add(remote.external_id)
        calendar = existing.get(remote.external_id)
        if calendar is None:
            calendar = Calendar(
                account=account,
                owner_id=account.owner_id,
                external_id=remote.external_id,
                check_conflicts=remote.primary,
            )
            if remote.primary and not remote.read_only and not has_target:
                calendar.is_write_target = True
                has_target = True
        calendar.name = remote.name
        calendar.color = remote.color
        calendar.is_primary = remote.primary
        calendar.is_read_only = remote.read_only
        calendar.is_deleted = False
        if calendar.is_read_only:
            calendar.is_write_target = False
        calendar.save()
        result.append(calendar)
    if first_time and result and not any(c.check_conflicts for c in result):
        # No calendar says it is the primary (CalDAV has no such notion): the first one.
        first = result[0]
        first.check_conflicts = True
        first.is_write_target = not first.is_read_only and not has_target
        first.save(update_fields=["check_conflicts", "is_write_target"])
    for external_id, calendar in existing.items():
        if external_id not in seen and not calendar.is_deleted:
            calendar.is_deleted = True
            calendar.check_conflicts = False
            calendar.is_write_target = False
            calendar.save(update_fields=["is_deleted", "check_conflicts", "is_write_target"])
            calendar.busy_blocks.all().delete()
    return result


def calendar_choices_update(
    *,
    account: CalendarAccount,
    actor: User,
    conflict_calendar_ids: Iterable[int],
    write_calendar_id: int | None,
) -> None:
    """Which calendars block bookings, and the one that receives appointments."""
    _require_owner(account, actor)
    calendars = {c.pk: c for c in account.calendars.filter(is_deleted=False)}
    conflict_ids = set(conflict_calendar_ids)
    if not conflict_ids <= calendars.keys():
        raise ValidationError("Choose calendars of this account only.")
    if write_calendar_id is not None:
        target = calendars.get(write_calendar_id)
        if target is None:
            raise ValidationError("Choose a calendar of this account to add appointments to.")
        if target.is_read_only:
            raise ValidationError(
                f"“{target.name}” is read-only: appointments cannot be added to it."
            )
        if not account.writes_allowed:
            raise ValidationError(
                "Your organization lets Convene read only when you are busy in this "
                "calendar, not add appointments to it."
            )
    with transaction.atomic():
        if write_calendar_id is not None:
            Calendar.objects.filter(owner=actor, is_write_target=True).exclude(
                pk=write_calendar_id
            ).update(is_write_target=False)
        for calendar in calendars.values():
            calendar.check_conflicts = calendar.pk in conflict_ids
            if write_calendar_id is not None or calendar.is_write_target:
                calendar.is_write_target = calendar.pk == write_calendar_id
            calendar.save(update_fields=["check_conflicts", "is_write_target"])
            if not calendar.check_conflicts:
                # Busy time of a calendar nobody checks any more must not block anyone.
                calendar.busy_blocks.all().delete()
                calendar.sync_state = {}
                calendar.save(update_fields=["sync_state"])
        _enqueue_sync(account, full=False, trigger=SyncRun.Trigger.MANUAL)


def calendar_account_disconnect(
    *, account: CalendarAccount, actor: User, remove_events: bool
) -> list[str]:
    """Disconnect an account, first removing Convene's events from its calendars if
    asked. Returns the problems met while removing events (the account is removed
    all the same: the person asked to disconnect)."""
    _require_owner(account, actor)
    if account.source == CalendarAccount.Source.ORGANIZATION:
        raise PermissionDenied("This calendar is connected through your organization.")
    problems = _remove_written_events(account) if remove_events else []
    push_channels_remove(account=account)
    account_id, owner = account.pk, account.owner  # receivers see them after the delete
    social_account_id = account.social_account_id
    with transaction.atomic():
        transaction.on_commit(
            lambda: calendar_account_disconnected.send(
                sender=CalendarAccount,
                account=account,
                account_id=account_id,
                owner=owner,
                reason="disconnected by its owner",
            )
        )
        account.delete()
        if social_account_id is not None:
            # The Google or Microsoft sign-in existed only for this calendar.
            SocialAccount.objects.filter(pk=social_account_id, calendar_accounts=None).delete()
    return problems


def calendar_event_upsert(*, calendar: Calendar, key: str, payload: EventPayload) -> EventRef:
    """Write (or rewrite) Convene's event `key` into `calendar`; idempotent.

    Skips the provider when what we wrote last time is what we would write now.
    Returns where the event is, with the video link the service made if it was asked
    for one. Raises the provider's typed errors; the caller (the outbox) retries.
    """
    content_hash = hashlib.sha256(repr(payload).encode()).hexdigest()
    existing = WrittenEvent.objects.filter(calendar=calendar, key=key).first()
    if existing and existing.content_hash == content_hash:
        return EventRef(existing.external_id, existing.etag)
    client = provider_for(calendar.account)
    try:
        ref = client.upsert_event(
            calendar.external_id,
            payload,
            EventRef(existing.external_id, existing.etag) if existing else None,
        )
    finally:
        client.close()
    WrittenEvent.objects.update_or_create(
        calendar=calendar,
        key=key,
        defaults={
            "uid": payload.uid,
            "external_id": ref.external_id,
            "etag": ref.etag,
            "content_hash": content_hash,
        },
    )
    return ref


def calendar_event_delete(*, calendar: Calendar, key: str) -> None:
    """Remove Convene's event `key` from `calendar`; already gone is success."""
    written = WrittenEvent.objects.filter(calendar=calendar, key=key).first()
    if written is None:
        return
    client = provider_for(calendar.account)
    try:
        client.delete_event(calendar.external_id, EventRef(written.external_id, written.etag))
    finally:
        client.close()
    written.delete()


def _remove_written_events(account: CalendarAccount) -> list[str]:
    """Delete Convene's events from the account's calendars; the problems met."""
    problems: list[str] = []
    written = list(
        WrittenEvent.objects.filter(calendar__account=account).select_related("calendar")
    )
    if not written:
        return problems
    client = provider_for(account)
    try:
        for event in written:
            try:
                client.delete_event(
                    event.calendar.external_id,
                    EventRef(external_id=event.external_id, etag=event.etag),
                )
            except ProviderError as error:
                problems.append(error.message)
    finally:
        client.close()
    return problems


def _announce_connected(account: CalendarAccount) -> None:
    transaction.on_commit(
        lambda: calendar_account_connected.send(sender=CalendarAccount, account=account)
    )


def _enqueue_sync(account: CalendarAccount, *, full: bool, trigger: str) -> None:
    from apps.calendars.tasks import sync_account_task

    account_id = account.pk
    transaction.on_commit(
        lambda: sync_account_task.delay(account_id=account_id, full=full, trigger=trigger)
    )
