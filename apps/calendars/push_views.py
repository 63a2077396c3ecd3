"""Inbound change notifications from Google and Microsoft (see apps/calendars/push.py).

Both answer at once and leave the work to a task: Google and Graph expect an answer
within seconds and retry, or drop the subscription, when it is slow. Nothing here
trusts the caller: a notification counts only if it carries the channel's secret.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.calendars.push import push_channel_verify
from apps.calendars.tasks import (
    renew_push_channel_task,
    resubscribe_task,
    sync_calendar_task,
)

# Graph's validation tokens are short opaque strings; anything longer is not one.
MAX_VALIDATION_TOKEN = 1024


@csrf_exempt
@require_POST
def push_google(request: HttpRequest) -> HttpResponse:
    """Google: headers only, empty body (developers.google.com/calendar/api/guides/push)."""
    channel = push_channel_verify(
        channel_id=request.headers.get("X-Goog-Channel-ID", ""),
        token=request.headers.get("X-Goog-Channel-Token", ""),
    )
    if channel is None:
        return HttpResponse(
            "Unknown channel or wrong token.", status=403, content_type="text/plain"
        )
    # "sync" only announces a new channel; "exists" and "not_exists" mean a change.
    if request.headers.get("X-Goog-Resource-State") != "sync":
        calendar_id = channel.calendar_id
        transaction.on_commit(lambda: sync_calendar_task.delay(calendar_id=calendar_id))
    return HttpResponse(status=200)


@csrf_exempt
def push_microsoft(request: HttpRequest) -> HttpResponse:
    """Graph: the validation handshake, change notifications and lifecycle events
    (learn.microsoft.com/graph/change-notifications-delivery-webhooks)."""
    token = request.GET.get("validationToken")
    if token is not None and len(token) <= MAX_VALIDATION_TOKEN:
        return HttpResponse(token, content_type="text/plain")
    if request.method != "POST":
        return HttpResponse(status=405)
    try:
        body = json.loads(request.body)
        notifications: list[dict[str, Any]] = list(body["value"])
    except (ValueError, KeyError, TypeError):
        return HttpResponse("Expected a JSON object with a 'value' list.", status=400)
    accepted = 0
    queued: set[int] = set()
    for notification in notifications:
        if not isinstance(notification, dict):
            continue
        channel = push_channel_verify(
            channel_id=str(notification.get("subscriptionId", "")),
            token=str(notification.get("clientState", "")),
        )
        if channel is None:
            continue
        accepted += 1
        _dispatch(notification.get("lifecycleEvent"), channel.pk, channel.calendar_id, queued)
    if notifications and not accepted:
        return HttpResponse("Unknown subscription or wrong clientState.", status=403)
    return HttpResponse(status=202)


def _dispatch(lifecycle: object, channel_id: int, calendar_id: int, queued: set[int]) -> None:
    if lifecycle == "reauthorizationRequired":
        transaction.on_commit(lambda: renew_push_channel_task.delay(channel_id=channel_id))
    elif lifecycle == "subscriptionRemoved":
        transaction.on_commit(lambda: resubscribe_task.delay(calendar_id=calendar_id))
    elif lifecycle == "missed":
        # Some notifications were lost: only a full sync is sure to catch up.
        transaction.on_commit(lambda: sync_calendar_task.delay(calendar_id=calendar_id, full=True))
    elif calendar_id not in queued:
        queued.add(calendar_id)
        transaction.on_commit(lambda: sync_calendar_task.delay(calendar_id=calendar_id))
