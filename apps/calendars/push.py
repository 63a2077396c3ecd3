"""Real-time updates: Google push channels and Microsoft Graph subscriptions.

Each synced calendar of a Google or Microsoft account gets one channel, created after
its first sync, renewed by a beat task before it expires, removed when the calendar is
no longer synced or the account is disconnected. A notification only says "this
calendar changed": the endpoint checks its secret in constant time and queues an
incremental sync of that one calendar. Polling stays on as the safety net.

Push needs a public HTTPS address (`PUBLIC_BASE_URL`); without one Convene polls, and
the admin says real-time updates are off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from typing import cast

from django.conf import settings
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from apps.calendars.models import Calendar, CalendarAccount, PushChannel
from apps.calendars.providers import provider_class, provider_for
from apps.calendars.providers.base import ProviderError
from apps.calendars.providers.oauth import OAuthProvider, PushSubscription

logger = logging.getLogger(__name__)

# Renewed this long before expiry: Graph subscriptions on events last under three
# days and Google channels a week, and the renewal task runs every hour.
RENEW_BEFORE = dt.timedelta(hours=12)


def push_enabled() -> bool:
    return settings.PUBLIC_BASE_URL.startswith("https://")


def _address(provider: str) -> str:
    return settings.PUBLIC_BASE_URL + reverse(f"push_{provider}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _pushable(account: CalendarAccount) -> bool:
    cls = provider_class(account.provider)
    return push_enabled() and issubclass(cls, OAuthProvider) and cls.supports_push


def _client(account: CalendarAccount) -> OAuthProvider:
    # Only accounts of push-capable (OAuth) services ever have channels.
    return cast(OAuthProvider, provider_for(account))


def _subscription(channel: PushChannel) -> PushSubscription:
    return PushSubscription(
        channel_id=channel.channel_id,
        resource_id=channel.resource_id,
        expires_at=channel.expires_at,
    )


def push_channels_reconcile(*, account: CalendarAccount) -> None:
    """One channel for every synced calendar of the account, none for the others.
    Called after each successful sync; a failure is logged and retried next time."""
    if not _pushable(account):
        return
    calendars = list(
        account.calendars.filter(check_conflicts=True, is_deleted=False, push_channel=None)
    )
    stale = list(
        PushChannel.objects.filter(calendar__account=account).exclude(
            calendar__check_conflicts=True, calendar__is_deleted=False
        )
    )
    if not calendars and not stale:
        return
    client = _client(account)
    try:
        for calendar in calendars:
            _watch(client, calendar)
        for channel in stale:
            _unwatch(client, channel)
    finally:
        client.close()


def _watch(client: OAuthProvider, calendar: Calendar) -> None:
    token = secrets.token_urlsafe(32)
    try:
        subscription = client.watch(
            calendar.external_id, address=_address(calendar.account.provider), token=token
        )
    except ProviderError as error:
        logger.warning("Could not watch calendar %s: %s", calendar.pk, error.message)
        return
    PushChannel.objects.update_or_create(
        calendar=calendar,
        defaults={
            "channel_id": subscription.channel_id,
            "resource_id": subscription.resource_id,
            "token_hash": _hash(token),
            "expires_at": subscription.expires_at,
        },
    )


def _unwatch(client: OAuthProvider, channel: PushChannel) -> None:
    try:
        client.unwatch(_subscription(channel))
    except ProviderError as error:
        # The service lets the channel expire on its own; notifications for it are
        # refused meanwhile because its row is gone.
        logger.info("Could not stop push channel %s: %s", channel.pk, error.message)
    channel.delete()


def push_channels_remove(*, account: CalendarAccount) -> None:
    """Stop every channel of the account (before it is disconnected)."""
    channels = list(PushChannel.objects.filter(calendar__account=account))
    if not channels:
        return
    client = _client(account)
    try:
        for channel in channels:
            _unwatch(client, channel)
    finally:
        client.close()


def push_channel_renew(*, channel: PushChannel) -> None:
    """Extend one channel; the provider may hand back a new one (Google does)."""
    account = channel.calendar.account
    if account.status == CalendarAccount.Status.DISCONNECTED:
        return
    token = secrets.token_urlsafe(32)
    client = _client(account)
    try:
        renewed = client.renew(
            channel.calendar.external_id,
            _subscription(channel),
            address=_address(account.provider),
            token=token,
        )
    finally:
        client.close()
    channel.expires_at = renewed.expires_at
    channel.renewed_at = timezone.now()
    if renewed.channel_id != channel.channel_id:
        # A new channel (Google never extends one) carries the new token; a renewal
        # in place (Graph) keeps the old one.
        channel.channel_id = renewed.channel_id
        channel.resource_id = renewed.resource_id
        channel.token_hash = _hash(token)
    channel.save()


def push_channels_due(*, now: dt.datetime | None = None) -> list[int]:
    """Channels that expire soon, by id."""
    horizon = (now or timezone.now()) + RENEW_BEFORE
    return list(PushChannel.objects.filter(expires_at__lte=horizon).values_list("pk", flat=True))


def push_channel_verify(*, channel_id: str, token: str) -> PushChannel | None:
    """The channel a notification claims to come from, if its secret matches."""
    channel = (
        PushChannel.objects.filter(channel_id=channel_id)
        .select_related("calendar__account")
        .first()
    )
    # Compared even when there is no such channel, so timing tells nothing.
    expected = channel.token_hash if channel else _hash(secrets.token_urlsafe(32))
    if not hmac.compare_digest(expected, _hash(token)) or channel is None:
        return None
    PushChannel.objects.filter(pk=channel.pk).update(
        last_notified_at=timezone.now(), notifications=F("notifications") + 1
    )
    return channel
