"""The Microsoft Graph provider against the fake Graph and identity platform
(tests/fakes/microsoft.py), over real HTTP: the shared contract, then what is particular
to Graph (delta rounds, showAs, transactionId, Teams, subscriptions, throttling)."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import jwt
import pytest
import requests
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from apps.accounts.models import CalendarService
from apps.calendars.providers import PROVIDERS
from apps.calendars.providers.base import (
    AuthError,
    BusyKind,
    EventPayload,
    EventRef,
    PermissionError,
    ServerError,
    TransientError,
    Window,
)
from apps.calendars.providers.microsoft import (
    ROUND_SLACK,
    SUBSCRIPTION_LIFETIME,
    UID_PROPERTY,
    MicrosoftProvider,
)
from apps.calendars.providers.oauth import OAuthApp, no_limit, token_refresh
from apps.calendars.throttle import mailbox_slot
from tests.calendars.contract import ProviderContract, day_at, window_ahead
from tests.fakes.microsoft import (
    CONSUMER_TENANT,
    DEFAULT_SCOPES,
    FakeMicrosoft,
    RecordedRequest,
    ServedMicrosoft,
    serve,
)

ADA = "ada@contoso.test"
PUSH_HOST = "https://convene.test"


@pytest.fixture
def fake() -> FakeMicrosoft:
    fake = FakeMicrosoft()
    fake.add_mailbox(ADA, display_name="Ada Lovelace")
    return fake


@pytest.fixture
def graph(fake: FakeMicrosoft, settings: Any) -> Iterator[ServedMicrosoft]:
    for served in serve(fake):
        settings.MICROSOFT_GRAPH_URL = served.base_url
        settings.MICROSOFT_LOGIN_URL = served.base_url
        yield served


def _provider(fake: FakeMicrosoft, mail: str = ADA, **options: Any) -> MicrosoftProvider:
    token = fake.issue_token(mail, options.pop("scopes", DEFAULT_SCOPES))
    credentials = {"access_token": token, "identity": mail, **options.pop("credentials", {})}
    return MicrosoftProvider(credentials, **options)


@pytest.fixture
def provider(graph: ServedMicrosoft, fake: FakeMicrosoft) -> Iterator[MicrosoftProvider]:
    provider = _provider(fake)
    yield provider
    provider.close()


@pytest.fixture
def calendar_id(fake: FakeMicrosoft) -> str:
    return fake.mailbox(ADA).default_calendar_id


class GraphEditor:
    """Outlook (or a phone) changing the calendar: straight into the fake's store."""

    def __init__(self, fake: FakeMicrosoft, calendar_id: str) -> None:
        self.fake = fake
        self.calendar_id = calendar_id

    def add(self, *, start: dt.datetime, end: dt.datetime, busy: bool = True) -> str:
        show_as = "busy" if busy else "free"
        return self.fake.add_event(self.calendar_id, start=start, end=end, show_as=show_as).id

    def move(self, handle: str, *, start: dt.datetime, end: dt.datetime) -> None:
        self.fake.move_event(handle, start=start, end=end)

    def remove(self, handle: str) -> None:
        self.fake.delete_event(handle)

    def count_convene_events(self) -> int:
        events = self.fake.events_in(self.calendar_id)
        return sum(1 for event in events if UID_PROPERTY.lower() in event.extended)


@pytest.fixture
def remote(fake: FakeMicrosoft, calendar_id: str) -> GraphEditor:
    return GraphEditor(fake, calendar_id)


class TestMicrosoftContract(ProviderContract):
    pass


def _payload(**fields: Any) -> EventPayload:
    values = {
        "uid": f"appointment-{uuid.uuid4().hex[:8]}-calendar-1@convene.invalid",
        "title": "Career advice",
        "start": day_at(7, 9),
        "end": day_at(7, 10),
        "description": "Booked in Convene",
        **fields,
    }
    return EventPayload(**values)


def _graph_requests(fake: FakeMicrosoft, method: str, fragment: str) -> list[RecordedRequest]:
    return [r for r in fake.requests_log if r.method == method and fragment in r.path]


# -- registry and connection ----------------------------------------------------------


def test_the_registry_knows_microsoft() -> None:
    assert PROVIDERS["microsoft"] is MicrosoftProvider
    assert MicrosoftProvider.name == CalendarService.MICROSOFT.label
    assert set(MicrosoftProvider.scopes) == {"offline_access", "User.Read", "Calendars.ReadWrite"}


def test_connection_names_a_personal_account_by_its_sign_in_name(
    graph: ServedMicrosoft, fake: FakeMicrosoft
) -> None:
    mailbox = fake.add_mailbox("grace@outlook.test", personal=True)
    identity = _provider(fake, "grace@outlook.test").test_connection()
    assert identity.display == "grace@outlook.test"  # Outlook.com accounts have no `mail`
    assert identity.external_id == mailbox.id
    selected = _graph_requests(fake, "GET", "/me")[0]
    assert selected.query["$select"] == "id,mail,userPrincipalName"


@pytest.mark.parametrize(
    ("scopes", "says"),
    [
        (("Calendars.ReadWrite",), "sign you in and read your profile"),
        (("User.Read",), "full access to your calendars"),
    ],
)
def test_connection_says_which_permission_is_missing(
    graph: ServedMicrosoft, fake: FakeMicrosoft, scopes: tuple[str, ...], says: str
) -> None:
    with pytest.raises(PermissionError) as raised:
        _provider(fake, scopes=scopes).test_connection()
    assert says in raised.value.message


def test_calendars_come_page_by_page_with_the_primary_first(
    graph: ServedMicrosoft, fake: FakeMicrosoft, provider: MicrosoftProvider
) -> None:
    fake.add_calendar(ADA, "Team", can_edit=False, hex_color="#ff8c00")
    fake.add_calendar(ADA, "Holidays")
    fake.default_page_size = 1
    # The default calendar is listed last here, so sorting must bring it forward.
    default = fake.calendars.pop(fake.mailbox(ADA).default_calendar_id)
    fake.calendars[default.id] = default
    calendars = provider.list_calendars()
    assert [c.name for c in calendars] == ["Calendar", "Team", "Holidays"]
    assert calendars[0].primary
    assert calendars[1].read_only and calendars[1].color == "#ff8c00"
    assert len(_graph_requests(fake, "GET", "/calendars")) == 3


# -- delta rounds -----------------------------------------------------------------------


def test_delta_pages_until_the_delta_link_and_keeps_the_round(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    fake.max_page_size = 2
    for day in range(1, 6):
        fake.add_event(calendar_id, start=day_at(day, 9), end=day_at(day, 10))
    window = window_ahead()
    changes = provider.sync_busy(calendar_id, window, None)
    assert changes.full
    assert sorted(i.start for i in changes.instances) == [day_at(d, 9) for d in range(1, 6)]
    assert changes.requests == 3
    first, *pages = _graph_requests(fake, "GET", "/calendarView/delta")
    assert first.query["startDateTime"] == window.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first.query["endDateTime"] == (window.end + ROUND_SLACK).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all("$skiptoken" in page.query for page in pages)
    assert all('outlook.timezone="UTC"' in r.headers["prefer"] for r in [first, *pages])
    assert "odata.maxpagesize=200" in first.headers["prefer"]
    assert "$deltatoken" in changes.state["delta_link"]
    assert changes.versions is not None and len(changes.versions) == 5

    fake.add_event(calendar_id, start=day_at(9, 9), end=day_at(9, 10))
    again = provider.sync_busy(calendar_id, window, changes.state)
    assert not again.full
    assert [i.start for i in again.instances] == [day_at(9, 9)]
    assert again.requests == 1
    assert (again.state["start"], again.state["end"]) == (
        changes.state["start"],
        changes.state["end"],
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [(410, "syncStateNotFound"), (400, "resyncRequired"), (404, "SyncStateInvalid")],
)
def test_a_token_graph_forgot_leads_to_a_full_sync(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str, status: int, code: str
) -> None:
    fake.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10))
    state = provider.sync_busy(calendar_id, window_ahead(), None).state
    fake.add_event(calendar_id, start=day_at(3, 9), end=day_at(3, 10))
    fake.fail_next(status, code=code)
    changes = provider.sync_busy(calendar_id, window_ahead(), state)
    assert changes.full
    assert {i.start for i in changes.instances} == {day_at(2, 9), day_at(3, 9)}


def test_expired_delta_tokens_are_a_410_and_a_new_round(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    state = provider.sync_busy(calendar_id, window_ahead(), None).state
    fake.expire_delta_tokens()
    changes = provider.sync_busy(calendar_id, window_ahead(), state)
    assert changes.full
    delta = _graph_requests(fake, "GET", "/calendarView/delta")
    assert [r.status for r in delta] == [200, 410, 200]


def test_a_window_beyond_the_round_starts_a_new_round(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    window = window_ahead()
    state = provider.sync_busy(calendar_id, window, None).state
    later = Window(window.start + dt.timedelta(days=3), window.end + dt.timedelta(days=3))
    assert not provider.sync_busy(calendar_id, later, state).full  # still inside the round

    beyond = Window(window.start, window.end + ROUND_SLACK + dt.timedelta(days=1))
    fake.add_event(calendar_id, start=beyond.end - dt.timedelta(hours=3), end=beyond.end)
    changes = provider.sync_busy(calendar_id, beyond, state)
    assert changes.full
    assert [i.end for i in changes.instances] == [beyond.end]
    assert changes.state["end"] > state["end"]

    earlier = Window(window.start - dt.timedelta(days=1), window.end)
    assert provider.sync_busy(calendar_id, earlier, changes.state).full


def test_removed_events_are_deleted_also_when_moved_out_of_the_window(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    gone = fake.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10)).id
    away = fake.add_event(calendar_id, start=day_at(3, 9), end=day_at(3, 10)).id
    window = window_ahead()
    state = provider.sync_busy(calendar_id, window, None).state
    fake.delete_event(gone)
    fake.move_event(away, start=day_at(200, 9), end=day_at(200, 10))
    changes = provider.sync_busy(calendar_id, window, state)
    assert changes.deleted == {gone, away}
    assert not changes.changed
    assert changes.instances == []


@pytest.mark.parametrize(
    ("show_as", "kind"),
    [
        ("busy", BusyKind.BUSY),
        ("unknown", BusyKind.BUSY),
        ("tentative", BusyKind.TENTATIVE),
        ("oof", BusyKind.OUT_OF_OFFICE),
        ("free", None),
        ("workingElsewhere", None),
    ],
)
def test_show_as_decides_whether_and_how_busy(
    provider: MicrosoftProvider,
    fake: FakeMicrosoft,
    calendar_id: str,
    show_as: str,
    kind: BusyKind | None,
) -> None:
    event = fake.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10), show_as=show_as)
    changes = provider.sync_busy(calendar_id, window_ahead(), None)
    assert [i.kind for i in changes.instances] == ([kind] if kind else [])
    # Not busy is still an event: its version counts, and incrementally it is "changed".
    assert changes.versions is not None and event.id in changes.versions


def test_declined_and_cancelled_events_leave_the_time_free(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    window = window_ahead()
    kept = fake.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10), response="accepted")
    declined = fake.add_event(
        calendar_id, start=day_at(2, 11), end=day_at(2, 12), response="declined"
    )
    fake.add_event(calendar_id, start=day_at(2, 13), end=day_at(2, 14), cancelled=True)
    first = provider.sync_busy(calendar_id, window, None)
    assert [i.event_id for i in first.instances] == [kept.id]

    fake.update_event(kept.id, response="declined")
    changes = provider.sync_busy(calendar_id, window, first.state)
    assert changes.changed == {kept.id}  # still an event, no longer busy
    assert changes.instances == []
    assert declined.id not in changes.changed


def test_all_day_events_are_the_owners_dates(
    graph: ServedMicrosoft, fake: FakeMicrosoft, calendar_id: str
) -> None:
    provider = _provider(fake, time_zone="Europe/Berlin")
    day = day_at(4, 0)
    fake.add_event(calendar_id, start=day, end=day + dt.timedelta(days=2), all_day=True)
    (instance,) = provider.sync_busy(calendar_id, window_ahead(), None).instances
    berlin = ZoneInfo("Europe/Berlin")
    assert instance.all_day
    assert instance.start == dt.datetime.combine(day.date(), dt.time(), tzinfo=berlin)
    assert instance.end == dt.datetime.combine(
        day.date() + dt.timedelta(days=2), dt.time(), tzinfo=berlin
    )
    assert instance.start.utcoffset() == dt.timedelta(0)  # stored in UTC


def test_a_series_with_a_cancelled_and_a_moved_occurrence(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    series = fake.add_event(calendar_id, start=day_at(1, 9), end=day_at(1, 10), weekly=4)
    week = dt.timedelta(weeks=1)
    fake.delete_event(series.id, occurrence=day_at(1, 9) + week)
    fake.move_event(
        series.id,
        start=day_at(1, 15) + 2 * week,
        end=day_at(1, 16) + 2 * week,
        occurrence=day_at(1, 9) + 2 * week,
    )
    window = window_ahead()
    changes = provider.sync_busy(calendar_id, window, None)
    spans = sorted((i.instance_start, i.start) for i in changes.instances)
    assert spans == [
        (day_at(1, 9), day_at(1, 9)),
        (day_at(1, 9) + 2 * week, day_at(1, 15) + 2 * week),
        (day_at(1, 9) + 3 * week, day_at(1, 9) + 3 * week),
    ]
    assert len({i.event_id for i in changes.instances}) == 3

    # Cancelling one more occurrence changes only that one.
    fake.delete_event(series.id, occurrence=day_at(1, 9) + 3 * week)
    later = provider.sync_busy(calendar_id, window, changes.state)
    cancelled = next(i.event_id for i in changes.instances if i.start == day_at(1, 9) + 3 * week)
    assert later.deleted == {cancelled}
    assert not later.changed


SECRETS = ("Oncology", "biopsy", "Ward 7", "dr.house", "Ada Lovelace")


def test_what_events_are_never_reaches_convene(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str, monkeypatch: Any
) -> None:
    event = fake.add_event(
        calendar_id,
        start=day_at(2, 9),
        end=day_at(2, 10),
        subject="Oncology follow-up",
        body="Results of the biopsy",
        location="Ward 7",
        attendees=("dr.house@hospital.test",),
    )
    parsed: list[str] = []
    take = provider._take

    def spy(item: Any, *rest: Any) -> None:
        parsed.append(repr(item))
        take(item, *rest)

    monkeypatch.setattr(provider, "_take", spy)
    window = window_ahead()
    full = provider.sync_busy(calendar_id, window, None)
    fake.update_event(event.id, subject="Oncology second opinion")
    incremental = provider.sync_busy(calendar_id, window, full.state)
    assert len(full.instances) == len(incremental.instances) == 1
    for changes in (full, incremental):
        kept = repr(changes)
        for secret in SECRETS:
            assert secret not in kept
    # Nor do the items the parser works on hold them: the decoder dropped them.
    assert len(parsed) == 2
    assert not [item for item in parsed for secret in SECRETS if secret in item]
    # Graph did send all of it: the parser had something to drop.
    for sent in _graph_requests(fake, "GET", "/calendarView/delta"):
        assert b"Oncology" in sent.answer and b"dr.house" in sent.answer


def test_unreadable_items_are_skipped_and_series_masters_ignored(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str, monkeypatch: Any
) -> None:
    good = fake.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10))
    crafted = [
        {"id": "master", "type": "seriesMaster", **_span(day_at(3, 9), day_at(3, 10))},
        {"id": "no-times", "type": "singleInstance", "showAs": "busy"},
        {"id": "backwards", "showAs": "busy", **_span(day_at(3, 10), day_at(3, 9))},
        {"showAs": "busy", **_span(day_at(3, 10), day_at(3, 11))},
    ]
    original = fake._changes
    monkeypatch.setattr(fake, "_changes", lambda *args: [*original(*args), *crafted])
    changes = provider.sync_busy(calendar_id, window_ahead(), None)
    assert [i.event_id for i in changes.instances] == [good.id]
    assert sorted(e.item for e in changes.skipped) == ["", "backwards", "no-times"]
    assert changes.versions is not None and "master" not in changes.versions


def _span(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    def when(value: dt.datetime) -> dict[str, str]:
        return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}

    return {"start": when(start), "end": when(end)}


# -- throttling and tokens --------------------------------------------------------------


def test_a_short_retry_after_is_waited_out(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str, monkeypatch: Any
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("apps.calendars.providers.oauth.time.sleep", waits.append)
    fake.fail_next(429, retry_after=2)
    fake.fail_next(503, retry_after=1)
    changes = provider.sync_busy(calendar_id, window_ahead(), None)
    assert changes.full
    assert waits == [2.0, 1.0]
    assert changes.requests == 3


def test_a_long_retry_after_ends_the_sync_with_its_hint(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    fake.fail_next(429, retry_after=120, code="ApplicationThrottled")
    with pytest.raises(TransientError) as raised:
        provider.sync_busy(calendar_id, window_ahead(), None)
    assert raised.value.retry_after == 120


@dataclass
class RecordingTokens:
    """A TokenSource whose first token Graph refuses."""

    fake: FakeMicrosoft
    token: str
    calls: list[bool] = field(default_factory=list)

    def access_token(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        if force_refresh:
            self.token = self.fake.issue_token(ADA)
        return self.token


def test_a_refused_token_is_refreshed_once(
    graph: ServedMicrosoft, fake: FakeMicrosoft, calendar_id: str
) -> None:
    tokens = RecordingTokens(fake, fake.issue_token(ADA))
    fake.expire_access_tokens()
    provider = MicrosoftProvider({"identity": ADA}, tokens=tokens)
    assert provider.sync_busy(calendar_id, window_ahead(), None).full
    assert tokens.calls == [False, True]
    assert [r.status for r in fake.requests_log] == [401, 200]
    assert (
        fake.requests_log[0].headers["authorization"]
        != fake.requests_log[1].headers["authorization"]
    )


def test_a_static_token_that_is_refused_is_an_auth_error(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    fake.revoke(ADA)
    with pytest.raises(AuthError):
        provider.sync_busy(calendar_id, window_ahead(), None)


def test_a_refused_read_names_the_calendar_permission(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    fake.fail_next(403)
    with pytest.raises(PermissionError) as raised:
        provider.sync_busy(calendar_id, window_ahead(), None)
    assert "full access to your calendars" in raised.value.message


def test_no_more_than_four_requests_reach_a_mailbox_at_once(
    graph: ServedMicrosoft, fake: FakeMicrosoft
) -> None:
    """Through Convene's own limiter: slots in the shared cache (Redis here, as in
    production), so the bound holds across workers, not just threads."""

    def burst(limiter: Any) -> int:
        fake.mailbox(ADA).max_concurrent = 0
        providers = [_provider(fake, limiter=limiter) for _ in range(12)]
        listed: list[int] = []
        threads = [
            threading.Thread(target=lambda p=p: listed.append(len(p.list_calendars())))
            for p in providers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert listed == [1] * 12
        return fake.max_concurrent(ADA)

    fake.delay = 0.25
    assert 1 < burst(mailbox_slot) <= 4
    # Every slot is given back.
    assert all(cache.get(f"calendars:slot:microsoft:{ADA}:{n}") is None for n in range(4))
    # Without the limiter the fake sees them all at once: the measurement is real.
    assert burst(no_limit) > 4


# -- writes ---------------------------------------------------------------------------


def test_a_retried_create_returns_the_same_event(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    event = _payload()
    first = provider.upsert_event(calendar_id, event)
    again = provider.upsert_event(calendar_id, event)
    assert again == first
    assert len(fake.events_in(calendar_id)) == 1
    posts = _graph_requests(fake, "POST", "/events")
    assert len(posts) == 2
    assert posts[0].json["transactionId"] == posts[1].json["transactionId"]
    assert posts[0].json["transactionId"].startswith("convene-")
    body = posts[0].json
    assert body["start"] == {
        "dateTime": day_at(7, 9).strftime("%Y-%m-%dT%H:%M:%S"),
        "timeZone": "UTC",
    }
    assert body["showAs"] == "busy"
    assert body["singleValueExtendedProperties"] == [{"id": UID_PROPERTY, "value": event.uid}]


def test_a_retry_with_changed_content_updates_the_first_event(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    event = _payload()
    first = provider.upsert_event(calendar_id, event)
    changed = provider.upsert_event(calendar_id, _payload(uid=event.uid, title="Mock interview"))
    assert changed.external_id == first.external_id
    assert changed.etag != first.etag
    (stored,) = fake.events_in(calendar_id)
    assert stored.subject == "Mock interview"
    statuses = [(r.method, r.status) for r in fake.requests_log]
    assert statuses == [("POST", 201), ("POST", 400), ("GET", 200), ("PATCH", 200)]


def test_an_event_deleted_in_outlook_is_written_again(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    event = _payload()
    first = provider.upsert_event(calendar_id, event)
    fake.delete_event(first.external_id)
    rewritten = provider.upsert_event(calendar_id, event, first)
    assert rewritten.external_id != first.external_id
    assert [e.id for e in fake.events_in(calendar_id)] == [rewritten.external_id]
    # Without the reference (it was lost), the same happens through the property lookup.
    fake.delete_event(rewritten.external_id)
    third = provider.upsert_event(calendar_id, event)
    assert [e.id for e in fake.events_in(calendar_id)] == [third.external_id]


def test_conferencing_makes_a_teams_meeting(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    ref = provider.upsert_event(calendar_id, _payload(conferencing=True))
    assert ref.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    post = _graph_requests(fake, "POST", "/events")[0].json
    assert post["isOnlineMeeting"] is True
    assert post["onlineMeetingProvider"] == "teamsForBusiness"
    # The meeting stays: an update keeps its link without asking for a new one.
    updated = provider.upsert_event(calendar_id, _payload(conferencing=True), ref)
    assert updated.join_url == ref.join_url
    assert "isOnlineMeeting" not in _graph_requests(fake, "PATCH", "/events")[0].json


@pytest.mark.parametrize(
    ("allowed", "default", "chosen"),
    [
        (["teamsForBusiness", "skypeForBusiness"], "skypeForBusiness", "skypeForBusiness"),
        (["skypeForBusiness", "teamsForBusiness"], "unknown", "teamsForBusiness"),
        (["skypeForConsumer"], "unknown", "skypeForConsumer"),
        ([], "unknown", None),
    ],
)
def test_the_meeting_provider_is_one_the_calendar_allows(
    provider: MicrosoftProvider,
    fake: FakeMicrosoft,
    allowed: list[str],
    default: str,
    chosen: str | None,
) -> None:
    calendar = fake.add_calendar(ADA, "Meetings", allowed=allowed, default_provider=default)
    ref = provider.upsert_event(calendar.id, _payload(conferencing=True))
    post = _graph_requests(fake, "POST", "/events")[0].json
    assert post.get("onlineMeetingProvider") == chosen
    assert bool(ref.join_url) is bool(chosen)


def test_a_read_only_calendar_refuses_writes(
    provider: MicrosoftProvider, fake: FakeMicrosoft
) -> None:
    shared = fake.add_calendar(ADA, "Boss", can_edit=False)
    with pytest.raises(PermissionError) as raised:
        provider.upsert_event(shared.id, _payload())
    assert "view only" in raised.value.message
    assert fake.events_in(shared.id) == []


def test_deleting_what_is_gone_is_success(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    provider.delete_event(calendar_id, EventRef("AAMkNoSuchEvent="))
    assert _graph_requests(fake, "DELETE", "/events")[0].status == 404


def test_a_named_mailbox_is_reached_under_users(
    graph: ServedMicrosoft, fake: FakeMicrosoft, calendar_id: str
) -> None:
    provider = _provider(fake, credentials={"mailbox": ADA})
    assert provider.test_connection().display == ADA
    assert [c.external_id for c in provider.list_calendars()] == [calendar_id]
    fake.add_event(calendar_id, start=day_at(2, 9), end=day_at(2, 10))
    changes = provider.sync_busy(calendar_id, window_ahead(), None)
    assert len(changes.instances) == 1
    provider.upsert_event(calendar_id, _payload())
    paths = [r.path for r in fake.requests_log]
    assert paths and all(p.startswith(f"/v1.0/users/{ADA}") for p in paths)
    assert provider.limiter_key() == f"microsoft:{ADA}"


# -- subscriptions ---------------------------------------------------------------------


def _django_deliver(client: Client) -> Any:
    """Graph's outgoing calls, answered by Convene's own push endpoint."""

    def deliver(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == PUSH_HOST
        response = client.post(
            f"{parts.path}?{parts.query}",
            data=body,
            content_type=headers["Content-Type"],
            secure=True,
        )
        return response.status_code, response["Content-Type"], response.content

    return deliver


@dataclass
class Receiver:
    """A notification endpoint that echoes validation tokens and records the rest."""

    received: list[dict[str, Any]] = field(default_factory=list)
    echo: bool = True

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        token = parse_qs(urlsplit(url).query).get("validationToken")
        if token:
            answer = token[0].encode() if self.echo else b"nope"
            return 200, "text/plain; charset=utf-8", answer
        self.received.append({"url": url, **json.loads(body)})
        return 202, "text/plain", b""


def test_watch_passes_the_validation_handshake_of_convenes_endpoint(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str, client: Client
) -> None:
    fake.deliver = _django_deliver(client)
    address = PUSH_HOST + reverse("push_microsoft")
    before = dt.datetime.now(dt.UTC)
    subscription = provider.watch(calendar_id, address=address, token="s3cret-state")
    stored = fake.subscriptions[subscription.channel_id]
    assert stored.client_state == "s3cret-state"
    assert stored.resource == f"me/calendars/{calendar_id}/events"
    assert stored.notification_url == stored.lifecycle_url == address
    assert stored.change_type == "created,updated,deleted"
    assert subscription.resource_id == stored.resource
    lifetime = subscription.expires_at - before
    assert abs(lifetime - SUBSCRIPTION_LIFETIME) < dt.timedelta(minutes=1)
    (handshake, _) = fake.deliveries[0]
    assert "validationToken=Validation%3A%20Testing" in handshake


def test_watch_fails_when_the_handshake_is_not_echoed(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    fake.deliver = Receiver(echo=False)
    with pytest.raises(ServerError) as raised:
        provider.watch(calendar_id, address=f"{PUSH_HOST}/push", token="t")
    assert "ValidationError" in raised.value.message
    assert fake.subscriptions == {}


def test_renew_extends_and_recreates_what_graph_dropped(
    provider: MicrosoftProvider, fake: FakeMicrosoft, calendar_id: str
) -> None:
    receiver = Receiver()
    fake.deliver = receiver
    address = f"{PUSH_HOST}/push"
    first = provider.watch(calendar_id, address=address, token="t1")
    fake.subscriptions[first.channel_id].expires_at -= dt.timedelta(days=1)
    renewed = provider.renew(calendar_id, first, address=address, token="t2")
    assert renewed.channel_id == first.channel_id
    assert renewed.expires_at > first.expires_at - dt.timedelta(minutes=1)
    assert fake.subscriptions[first.channel_id].client_state == "t1"  # kept in place
    assert _graph_requests(fake, "PATCH", "/subscriptions")[0].status == 200

    fake.lifecycle(first.channel_id, "subscriptionRemoved")
    assert receiver.received[-1]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    replaced = provider.renew(calendar_id, renewed, address=address, token="t3")
    assert replaced.channel_id != first.channel_id
    assert fake.subscriptions[replaced.channel_id].client_state == "t3"

    fake.notify(calendar_id)
    notification = receiver.received[-1]["value"][0]
    assert notification["subscriptionId"] == replaced.channel_id
    assert notification["clientState"] == "t3"

    provider.unwatch(replaced)
    assert fake.subscriptions == {}
    provider.unwatch(replaced)  # already gone: success


def test_graph_refuses_subscriptions_it_would_not_keep(
    graph: ServedMicrosoft, fake: FakeMicrosoft, calendar_id: str
) -> None:
    fake.deliver = Receiver()
    token = fake.issue_token(ADA)

    def subscribe(url: str, days: int) -> requests.Response:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        body = {
            "changeType": "updated",
            "notificationUrl": url,
            "resource": f"me/calendars/{calendar_id}/events",
            "expirationDateTime": expires.isoformat(),
        }
        return requests.post(
            f"{graph.base_url}/v1.0/subscriptions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )

    too_long = subscribe(f"{PUSH_HOST}/push", days=8)
    assert too_long.status_code == 400
    assert "10080 minutes" in too_long.json()["error"]["message"]
    assert subscribe("http://convene.test/push", days=1).status_code == 400
    assert subscribe(f"{PUSH_HOST}/push", days=6).status_code == 201


# -- the identity platform ---------------------------------------------------------------


def _consent(graph: ServedMicrosoft, decision: str, **params: str) -> dict[str, list[str]]:
    """Sign in through the fake's consent page; the query of the redirect back."""
    fake = graph.fake
    query = {
        "client_id": fake.client_id,
        "response_type": "code",
        "redirect_uri": "https://convene.test/accounts/microsoft/login/callback/",
        "scope": "openid email offline_access User.Read Calendars.ReadWrite",
        "state": "xyz",
        **params,
    }
    tenant = query.pop("tenant", "common")
    page = requests.get(f"{graph.base_url}/{tenant}/oauth2/v2.0/authorize", params=query, timeout=5)
    assert page.status_code == 200, page.text
    assert 'data-scope="Calendars.ReadWrite"' in page.text
    action = re.search(r'action="([^"]+)"', page.text)
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert action and request_id
    answer = requests.post(
        graph.base_url + action.group(1),
        data={"request": request_id.group(1), "decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(query["redirect_uri"])
    return parse_qs(urlsplit(location).query)


def _redeem(graph: ServedMicrosoft, code: str, tenant: str = "common") -> dict[str, Any]:
    fake = graph.fake
    return dict(
        requests.post(
            graph.token_url(tenant),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "https://convene.test/accounts/microsoft/login/callback/",
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
            },
            timeout=5,
        ).json()
    )


def test_sign_in_consent_and_tokens_for_a_work_account(
    graph: ServedMicrosoft, fake: FakeMicrosoft
) -> None:
    redirect = _consent(graph, "accept")
    assert redirect["state"] == ["xyz"]
    tokens = _redeem(graph, redirect["code"][0])
    claims = jwt.decode(
        tokens["id_token"], fake.client_secret, algorithms=["HS256"], audience=fake.client_id
    )
    assert claims["tid"] == fake.tenant_id
    assert claims["oid"] == fake.mailbox(ADA).id
    assert claims["preferred_username"] == claims["email"] == ADA
    assert "Calendars.ReadWrite" in tokens["scope"].split()
    provider = MicrosoftProvider({"access_token": tokens["access_token"], "identity": ADA})
    assert provider.test_connection().display == ADA
    # A code is good once.
    assert _redeem(graph, redirect["code"][0])["error"] == "invalid_grant"

    app = OAuthApp(fake.client_id, fake.client_secret, graph.token_url())
    renewed = token_refresh(app, tokens["refresh_token"], provider_name="Microsoft")
    assert renewed.refresh_token and renewed.refresh_token != tokens["refresh_token"]
    with pytest.raises(AuthError):  # rotated away
        token_refresh(app, tokens["refresh_token"], provider_name="Microsoft")
    fake.revoke(ADA)
    with pytest.raises(AuthError):
        token_refresh(app, renewed.refresh_token, provider_name="Microsoft")
    with pytest.raises(AuthError):
        token_refresh(
            OAuthApp(fake.client_id, "wrong", graph.token_url()), "x", provider_name="Microsoft"
        )


def test_declining_consent_goes_back_with_access_denied(graph: ServedMicrosoft) -> None:
    redirect = _consent(graph, "cancel")
    assert redirect["error"] == ["access_denied"]
    assert redirect["error_description"][0].startswith("AADSTS65004")
    assert redirect["state"] == ["xyz"]
    assert "code" not in redirect


def test_personal_accounts_sign_in_through_consumers_only(
    graph: ServedMicrosoft, fake: FakeMicrosoft
) -> None:
    fake.add_mailbox("grace@outlook.test", personal=True)
    redirect = _consent(graph, "accept", tenant="consumers", login_hint="grace@outlook.test")
    tokens = _redeem(graph, redirect["code"][0], "consumers")
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["tid"] == CONSUMER_TENANT
    refused = requests.get(
        f"{graph.base_url}/consumers/oauth2/v2.0/authorize",
        params={
            "client_id": fake.client_id,
            "response_type": "code",
            "redirect_uri": "https://x/",
            "login_hint": ADA,
        },
        timeout=5,
    )
    assert refused.status_code == 400
    assert "AADSTS50020" in refused.text
