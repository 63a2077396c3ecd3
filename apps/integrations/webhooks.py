"""Outbound webhooks: an organization's subscriptions, the deliveries of each event,
their signatures and their retries. docs/webhooks.md is the integrator's side.

Every delivery is a row (`WebhookDelivery`) written in the transaction that emits the
event and sent by a task right after commit; a periodic sweep (`webhook_sweep`)
sends the ones whose retry is due, so a lost task or a crashed worker delays a
delivery but never loses it. The event id is fixed when the event is emitted and is
the same on every retry (and for every subscription that hears the same event), so
receivers deduplicate on it.

Signing: `Convene-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
over the exact bytes sent, with the Unix time of *this attempt* in
`Convene-Webhook-Timestamp`, so a receiver can refuse replays of old requests while
retries still verify.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organization
from apps.appointments.models import Appointment
from apps.calendars.providers.http import RefusedAddressError, check_url, guarded_requests_session
from apps.calendars.selectors import outbound_policy
from apps.integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

Event = WebhookSubscription.Event
State = WebhookDelivery.State

SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker, not a secret
PING = "ping"
MAX_ATTEMPTS = 10
FIRST_BACKOFF = dt.timedelta(minutes=1)  # doubles after every failure: 1, 2, 4 ... 256 min
MAX_RETRY_AFTER = dt.timedelta(hours=6)  # a receiver's Retry-After never parks us longer
# (connect, read) seconds: a receiver should answer at once and do its work later.
TIMEOUT = (5.0, 10.0)
# How long a claimed delivery is hidden from the sweep while one worker sends it;
# longer than any request can take with TIMEOUT, so no two workers send it at once.
LEASE = dt.timedelta(minutes=2)
SWEEP_BATCH = 500
RESPONSE_SNIPPET = 200  # characters of a failed response's body kept for the admin
USER_AGENT = "Convene-Webhooks/1"
SIGNATURE_VERSION = "v1"


# ---------------------------------------------------------------------------------
# Signatures.
# ---------------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `Convene-Webhook-Signature` header value for one request."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def webhook_signature_verify(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    header: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` signs `body` at `timestamp` with `secret`, and `timestamp` is
    within `tolerance` seconds of now (replays of old requests fail).

    This is the receiver's check, exactly as docs/webhooks.md shows it; the header may
    carry several space-separated signatures (any valid one is enough).
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = webhook_signature(secret, sent_at, raw)
    # compare_digest: the time taken must not tell an attacker how much was right.
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


# ---------------------------------------------------------------------------------
# Subscriptions.
# ---------------------------------------------------------------------------------


def webhook_url_check(url: str) -> None:
    """Raise ValidationError when Convene would refuse to deliver to `url` (a private
    or metadata address that no administrator allowed). A host that does not resolve
    (yet) is accepted: it is checked again before every delivery."""
    try:
        check_url(url, outbound_policy())
    except RefusedAddressError as error:
        raise ValidationError(error.message, code="refused_address") from error
    except OSError:
        pass


def _clean_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(Event.values))
    if unknown:
        raise ValidationError({"events": f"Unknown events: {', '.join(unknown)}."})
    if not events:
        raise ValidationError({"events": "Choose at least one event."})
    return [value for value in Event.values if value in events]  # stable order


def webhook_subscription_create(
    *, organization: Organization, url: str, events: list[str], description: str = ""
) -> tuple[WebhookSubscription, str]:
    """A new subscription with a fresh signing secret. Returns it with the raw
    secret: show that once, it is never rendered again. Raises ValidationError."""
    webhook_url_check(url)
    raw_secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    subscription = WebhookSubscription.objects.create(
        organization=organization,
        url=url,
        events=_clean_events(events),
        description=description,
        secret={"secret": raw_secret},
    )
    return subscription, raw_secret


def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    url: str,
    events: list[str],
    description: str,
    is_active: bool,
) -> WebhookSubscription:
    """Change where and what a subscription delivers; its secret stays."""
    webhook_url_check(url)
    subscription.url = url
    subscription.events = _clean_events(events)
    subscription.description = description
    subscription.is_active = is_active
    subscription.save(update_fields=["url", "events", "description", "is_active"])
    return subscription


# ---------------------------------------------------------------------------------
# Emitting events.
# ---------------------------------------------------------------------------------


def conferencing_data(appointment: Appointment) -> dict[str, str | None] | None:
    """An appointment's video meeting as the API and webhooks describe it:
    "integrated" (made by the host's calendar; `join_url` is None until it exists)
    or "explicit" (a link someone gave)."""
    if appointment.integrated_conferencing:
        return {"profile_id": "integrated", "join_url": appointment.join_url or None}
    if appointment.join_url:
        return {"profile_id": "explicit", "join_url": appointment.join_url}
    return None


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _envelope(event_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    created = iso_utc(timezone.now())
    return {"id": str(event_id), "type": event_type, "created": created, "data": data}


def webhook_event_emit(
    *, organization: Organization, event_type: str, data: dict[str, Any]
) -> list[WebhookDelivery]:
    """Queue `event_type` for every active subscription of `organization` that wants
    it. Returns the deliveries (none when nobody subscribed); they are sent after the
    current transaction commits. `data` must be JSON as it is (strings, not datetimes).
    Raises ValueError for an event type that is not in WebhookSubscription.Event.
    """
    if event_type not in Event.values:
        raise ValueError(f"Unknown webhook event {event_type!r}.")
    # Filtered in Python: an organization has a handful of subscriptions, and JSON
    # `contains` has no SQLite implementation (`make run`).
    subscriptions = [
        subscription
        for subscription in WebhookSubscription.objects.filter(
            organization=organization, is_active=True
        )
        if event_type in subscription.events
    ]
    if not subscriptions:
        return []
    event_id = uuid.uuid4()
    payload = _envelope(event_id, event_type, data)
    now = timezone.now()
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                subscription=subscription,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                next_attempt_at=now,
            )
            for subscription in subscriptions
        )
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _deliver_soon(ids))
    return deliveries


def _deliver_soon(ids: list[int]) -> None:
    from apps.integrations.tasks import deliver_webhook_task

    for delivery_id in ids:
        deliver_webhook_task.delay(delivery_id=delivery_id)


# ---------------------------------------------------------------------------------
# Delivering.
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str
    duration_ms: int
    retry_after: dt.timedelta | None = None
    permanent: bool = False  # retrying cannot help (refused address, no secret)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a pending delivery for this worker: hide it from the sweep for LEASE.
    None when it is not pending or another worker holds it right now."""
    with transaction.atomic():
        delivery = (
            # of=self: locking the joined subscription too would make deliveries of
            # one subscription skip each other.
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription")
            .filter(pk=delivery_id, state=State.PENDING)
            .first()
        )
        if delivery is None:
            return None
        delivery.next_attempt_at = timezone.now() + LEASE
        delivery.save(update_fields=["next_attempt_at"])
    return delivery


def _retry_after(response: requests.Response) -> dt.timedelta | None:
    """Retry-After in seconds or as an HTTP date (RFC 9110, section 10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - timezone.now()).total_seconds()
    return min(dt.timedelta(seconds=max(seconds, 0)), MAX_RETRY_AFTER)


def _snippet(response: requests.Response) -> str:
    # Streamed and cut short: a receiver could answer with an endless body.
    head = next(response.iter_content(RESPONSE_SNIPPET * 4), b"")
    return head.decode("utf-8", "replace").strip()[:RESPONSE_SNIPPET]


def _send(delivery: WebhookDelivery) -> _Outcome:
    """POST the delivery once, signed now. Never raises for the receiver's failures."""
    raw_secret = (delivery.subscription.secret or {}).get("secret", "")
    if not raw_secret:
        return _Outcome(None, "The subscription has no signing secret.", 0, permanent=True)
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Convene-Webhook-Id": str(delivery.event_id),
        "Convene-Webhook-Timestamp": str(timestamp),
        "Convene-Webhook-Signature": webhook_signature(raw_secret, timestamp, body),
    }
    url = delivery.subscription.url
    host = urlsplit(url).hostname or url
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    session = guarded_requests_session(outbound_policy(), timeout=TIMEOUT)
    try:
        # Redirects are not followed: the subscription's URL is where the admin
        # decided deliveries go, and a redirect is reported so they can correct it.
        with session.post(
            url, data=body, headers=headers, allow_redirects=False, stream=True
        ) as response:
            code = response.status_code
            if 200 <= code < 300:
                return _Outcome(code, "", elapsed())
            if 300 <= code < 400:
                error = f"HTTP {code}: redirects are not followed; update the subscription's URL."
            else:
                error = f"HTTP {code}" + (f": {text}" if (text := _snippet(response)) else "")
            retry_after = _retry_after(response) if code in (429, 503) else None
            return _Outcome(code, error, elapsed(), retry_after=retry_after)
    except RefusedAddressError as refused:
        return _Outcome(None, refused.message, elapsed(), permanent=True)
    except requests.Timeout:
        return _Outcome(None, f"{host} did not answer within {TIMEOUT[1]:.0f} s.", elapsed())
    except requests.ConnectionError:
        # The exception's text names the full URL, whose path may carry a token.
        return _Outcome(None, f"Could not connect to {host}.", elapsed())
    except requests.RequestException as error:
        return _Outcome(None, f"{type(error).__name__} while sending to {host}.", elapsed())
    finally:
        session.close()


def _record(delivery: WebhookDelivery, outcome: _Outcome, *, retry: bool) -> WebhookAttempt:
    now = timezone.now()
    attempt = WebhookAttempt.objects.create(
        delivery=delivery,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    delivery.attempts += 1
    if outcome.ok:
        delivery.state, delivery.delivered_at = State.DELIVERED, now
    elif not retry or outcome.permanent or delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = State.FAILED
        logger.warning(
            "Webhook delivery %s failed for good after %s attempt(s): %s",
            delivery.pk,
            delivery.attempts,
            outcome.error,
        )
    else:
        backoff = outcome.retry_after
        if backoff is None:
            backoff = FIRST_BACKOFF * 2 ** (delivery.attempts - 1)
        delivery.next_attempt_at = now + backoff
    delivery.save(update_fields=["attempts", "state", "delivered_at", "next_attempt_at"])
    return attempt


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Send one pending delivery now and record the attempt.

    2xx marks it delivered. Anything else schedules a retry (doubling from one minute,
    or the receiver's Retry-After on 429 and 503) until MAX_ATTEMPTS, then marks it
    failed; a refused address fails it at once. Returns the delivery, or None when it
    is not pending or another worker is sending it. Never raises for the receiver.
    """
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    _record(delivery, _send(delivery), retry=True)
    return delivery


def webhook_sweep(*, now: dt.datetime | None = None) -> int:
    """Queue every pending delivery whose retry is due (or whose task was lost).
    Returns how many were queued."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(state=State.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        # Hidden from the next sweeps while the tasks wait in the queue, so a backlog
        # is not queued again every minute; a task that never runs is swept later.
        WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
        transaction.on_commit(lambda: _deliver_soon(ids))
    return len(ids)


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery | None:
    """An admin's "Retry now": a pending or failed delivery starts a fresh series of
    attempts with this one, sent at once. Delivered ones are left alone (None)."""
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk, state__in=[State.PENDING, State.FAILED]
    ).update(state=State.PENDING, attempts=0, next_attempt_at=timezone.now())
    return webhook_deliver(delivery_id=delivery.pk) if updated else None


def webhook_ping(*, subscription: WebhookSubscription) -> WebhookAttempt:
    """Send a "ping" event to `subscription` now, signed like any other, whatever
    events it subscribed to. One attempt, never retried; returns it."""
    event_id = uuid.uuid4()
    data = {"subscription": {"id": subscription.pk, "events": list(subscription.events)}}
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event_id=event_id,
        event_type=PING,
        payload=_envelope(event_id, PING, data),
        next_attempt_at=timezone.now() + LEASE,  # the sweep leaves it to us
    )
    return _record(delivery, _send(delivery), retry=False)
