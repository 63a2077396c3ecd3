"""The inbound change-notification endpoints: who is believed, and what gets queued.

The end-to-end path (a change in the fake Google or Graph → a notification → a sync of
that one calendar) is in test_oauth_e2e.py; here the endpoints meet forged, malformed
and lifecycle notifications.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.calendars import push_views
from apps.calendars.models import PushChannel
from apps.calendars.push import _hash, push_channel_verify
from tests.factories import CalendarAccountFactory, CalendarFactory

pytestmark = pytest.mark.django_db

TOKEN = "the-channel-secret"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def delay(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorder]:
    recorders = {name: Recorder() for name in ("sync", "renew", "resubscribe")}
    monkeypatch.setattr(push_views, "sync_calendar_task", recorders["sync"])
    monkeypatch.setattr(push_views, "renew_push_channel_task", recorders["renew"])
    monkeypatch.setattr(push_views, "resubscribe_task", recorders["resubscribe"])
    return recorders


def _channel(provider: str, channel_id: str) -> PushChannel:
    account = CalendarAccountFactory(provider=provider, credentials={"access_token": "x"})
    calendar = CalendarFactory(account=account, external_id=f"{channel_id}-calendar")
    return PushChannel.objects.create(
        calendar=calendar,
        channel_id=channel_id,
        resource_id="resource-1",
        token_hash=_hash(TOKEN),
        expires_at=timezone.now() + dt.timedelta(days=2),
    )


def _google(client: Client, channel_id: str, token: str, state: str = "exists") -> Any:
    return client.post(
        "/calendars/push/google/",
        HTTP_X_GOOG_CHANNEL_ID=channel_id,
        HTTP_X_GOOG_CHANNEL_TOKEN=token,
        HTTP_X_GOOG_RESOURCE_ID="resource-1",
        HTTP_X_GOOG_RESOURCE_STATE=state,
        HTTP_X_GOOG_MESSAGE_NUMBER="2",
    )


def test_google_notification_queues_a_sync_of_its_calendar(
    client: Client, queued: dict[str, Recorder], django_capture_on_commit_callbacks: Any
) -> None:
    channel = _channel("google", "chan-1")
    _channel("google", "chan-2")
    with django_capture_on_commit_callbacks(execute=True):
        response = _google(client, "chan-1", TOKEN)
    assert response.status_code == 200
    assert queued["sync"].calls == [{"calendar_id": channel.calendar_id}]
    channel.refresh_from_db()
    assert channel.notifications == 1
    assert channel.last_notified_at is not None


def test_google_sync_message_only_announces_the_channel(
    client: Client, queued: dict[str, Recorder], django_capture_on_commit_callbacks: Any
) -> None:
    _channel("google", "chan-1")
    with django_capture_on_commit_callbacks(execute=True):
        assert _google(client, "chan-1", TOKEN, state="sync").status_code == 200
    assert queued["sync"].calls == []


@pytest.mark.parametrize(
    ("channel_id", "token"),
    [("chan-1", "a-guessed-token"), ("chan-1", ""), ("no-such-channel", TOKEN)],
)
def test_forged_google_notifications_are_refused(
    client: Client,
    queued: dict[str, Recorder],
    django_capture_on_commit_callbacks: Any,
    channel_id: str,
    token: str,
) -> None:
    channel = _channel("google", "chan-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = _google(client, channel_id, token)
    assert response.status_code == 403
    assert queued["sync"].calls == []
    channel.refresh_from_db()
    assert channel.notifications == 0


def test_google_endpoint_wants_post(client: Client) -> None:
    assert client.get("/calendars/push/google/").status_code == 405


def test_graph_validation_handshake_echoes_the_token_as_plain_text(client: Client) -> None:
    response = client.post(
        "/calendars/push/microsoft/?validationToken=Validation%3A%20Testing%20client%20application"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"Validation: Testing client application"


def _graph(client: Client, notifications: list[dict[str, Any]]) -> Any:
    return client.post(
        "/calendars/push/microsoft/",
        data=json.dumps({"value": notifications}),
        content_type="application/json",
    )


def _change(subscription: str, client_state: str = TOKEN, **extra: Any) -> dict[str, Any]:
    return {
        "subscriptionId": subscription,
        "clientState": client_state,
        "changeType": "updated",
        "resource": "me/events/AAMk1",
        "tenantId": "tenant",
        **extra,
    }


def test_graph_notifications_queue_one_sync_per_calendar(
    client: Client, queued: dict[str, Recorder], django_capture_on_commit_callbacks: Any
) -> None:
    first = _channel("microsoft", "sub-1")
    second = _channel("microsoft", "sub-2")
    with django_capture_on_commit_callbacks(execute=True):
        response = _graph(client, [_change("sub-1"), _change("sub-1"), _change("sub-2")])
    assert response.status_code == 202
    assert sorted(c["calendar_id"] for c in queued["sync"].calls) == sorted(
        [first.calendar_id, second.calendar_id]
    )


def test_forged_graph_notifications_are_refused(
    client: Client, queued: dict[str, Recorder], django_capture_on_commit_callbacks: Any
) -> None:
    _channel("microsoft", "sub-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = _graph(client, [_change("sub-1", client_state="guess"), _change("sub-9")])
    assert response.status_code == 403
    assert queued["sync"].calls == []


def test_graph_forged_entries_are_dropped_among_good_ones(
    client: Client, queued: dict[str, Recorder], django_capture_on_commit_callbacks: Any
) -> None:
    good = _channel("microsoft", "sub-1")
    _channel("microsoft", "sub-2")
    with django_capture_on_commit_callbacks(execute=True):
        response = _graph(client, [_change("sub-1"), _change("sub-2", client_state="guess")])
    assert response.status_code == 202
    assert queued["sync"].calls == [{"calendar_id": good.calendar_id}]


@pytest.mark.parametrize("body", [b"not json", b'{"value": 3}', b"[]", b"{}"])
def test_malformed_graph_notifications_get_400(
    client: Client, queued: dict[str, Recorder], body: bytes
) -> None:
    response = client.post("/calendars/push/microsoft/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert queued["sync"].calls == []


def test_graph_lifecycle_events(
    client: Client, queued: dict[str, Recorder], django_capture_on_commit_callbacks: Any
) -> None:
    channel = _channel("microsoft", "sub-1")
    with django_capture_on_commit_callbacks(execute=True):
        response = _graph(
            client,
            [
                _change("sub-1", lifecycleEvent="reauthorizationRequired"),
                _change("sub-1", lifecycleEvent="subscriptionRemoved"),
                _change("sub-1", lifecycleEvent="missed"),
            ],
        )
    assert response.status_code == 202
    assert queued["renew"].calls == [{"channel_id": channel.pk}]
    assert queued["resubscribe"].calls == [{"calendar_id": channel.calendar_id}]
    assert queued["sync"].calls == [{"calendar_id": channel.calendar_id, "full": True}]


def test_the_secret_is_kept_only_as_a_hash() -> None:
    channel = _channel("google", "chan-1")
    assert TOKEN not in channel.token_hash
    assert push_channel_verify(channel_id="chan-1", token=TOKEN) == channel
    assert push_channel_verify(channel_id="chan-1", token=TOKEN + "x") is None
