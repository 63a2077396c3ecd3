"""How caldav 3.6 behaves against real Radicale and Xandikos servers.

These tests pin down the library and server behaviour the CalDAV provider relies on:
discovery, conditional writes, time-range search, sync-collection (including deletions
and invalid tokens), collection change tags, request counts and authentication errors.
Where the two servers differ, the expectation is spelt out per server, so an upgrade of
either (or of caldav) that changes behaviour fails here first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from caldav.calendarobjectresource import CalendarObjectResource, Event
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.elements import dav
from caldav.elements.base import ValuedBaseElement
from caldav.lib import error
from caldav.lib.url import URL

from tests.caldav_servers import CalDAVServer, make_calendar

UTC = ZoneInfo("UTC")
ICAL_HEADERS = {"Content-Type": "text/calendar; charset=utf-8"}


class GetCTag(ValuedBaseElement):
    # caldav ships no element for CalendarServer's getctag; both servers answer it.
    tag = "{http://calendarserver.org/ns/}getctag"


def vevent(
    uid: str,
    *,
    summary: str = "Advising session",
    start: datetime = datetime(2030, 1, 7, 9, 0, tzinfo=UTC),
    rrule: str | None = None,
) -> str:
    end = start + timedelta(hours=1)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Convene//Tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20300101T000000Z",
        f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{summary}",
        *([f"RRULE:{rrule}"] if rrule else []),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class RecordedRequest:
    method: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class RequestLog:
    """Every HTTP request a DAVClient sends, recorded below caldav's own retries."""

    requests: list[RecordedRequest] = field(default_factory=list)

    def summary(self) -> list[tuple[str, int]]:
        return [(request.method, request.status) for request in self.requests]

    def take(self) -> list[tuple[str, int]]:
        """The (method, status) pairs so far, clearing the log for the next step."""
        taken = self.summary()
        self.requests.clear()
        return taken


def record_requests(client: DAVClient, monkeypatch: pytest.MonkeyPatch) -> RequestLog:
    # Wrapping the session is the cheapest place to count: every DAVClient call,
    # including the unauthenticated first try and the fallbacks, goes through it.
    log = RequestLog()
    send: Callable[..., Any] = client.session.request

    def recording(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = send(method, url, *args, **kwargs)
        headers: Mapping[str, str] = kwargs.get("headers") or {}
        log.requests.append(
            RecordedRequest(
                method=method,
                path=URL.objectify(url).path,
                status=response.status_code,
                headers={key.lower(): value for key, value in headers.items()},
            )
        )
        return response

    monkeypatch.setattr(client.session, "request", recording)
    return log


def resource_name(obj: CalendarObjectResource) -> str:
    return str(obj.url).rstrip("/").rsplit("/", 1)[1]


def by_server(server: CalDAVServer, **expected: Any) -> Any:
    """The expectation for this server; a KeyError means a server was forgotten."""
    return expected[server.name]


@pytest.fixture
def request_log(caldav_calendar: Calendar, monkeypatch: pytest.MonkeyPatch) -> RequestLog:
    return record_requests(caldav_calendar.client, monkeypatch)


# --- Discovery ---------------------------------------------------------------------------


def test_principal_discovery_from_server_root_lists_the_new_calendar(
    caldav_server: CalDAVServer, caldav_calendar: Calendar
) -> None:
    client = caldav_server.client()
    principal = client.get_principal()
    calendars = {calendar.id: calendar for calendar in principal.get_calendars()}

    # The root URL is enough: caldav follows current-user-principal, then the
    # principal's calendar-home-set.
    assert principal.url.path == by_server(caldav_server, radicale="/alice/", xandikos="/user/")
    home = by_server(caldav_server, radicale="/alice/", xandikos="/user/calendars/")
    assert principal.calendar_home_set.url.path == home

    # calendar.id is the last path segment (what make_calendar's cal_id was), the
    # display name is a separate property, and the URL ends with a slash.
    assert caldav_calendar.id is not None
    assert caldav_calendar.id.startswith("test-")
    listed = calendars[caldav_calendar.id]
    assert str(listed.url) == f"{caldav_server.url.rstrip('/')}{home}{caldav_calendar.id}/"
    assert listed.get_display_name() == f"Test {caldav_calendar.id.removeprefix('test-')}"
    # Xandikos' --defaults created one more calendar; a Radicale account starts empty.
    assert ("calendar" in calendars) == by_server(caldav_server, radicale=False, xandikos=True)
    client.close()


def test_discovery_request_counts(
    caldav_server: CalDAVServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = caldav_server.client()
    log = record_requests(client, monkeypatch)

    principal = client.get_principal()
    # Without auth_type, caldav first tries without credentials and answers
    # Radicale's 401 challenge with Basic; Xandikos never challenges.
    assert log.take() == by_server(
        caldav_server,
        radicale=[("PROPFIND", 401), ("PROPFIND", 207)],
        xandikos=[("PROPFIND", 207)],
    )
    calendars = principal.get_calendars()
    assert log.take() == [("PROPFIND", 207), ("PROPFIND", 207)]
    # Display names come with the listing: no request per calendar.
    assert all(calendar.get_display_name() for calendar in calendars)
    assert log.take() == []
    client.close()


# --- Writing events ----------------------------------------------------------------------


def test_add_event_puts_a_resource_named_after_the_uid(
    caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    event = caldav_calendar.add_event(vevent("first@convene.test"))

    # One unconditional PUT to <calendar>/<quoted UID>.ics; the ETag of the answer is
    # kept on the object, strong and quoted.
    assert request_log.summary() == [("PUT", 201)]
    assert request_log.requests[0].headers.keys().isdisjoint({"if-match", "if-none-match"})
    assert resource_name(event) == quote("first@convene.test", safe="") + ".ics"
    assert event.id == "first@convene.test"
    assert event.etag is not None
    assert event.etag.startswith('"')


def test_save_no_overwrite_searches_the_uid_first_then_puts_if_none_match(
    caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    client = caldav_calendar.client
    url = caldav_calendar.url.join("convene-0001.ics")
    Event(client, url=url, data=vevent("a@convene.test"), parent=caldav_calendar).save(
        no_overwrite=True
    )
    # Not knowing the server (no `features`), caldav looks for the UID with a REPORT
    # before the PUT; the PUT still carries If-None-Match: *.
    assert request_log.summary() == [("REPORT", 207), ("PUT", 201)]
    assert request_log.requests[1].headers["if-none-match"] == "*"
    request_log.take()

    again = Event(client, url=url, data=vevent("a@convene.test"), parent=caldav_calendar)
    with pytest.raises(error.ConsistencyError):
        again.save(no_overwrite=True)
    # Refused on the client side, from the search alone: no PUT is sent.
    assert request_log.take() == [("REPORT", 207)]

    elsewhere = Event(
        client,
        url=caldav_calendar.url.join("convene-0002.ics"),
        data=vevent("a@convene.test"),
        parent=caldav_calendar,
    )
    with pytest.raises(error.UidConflictConsistencyError):
        elsewhere.save(no_overwrite=True)


def test_raw_put_with_if_none_match_and_if_match(
    caldav_server: CalDAVServer, caldav_calendar: Calendar
) -> None:
    client = caldav_calendar.client
    url = str(caldav_calendar.url.join("convene-raw.ics"))

    # client.put returns the DAVResponse for any status but 401/403 (those raise
    # AuthorizationError): the caller reads .status and the ETag header.
    created = client.put(url, vevent("raw@convene.test"), ICAL_HEADERS | {"If-None-Match": "*"})
    assert created.status == 201
    etag = created.headers["ETag"]
    assert etag.startswith('"')

    exists = client.put(url, vevent("raw@convene.test"), ICAL_HEADERS | {"If-None-Match": "*"})
    assert exists.status == 412

    updated = client.put(
        url, vevent("raw@convene.test", summary="Moved"), ICAL_HEADERS | {"If-Match": etag}
    )
    assert updated.status == 204
    assert updated.headers["ETag"] not in (None, etag)

    stale = client.put(
        url, vevent("raw@convene.test", summary="Lost"), ICAL_HEADERS | {"If-Match": etag}
    )
    assert stale.status == 412

    # If-Match: * (update only, never create) works on both (Radicale 3.9 fixed the
    # literal comparison that caldav's compatibility hints still describe for 3.8).
    any_version = client.put(
        url, vevent("raw@convene.test", summary="Any"), ICAL_HEADERS | {"If-Match": "*"}
    )
    assert any_version.status == 204
    missing = str(caldav_calendar.url.join("convene-missing.ics"))
    not_there = client.put(missing, vevent("m@convene.test"), ICAL_HEADERS | {"If-Match": "*"})
    assert not_there.status == 412

    # The same UID under a second resource name is refused with CALDAV:no-uid-conflict,
    # but with a different status per server.
    duplicate = client.put(
        str(caldav_calendar.url.join("convene-dup.ics")),
        vevent("raw@convene.test"),
        ICAL_HEADERS | {"If-None-Match": "*"},
    )
    assert duplicate.status == by_server(caldav_server, radicale=409, xandikos=412)
    assert error.parse_preconditions(duplicate._raw)[0] == (
        "{urn:ietf:params:xml:ns:caldav}no-uid-conflict"
    )

    assert client.delete(url, {"If-Match": etag}).status == 412

    # ETags are hashes of the content on both servers: writing the first version's
    # bytes again brings back the first ETag, and a stale If-Match then matches.
    restored = client.put(url, vevent("raw@convene.test"), ICAL_HEADERS)
    assert restored.headers["ETag"] == etag
    assert client.delete(url, {"If-Match": etag}).status == by_server(
        caldav_server, radicale=200, xandikos=204
    )


def test_save_sends_the_cached_tag_as_precondition_and_raises_on_a_stale_copy(
    caldav_server: CalDAVServer, caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    mine = caldav_calendar.add_event(vevent("stale@convene.test"))
    theirs = Event(caldav_server.client(), url=mine.url, parent=caldav_calendar).load()
    theirs.data = vevent("stale@convene.test", summary="Changed elsewhere")
    theirs.save(increase_seqno=False)
    request_log.take()

    mine.data = vevent("stale@convene.test", summary="Changed here")
    # Xandikos sends a Schedule-Tag with every object, and caldav prefers it over the
    # ETag by default (precondition="auto"): that is a different header and error class.
    with pytest.raises(
        by_server(
            caldav_server,
            radicale=error.ETagMismatchError,
            xandikos=error.ScheduleTagMismatchError,
        )
    ):
        mine.save(increase_seqno=False)
    [put] = request_log.requests
    assert put.status == 412
    assert set(put.headers) & {"if-match", "if-schedule-tag-match"} == by_server(
        caldav_server, radicale={"if-match"}, xandikos={"if-schedule-tag-match"}
    )
    request_log.take()

    # precondition="etag" makes both servers see If-Match with the ETag.
    with pytest.raises(error.ETagMismatchError):
        mine.save(increase_seqno=False, precondition="etag")
    assert request_log.requests[0].headers["if-match"] == mine.etag
    request_log.take()

    # After a reload the copy is current and the same conditional save goes through.
    mine.load()
    mine.data = vevent("stale@convene.test", summary="Changed here")
    before = mine.etag
    mine.save(increase_seqno=False, precondition="etag")
    assert request_log.take() == [("GET", 200), ("PUT", 204)]
    assert mine.etag not in (None, before)


def test_delete_if_match(
    caldav_server: CalDAVServer, caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    event = caldav_calendar.add_event(vevent("delete@convene.test"))
    request_log.take()
    with pytest.raises(error.ETagMismatchError):
        Event(caldav_calendar.client, url=event.url, parent=caldav_calendar).delete(
            if_match='"not-the-etag"'
        )
    # if_match=True sends the same tag save() would: the Schedule-Tag on Xandikos,
    # unless precondition="etag".
    event.delete(if_match=True, precondition="etag")
    assert request_log.requests[1].headers["if-match"] == event.etag
    assert request_log.take() == [
        ("DELETE", 412),
        ("DELETE", by_server(caldav_server, radicale=200, xandikos=204)),
    ]
    # An unconditional delete of something already gone is quietly accepted.
    event.delete()
    assert request_log.take() == [("DELETE", 404)]


# --- Searching ---------------------------------------------------------------------------


def test_search_expand_returns_one_object_per_occurrence_in_range(
    caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    caldav_calendar.add_event(vevent("single@convene.test"))
    caldav_calendar.add_event(
        vevent(
            "weekly@convene.test",
            summary="Weekly",
            start=datetime(2030, 1, 1, 13, 0, tzinfo=UTC),
            rrule="FREQ=WEEKLY;COUNT=10",
        )
    )
    caldav_calendar.add_event(
        vevent("later@convene.test", start=datetime(2031, 1, 1, 13, 0, tzinfo=UTC))
    )
    request_log.take()

    found = caldav_calendar.search(
        start=datetime(2030, 1, 1, tzinfo=UTC),
        end=datetime(2030, 1, 15, tzinfo=UTC),
        event=True,
        expand=True,
    )

    # One REPORT; the expansion is done by caldav itself (server_expand=False).
    assert request_log.take() == [("REPORT", 207)]
    occurrences = sorted(
        (
            obj.id,
            obj.icalendar_component["DTSTART"].dt,
            obj.icalendar_component.get("RECURRENCE-ID") is not None,
            "RRULE" in obj.icalendar_component,
            obj.etag,
            resource_name(obj),
        )
        for obj in found
    )
    # Each occurrence is its own Event sharing the series' URL, with a RECURRENCE-ID
    # and no RRULE, and without an ETag: they are copies, not server resources.
    assert occurrences == [
        ("single@convene.test", datetime(2030, 1, 7, 9, 0, tzinfo=UTC), False, False, None,
         "single%40convene.test.ics"),
        ("weekly@convene.test", datetime(2030, 1, 1, 13, 0, tzinfo=UTC), True, False, None,
         "weekly%40convene.test.ics"),
        ("weekly@convene.test", datetime(2030, 1, 8, 13, 0, tzinfo=UTC), True, False, None,
         "weekly%40convene.test.ics"),
    ]  # fmt: skip
    assert all(isinstance(obj, Event) for obj in found)

    unexpanded = caldav_calendar.search(
        start=datetime(2030, 1, 1, tzinfo=UTC),
        end=datetime(2030, 1, 15, tzinfo=UTC),
        event=True,
    )
    # Without expand: one object per resource, with its ETag.
    assert sorted(obj.id for obj in unexpanded) == ["single@convene.test", "weekly@convene.test"]
    assert all(obj.etag for obj in unexpanded)


# --- Sync tokens -------------------------------------------------------------------------


def test_sync_token_reports_changes_and_deletions(
    caldav_server: CalDAVServer, caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    empty = caldav_calendar.get_objects_by_sync_token(sync_token=None, load_objects=True)
    assert len(empty) == 0
    assert empty.sync_token
    # Radicale's tokens are URLs, Xandikos' the bare git commit id.
    assert empty.sync_token.startswith(
        by_server(caldav_server, radicale="http://radicale.org/ns/sync/", xandikos="")
    )
    assert not empty.sync_token.startswith("fake-")

    kept = caldav_calendar.add_event(vevent("kept@convene.test"))
    changed = caldav_calendar.add_event(vevent("changed@convene.test"))
    removed = caldav_calendar.add_event(vevent("removed@convene.test"))
    request_log.take()

    first = caldav_calendar.get_objects_by_sync_token(sync_token=None, load_objects=True)
    # load_objects=True loads each object with its own GET after the REPORT.
    assert request_log.take() == [("REPORT", 207)] + [("GET", 200)] * 3
    assert {obj.id for obj in first} == {
        "kept@convene.test",
        "changed@convene.test",
        "removed@convene.test",
    }
    assert all(obj.etag and obj.data for obj in first)
    assert first.deleted_urls == set()
    assert first.sync_token != empty.sync_token

    unchanged = caldav_calendar.get_objects_by_sync_token(
        sync_token=first.sync_token, load_objects=True
    )
    assert (len(unchanged), unchanged.sync_token) == (0, first.sync_token)
    assert request_log.take() == [("REPORT", 207)]

    changed.data = vevent("changed@convene.test", summary="Rescheduled")
    changed.save()
    removed.delete()
    added = caldav_calendar.add_event(vevent("added@convene.test"))
    request_log.take()

    delta = caldav_calendar.get_objects_by_sync_token(
        sync_token=first.sync_token, load_objects=True
    )
    # No GET for the deleted resource: one each for the changed and the added one.
    assert request_log.take() == [("REPORT", 207), ("GET", 200), ("GET", 200)]
    assert delta.sync_token not in (first.sync_token, None)
    by_name = {resource_name(obj): obj for obj in delta}
    assert set(by_name) == {resource_name(changed), resource_name(removed), resource_name(added)}
    assert resource_name(kept) not in by_name
    # A deletion is an object with only a URL: no data, no ETag, listed in deleted_urls.
    gone = by_name[resource_name(removed)]
    assert (gone.data, gone.etag) == (None, None)
    assert delta.deleted_urls == {removed.url.canonical()}
    assert "Rescheduled" in by_name[resource_name(changed)].data
    assert by_name[resource_name(changed)].etag == changed.etag
    # Sync results are plain CalendarObjectResource objects, not Event.
    assert type(by_name[resource_name(added)]) is CalendarObjectResource

    # An old token keeps working and describes the same changes.
    again = caldav_calendar.get_objects_by_sync_token(sync_token=first.sync_token)
    assert {resource_name(obj) for obj in again} == set(by_name)


def test_sync_token_without_load_objects_then_one_multiget(
    caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    for number in range(4):
        caldav_calendar.add_event(vevent(f"bulk-{number}@convene.test"))
    request_log.take()

    listing = caldav_calendar.get_objects_by_sync_token(load_objects=False)
    assert all(obj.etag and obj.data is None for obj in listing)
    loaded = caldav_calendar.multiget([obj.url for obj in listing])

    # The cheap full load: REPORT for hrefs and ETags, one calendar-multiget for data.
    assert request_log.take() == [("REPORT", 207), ("REPORT", 207)]
    assert sorted(obj.id for obj in loaded) == [f"bulk-{n}@convene.test" for n in range(4)]
    assert all(obj.etag for obj in loaded)


def test_created_and_deleted_between_syncs(
    caldav_server: CalDAVServer, caldav_calendar: Calendar
) -> None:
    token = caldav_calendar.get_objects_by_sync_token().sync_token
    brief = caldav_calendar.add_event(vevent("brief@convene.test"))
    brief.delete()

    delta = caldav_calendar.get_objects_by_sync_token(sync_token=token, load_objects=True)
    # Radicale reports the removal of something the client never saw: a deletion of an
    # unknown href must be harmless. Xandikos reports nothing.
    assert {resource_name(obj) for obj in delta} == by_server(
        caldav_server, radicale={resource_name(brief)}, xandikos=set()
    )
    assert len(delta.deleted_urls) == by_server(caldav_server, radicale=1, xandikos=0)


@pytest.mark.parametrize(
    "token",
    ["garbage", "http://example.invalid/never-issued", "0" * 40],
    ids=["garbage", "foreign-url", "hex"],
)
def test_invalid_sync_token_raises_with_disable_fallback(
    caldav_server: CalDAVServer,
    caldav_calendar: Calendar,
    request_log: RequestLog,
    token: str,
) -> None:
    expected = by_server(
        caldav_server,
        # RFC 6578 section 3.2: 403 with DAV:valid-sync-token.
        radicale=(error.AuthorizationError, 403),
        # Xandikos uses 412; caldav turns a failed REPORT into ReportError.
        xandikos=(error.ReportError, 412),
    )
    with pytest.raises(expected[0]) as raised:
        caldav_calendar.get_objects_by_sync_token(
            sync_token=token, load_objects=True, disable_fallback=True
        )
    # The precondition is what tells an expired token from a real permission problem.
    assert raised.value.status == expected[1]
    assert "{DAV:}valid-sync-token" in raised.value.preconditions
    assert request_log.take() == [("REPORT", expected[1])]


def test_invalid_sync_token_falls_back_to_a_full_listing_with_a_fake_token(
    caldav_server: CalDAVServer, caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    event = caldav_calendar.add_event(vevent("fallback@convene.test"))
    request_log.take()

    result = caldav_calendar.get_objects_by_sync_token(sync_token="garbage", load_objects=True)

    # Silently: the failed REPORT, then a calendar-query REPORT for everything (data
    # included). The result is the whole calendar, with no deletions reported, and the
    # token is caldav's own "fake-" hash of the ETags, which it will never send to the
    # server again: a caller must treat this result as a full snapshot.
    assert request_log.take() == [
        ("REPORT", by_server(caldav_server, radicale=403, xandikos=412)),
        ("REPORT", 207),
    ]
    assert result.sync_token.startswith("fake-")
    assert [obj.id for obj in result] == ["fallback@convene.test"]
    assert result.deleted_urls == set()
    assert [obj.etag for obj in result] == [event.etag]


def test_incremental_sync_without_changes_costs_one_request(
    caldav_server: CalDAVServer, caldav_calendar: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = caldav_calendar.get_objects_by_sync_token().sync_token

    # What a periodic poll does: a new client for a stored calendar URL and token.
    for auth_type, expected in (
        (None, by_server(caldav_server, radicale=[401, 207], xandikos=[207])),
        ("basic", [207]),
    ):
        client = DAVClient(
            url=caldav_server.url,
            username=caldav_server.username,
            password=caldav_server.password,
            auth_type=auth_type,
        )
        log = record_requests(client, monkeypatch)
        calendar = client.calendar(url=str(caldav_calendar.url))
        result = calendar.get_objects_by_sync_token(
            sync_token=token, load_objects=True, disable_fallback=True
        )
        assert len(result) == 0
        # auth_type="basic" saves the unauthenticated first request to Radicale.
        assert log.take() == [("REPORT", status) for status in expected]
        client.close()


def test_sync_on_a_deleted_calendar_raises_not_found(
    caldav_server: CalDAVServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, calendar = make_calendar(caldav_server)
    token = calendar.get_objects_by_sync_token().sync_token
    calendar.delete()
    log = record_requests(client, monkeypatch)

    with pytest.raises(error.NotFoundError):
        calendar.get_objects_by_sync_token(sync_token=token, disable_fallback=True)
    # The fallback does not hide it either; it only tries once more.
    with pytest.raises(error.NotFoundError):
        calendar.get_objects_by_sync_token(sync_token=token)
    assert log.take() == [("REPORT", 404), ("REPORT", 404), ("REPORT", 404)]
    client.close()


# --- Collection change tags --------------------------------------------------------------


def test_collection_ctag_and_sync_token_change_on_every_write(
    caldav_server: CalDAVServer, caldav_calendar: Calendar, request_log: RequestLog
) -> None:
    properties = [dav.GetEtag(), GetCTag(), dav.SyncToken()]
    before = caldav_calendar.get_properties(properties)
    assert request_log.take() == [("PROPFIND", 207)]

    caldav_calendar.add_event(vevent("ctag@convene.test"))
    after = caldav_calendar.get_properties(properties)

    for prop in properties:
        assert before[prop.tag]
        assert after[prop.tag] != before[prop.tag]
    # The collection's own sync-token property equals what sync-collection returns.
    assert after[dav.SyncToken.tag] == caldav_calendar.get_objects_by_sync_token().sync_token
    # Radicale's getctag is the collection's ETag; Xandikos uses its commit id for all
    # three (the ETag quoted, the others bare).
    if caldav_server.name == "radicale":
        assert after[GetCTag.tag] == after[dav.GetEtag.tag]
    else:
        assert after[GetCTag.tag] == after[dav.SyncToken.tag]
        assert after[dav.GetEtag.tag] == f'"{after[dav.SyncToken.tag]}"'


# --- Authentication ----------------------------------------------------------------------


def test_radicale_wrong_password_raises_authorization_error_at_the_first_request(
    radicale_server: CalDAVServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The constructor sends nothing; the first call that talks to the server raises.
    client = radicale_server.client(password="wrong")
    log = record_requests(client, monkeypatch)
    assert log.take() == []

    with pytest.raises(error.AuthorizationError) as raised:
        client.get_principal()
    assert raised.value.status == 401
    assert raised.value.preconditions == []
    assert log.take() == [("PROPFIND", 401), ("PROPFIND", 401)]

    preset = DAVClient(
        url=radicale_server.url,
        username=radicale_server.username,
        password="wrong",
        auth_type="basic",
    )
    preset_log = record_requests(preset, monkeypatch)
    with pytest.raises(error.AuthorizationError):
        preset.get_principal()
    assert preset_log.take() == [("PROPFIND", 401)]


def test_radicale_wrong_password_during_sync_is_not_hidden_by_the_fallback(
    radicale_server: CalDAVServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, calendar = make_calendar(radicale_server)
    token = calendar.get_objects_by_sync_token().sync_token
    client = DAVClient(
        url=radicale_server.url,
        username=radicale_server.username,
        password="wrong",
        auth_type="basic",
    )
    log = record_requests(client, monkeypatch)
    try:
        with pytest.raises(error.AuthorizationError) as raised:
            client.calendar(url=str(calendar.url)).get_objects_by_sync_token(sync_token=token)
    finally:
        calendar.delete()
        owner.close()
    # A 401 without a precondition makes an unconfigured client try the full-listing
    # fallback once, which fails the same way: still an AuthorizationError.
    assert raised.value.status == 401
    assert log.take() == [("REPORT", 401), ("REPORT", 401)]


def test_radicale_owner_only_rights_forbid_other_users_collections(
    radicale_server: CalDAVServer,
) -> None:
    client = radicale_server.client()
    other = client.calendar(url=f"{radicale_server.url}bob/calendar/")
    with pytest.raises(error.AuthorizationError) as raised:
        other.get_objects_by_sync_token(disable_fallback=True)
    assert raised.value.status == 403


def test_xandikos_accepts_any_credentials(xandikos_server: CalDAVServer) -> None:
    assert not xandikos_server.supports_auth
    client = xandikos_server.client(password="wrong")
    assert client.get_principal().url.path == "/user/"
