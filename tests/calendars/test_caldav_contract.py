"""The CalDAV provider against real Radicale and Xandikos servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from caldav.collection import Calendar
from caldav.collection import Calendar as DAVCalendar

from apps.calendars.providers import ical
from apps.calendars.providers.base import AuthError
from apps.calendars.providers.caldav import CalDAVProvider
from apps.calendars.providers.http import OutboundPolicy
from tests.caldav_servers import CalDAVServer
from tests.calendars.contract import ProviderContract, day_at, window_ahead
from tests.calendars.ics import vevent

LOOPBACK = OutboundPolicy(allowed_networks=[ipaddress.ip_network("127.0.0.0/8")])


class DAVEditor:
    """Another CalDAV client editing the calendar directly."""

    def __init__(self, calendar: DAVCalendar) -> None:
        self.calendar = calendar

    def add(self, *, start: dt.datetime, end: dt.datetime, busy: bool = True) -> str:
        uid = f"other-{uuid.uuid4().hex}"
        extra = "" if busy else "TRANSP:TRANSPARENT"
        return str(self.calendar.add_event(vevent(uid, start, end, extra=extra)).url)

    def move(self, handle: str, *, start: dt.datetime, end: dt.datetime) -> None:
        event = self.calendar.event_by_url(handle)
        uid = str(event.icalendar_component["UID"])
        self.calendar.client.put(
            handle, vevent(uid, start, end), {"Content-Type": "text/calendar; charset=utf-8"}
        )

    def remove(self, handle: str) -> None:
        self.calendar.client.delete(handle)

    def count_convene_events(self) -> int:
        return sum(
            1
            for obj in self.calendar.get_objects_by_sync_token(load_objects=True)
            if obj.data and "X-CONVENE-EVENT" in obj.data
        )


@pytest.fixture
def provider(caldav_server: CalDAVServer) -> Iterator[CalDAVProvider]:
    provider = CalDAVProvider(
        {
            "server_url": caldav_server.url,
            "username": caldav_server.username,
            "password": caldav_server.password,
        },
        policy=LOOPBACK,
    )
    yield provider
    provider.close()


@pytest.fixture
def calendar_id(caldav_calendar: DAVCalendar) -> str:
    return str(caldav_calendar.url)


@pytest.fixture
def remote(caldav_calendar: DAVCalendar) -> DAVEditor:
    return DAVEditor(caldav_calendar)


class TestCalDAVContract(ProviderContract):
    pass


def test_wrong_password_is_an_auth_error_with_advice(radicale_server: CalDAVServer) -> None:
    provider = CalDAVProvider(
        {
            "server_url": radicale_server.url,
            "username": radicale_server.username,
            "password": "wrong",
        },
        policy=LOOPBACK,
    )
    with pytest.raises(AuthError, match="rejected the username or password"):
        provider.test_connection()


def test_convene_uid_scheme_is_recognised() -> None:
    assert ical.is_convene_uid(ical.convene_uid("appointment-1-calendar-2"))


def test_servers_without_sync_tokens_are_followed_by_etags(
    provider: CalDAVProvider, calendar_id: str, remote: DAVEditor
) -> None:
    handle = remote.add(start=day_at(2, 9), end=day_at(2, 10))
    # What a first sync against a server without sync-collection leaves behind.
    first = provider.sync_busy(calendar_id, window_ahead(), {"etags": {}})
    assert not first.full
    assert first.changed == {handle}
    assert set(first.state) == {"etags"}
    quiet = provider.sync_busy(calendar_id, window_ahead(), first.state)
    assert not quiet.changed
    assert not quiet.deleted
    remote.move(handle, start=day_at(3, 9), end=day_at(3, 10))
    moved = provider.sync_busy(calendar_id, window_ahead(), quiet.state)
    assert moved.changed == {handle}
    assert {(i.start, i.end) for i in moved.instances} == {(day_at(3, 9), day_at(3, 10))}
    remote.remove(handle)
    assert provider.sync_busy(calendar_id, window_ahead(), moved.state).deleted == {handle}


def test_a_server_without_sync_collection_gets_etag_state(
    provider: CalDAVProvider, calendar_id: str, remote: DAVEditor, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Calendar.get_objects_by_sync_token

    def without_sync_support(self: Calendar, **kwargs: Any) -> Any:
        listing = real(self, **kwargs)
        listing.sync_token = "fake-0123"  # what caldav reports after its fallback
        return listing

    monkeypatch.setattr(Calendar, "get_objects_by_sync_token", without_sync_support)
    handle = remote.add(start=day_at(2, 9), end=day_at(2, 10))
    changes = provider.sync_busy(calendar_id, window_ahead(), None)
    assert changes.full
    assert changes.state == {"etags": {handle: changes.versions[handle]}}  # type: ignore[index]
