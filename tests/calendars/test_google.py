"""The Google Calendar provider against the stateful fake of Google (tests/fakes/google.py),
served over real HTTP: the shared contract, then what is Google's own (paging, sync
tokens, rate limits, token refresh, busy semantics, privacy, Meet links, push)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from apps.calendars.providers import provider_class
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
from apps.calendars.providers.google import (
    EVENT_FIELDS,
    REQUIRED_SCOPES,
    GoogleProvider,
    event_id_for,
    missing_scopes,
)
from apps.calendars.providers.oauth import OAuthApp, token_refresh
from tests.calendars.contract import ProviderContract, day_at, window_ahead
from tests.fakes.google import FakeCalendar, FakeGoogle, FakeUser, ServedGoogle, serve

EVENTS_READ = "https://www.googleapis.com/auth/calendar.events.readonly"
ADDRESS = "https://convene.example/calendars/push/google/"


class FakeEditor:
    """Another calendar app editing the Google calendar: straight into the fake."""

    def __init__(self, google: FakeGoogle, calendar: FakeCalendar) -> None:
        self.google = google
        self.calendar = calendar

    def add(self, *, start: dt.datetime, end: dt.datetime, busy: bool = True) -> str:
        transparency = "opaque" if busy else "transparent"
        return self.google.add_event(
            self.calendar, start=start, end=end, transparency=transparency
        ).id

    def move(self, handle: str, *, start: dt.datetime, end: dt.datetime) -> None:
        self.google.move_event(self.calendar, handle, start=start, end=end)

    def remove(self, handle: str) -> None:
        self.google.delete_event(self.calendar, handle)

    def count_convene_events(self) -> int:
        return sum(
            1
            for event in self.calendar.events.values()
            if not event.cancelled
            and event.resource.get("extendedProperties", {}).get("private", {}).get("convene")
            == "1"
        )


@pytest.fixture
def fake_google() -> FakeGoogle:
    return FakeGoogle()


@pytest.fixture
def served(fake_google: FakeGoogle, settings: Any) -> Iterator[ServedGoogle]:
    for running in serve(fake_google):
        settings.GOOGLE_API_URL = running.base_url
        settings.GOOGLE_OAUTH_URL = running.base_url
        yield running


@pytest.fixture
def user(fake_google: FakeGoogle) -> FakeUser:
    return fake_google.add_user("ada@example.com", sub="110169484474386276334")


def _provider(
    google: FakeGoogle,
    user: FakeUser,
    *,
    scopes: set[str] | None = None,
    **options: Any,
) -> GoogleProvider:
    token = google.issue_token(user.email, set(REQUIRED_SCOPES) if scopes is None else scopes)
    return GoogleProvider({"access_token": token, "identity": user.email}, **options)


@pytest.fixture
def provider(served: ServedGoogle, user: FakeUser) -> Iterator[GoogleProvider]:
    provider = _provider(served.google, user)
    yield provider
    provider.close()


@pytest.fixture
def calendar_id(user: FakeUser) -> str:
    return user.primary.id


@pytest.fixture
def remote(fake_google: FakeGoogle, user: FakeUser) -> FakeEditor:
    return FakeEditor(fake_google, user.primary)


class TestGoogleContract(ProviderContract):
    pass


def _event_lists(google: FakeGoogle) -> list[dict[str, str]]:
    return [r.query for r in google.requests_log if r.path.endswith("/events")]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry-After waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr("apps.calendars.providers.oauth.time.sleep", waited.append)
    return waited


# -- registry and scopes ---------------------------------------------------------------


def test_google_is_registered_with_its_scopes() -> None:
    assert provider_class("google") is GoogleProvider
    assert GoogleProvider.scopes == REQUIRED_SCOPES
    assert GoogleProvider.integrated_conferencing and GoogleProvider.supports_push


def test_missing_scopes_accepts_wider_grants_and_names_the_rest() -> None:
    wide = {"https://www.googleapis.com/auth/calendar"}
    assert missing_scopes(wide) == []
    assert missing_scopes({"https://www.googleapis.com/auth/calendar.readonly"}) == [
        "https://www.googleapis.com/auth/calendar.events.owned"
    ]


def test_connection_names_the_account_by_email_and_google_id(provider: GoogleProvider) -> None:
    identity = provider.test_connection()
    assert identity.display == "ada@example.com"
    assert identity.external_id == "110169484474386276334"


def test_connection_names_the_permission_left_unticked(
    served: ServedGoogle, user: FakeUser
) -> None:
    provider = _provider(served.google, user, scopes=set(REQUIRED_SCOPES) - {EVENTS_READ})
    with pytest.raises(PermissionError) as raised:
        provider.test_connection()
    assert raised.value.message == (
        "Google did not give Convene permission to: see when you are busy (Convene never "
        "downloads titles). Connect again and leave every box ticked."
    )


def test_consent_screen_with_a_box_unticked_leads_to_a_named_permission_error(
    served: ServedGoogle, user: FakeUser
) -> None:
    google = served.google
    page = requests.get(
        f"{served.base_url}/o/oauth2/v2/auth",
        params={
            "client_id": google.client_id,
            "redirect_uri": "https://convene.example/accounts/google/login/callback/",
            "response_type": "code",
            "scope": " ".join(["openid", "email", *REQUIRED_SCOPES]),
            "state": "s1",
            "access_type": "offline",
            "prompt": "consent",
        },
        timeout=5,
    )
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    boxes = re.findall(r'<input type="checkbox" name="scope" value="([^"]+)" checked>', page.text)
    assert set(boxes) == set(REQUIRED_SCOPES)  # sign-in scopes have no box
    ticked = [scope for scope in boxes if scope != EVENTS_READ]
    consent = requests.post(
        f"{served.base_url}/o/oauth2/v2/auth/consent",
        data={**hidden, "email": user.email, "scope": ticked, "action": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    assert consent.status_code == 302
    redirect = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert redirect["state"] == ["s1"]
    token = requests.post(
        f"{served.base_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": redirect["code"][0],
            "redirect_uri": hidden["redirect_uri"],
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=5,
    ).json()
    assert token["refresh_token"]
    assert EVENTS_READ not in token["scope"].split()
    provider = GoogleProvider({"access_token": token["access_token"]})
    with pytest.raises(PermissionError, match="see when you are busy"):
        provider.test_connection()


# -- calendars -------------------------------------------------------------------------


def test_calendar_list_pages_puts_the_primary_first_and_marks_read_only(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    google.page_size = 2
    google.add_calendar(user, "Team", access_role="reader", summary_override="My team")
    google.add_calendar(user, "Boss", access_role="freeBusyReader", color="#ff0000")
    google.add_calendar(user, "Side project", access_role="writer")
    # The primary last in Google's order: the provider must still put it first.
    user.calendars[user.email] = user.calendars.pop(user.email)

    calendars = provider.list_calendars()

    assert [(c.name, c.primary, c.read_only) for c in calendars] == [
        ("ada@example.com", True, False),
        ("My team", False, True),
        ("Boss", False, True),
        # Shared with write access, but `calendar.events.owned` writes only to
        # calendars the person owns.
        ("Side project", False, True),
    ]
    assert calendars[2].color == "#ff0000"
    assert sum(r.path.endswith("/calendarList") for r in google.requests_log) == 2


def test_writing_to_a_read_only_calendar_says_so(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    team = served.google.add_calendar(user, "Team", access_role="reader")
    event = EventPayload(
        uid="u1@convene.test", title="Advice", start=day_at(3, 9), end=day_at(3, 10)
    )
    with pytest.raises(PermissionError, match="read-only"):
        provider.upsert_event(team.id, event)
    assert team.events == {}


# -- sync ------------------------------------------------------------------------------


def test_full_sync_follows_every_page_including_an_empty_one_until_the_sync_token(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    google.page_size = 3
    google.empty_first_page = True
    for day in range(2, 10):
        google.add_event(user.primary, start=day_at(day, 9), end=day_at(day, 10))
    window = window_ahead()

    changes = provider.sync_busy(user.primary.id, window, None)

    assert changes.full
    assert sorted(i.start for i in changes.instances) == [day_at(d, 9) for d in range(2, 10)]
    lists = _event_lists(google)
    assert len(lists) == changes.requests == 4  # empty page, then 3 + 3 + 2 events
    assert ["pageToken" in q for q in lists] == [False, True, True, True]
    assert all(
        q["singleEvents"] == "true" and q["maxResults"] == "2500" and q["fields"] == EVENT_FIELDS
        for q in lists
    )
    assert lists[0]["timeMin"] == window.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "timeMax" not in lists[0]

    google.requests_log.clear()
    quiet = provider.sync_busy(user.primary.id, window, changes.state)
    assert not quiet.full
    (query,) = _event_lists(google)[:1]
    assert query["syncToken"] == changes.state["sync_token"]
    assert "timeMin" not in query
    assert query["fields"] == EVENT_FIELDS and query["singleEvents"] == "true"


def test_an_expired_sync_token_leads_to_a_full_reconciling_sync(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    google.add_event(user.primary, start=day_at(2, 9), end=day_at(2, 10))
    window = window_ahead()
    state = provider.sync_busy(user.primary.id, window, None).state
    google.add_event(user.primary, start=day_at(3, 9), end=day_at(3, 10))
    google.expire_sync_tokens()
    google.requests_log.clear()

    changes = provider.sync_busy(user.primary.id, window, state)

    assert changes.full
    assert {i.start for i in changes.instances} == {day_at(2, 9), day_at(3, 9)}
    assert ["syncToken" in q for q in _event_lists(google)] == [True, False]
    assert changes.state["sync_token"] != state["sync_token"]


def test_a_window_rolled_past_the_horizon_syncs_in_full(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    window = window_ahead()
    state = provider.sync_busy(user.primary.id, window, None).state
    assert state["horizon"] == window.end.isoformat()
    # Beyond the old window's end: never reported, and unchanged since.
    beyond = window.end + dt.timedelta(hours=2)
    google.add_event(user.primary, start=beyond, end=beyond + dt.timedelta(hours=1))
    google.requests_log.clear()
    later = Window(start=window.start + dt.timedelta(days=1), end=window.end + dt.timedelta(days=1))

    changes = provider.sync_busy(user.primary.id, later, state)

    assert changes.full
    assert [i.start for i in changes.instances] == [beyond]
    assert not any("syncToken" in q for q in _event_lists(google))


def test_incremental_sync_reports_a_change_that_leaves_the_time_free(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    event = google.add_event(user.primary, start=day_at(2, 9), end=day_at(2, 10))
    window = window_ahead()
    state = provider.sync_busy(user.primary.id, window, None).state
    google._store(user.primary, {**event.resource, "transparency": "transparent"})

    changes = provider.sync_busy(user.primary.id, window, state)

    assert changes.changed == {event.id}
    assert changes.instances == []
    assert changes.versions is None


def test_busy_rules_follow_transparency_event_type_and_my_response(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google, calendar = served.google, user.primary

    def add(day: int, **fields: Any) -> str:
        return google.add_event(calendar, start=day_at(day, 9), end=day_at(day, 10), **fields).id

    me = {"email": user.email, "self": True}
    other = {"email": "bob@example.com", "responseStatus": "accepted"}
    kinds = {
        add(2): BusyKind.BUSY,
        add(3, transparency="transparent"): None,
        add(4, eventType="outOfOffice"): BusyKind.OUT_OF_OFFICE,
        add(5, eventType="focusTime"): BusyKind.BUSY,
        add(6, eventType="workingLocation"): None,
        add(7, attendees=[other, {**me, "responseStatus": "declined"}]): None,
        add(8, attendees=[other, {**me, "responseStatus": "tentative"}]): BusyKind.TENTATIVE,
        add(9, attendees=[{**me, "responseStatus": "accepted"}]): BusyKind.BUSY,
        add(10, extendedProperties={"private": {"convene": "1"}}): None,
    }

    changes = provider.sync_busy(calendar.id, window_ahead(), None)

    found = {i.event_id: i.kind for i in changes.instances}
    assert found == {event_id: kind for event_id, kind in kinds.items() if kind is not None}
    # Every event has a version, busy or not: written events are found by it.
    assert set(changes.versions or {}) == set(kinds)


def test_all_day_events_are_midnight_to_midnight_in_the_owners_zone(
    served: ServedGoogle, user: FakeUser
) -> None:
    provider = _provider(served.google, user, time_zone="America/New_York")
    first = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).date()
    event = served.google.add_event(
        user.primary, start=first, end=first + dt.timedelta(days=2), summary="Conference"
    )

    (instance,) = provider.sync_busy(user.primary.id, window_ahead(), None).instances

    new_york = ZoneInfo("America/New_York")
    assert instance.event_id == event.id
    assert instance.all_day
    assert instance.start == dt.datetime.combine(first, dt.time(), new_york).astimezone(dt.UTC)
    assert instance.end == dt.datetime.combine(
        first + dt.timedelta(days=2), dt.time(), new_york
    ).astimezone(dt.UTC)
    assert instance.start.hour in (4, 5)  # EDT or EST


def test_recurring_event_with_a_cancelled_and_a_moved_instance(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google, calendar = served.google, user.primary
    master = google.add_event(
        calendar,
        start=day_at(2, 9),
        end=day_at(2, 10),
        recurrence=["RRULE:FREQ=DAILY;COUNT=5"],
    )
    google.delete_event(calendar, master.id, original_start=day_at(3, 9))
    google.move_event(
        calendar, master.id, original_start=day_at(4, 9), start=day_at(4, 15), end=day_at(4, 16)
    )
    window = window_ahead()

    changes = provider.sync_busy(calendar.id, window, None)

    def instance_id(day: int) -> str:
        return f"{master.id}_{day_at(day, 9).strftime('%Y%m%dT%H%M%SZ')}"

    got = {(i.event_id, i.instance_start, i.start) for i in changes.instances}
    assert got == {
        (instance_id(2), day_at(2, 9), day_at(2, 9)),
        (instance_id(4), day_at(4, 9), day_at(4, 15)),
        (instance_id(5), day_at(5, 9), day_at(5, 9)),
        (instance_id(6), day_at(6, 9), day_at(6, 9)),
    }

    google.delete_event(calendar, master.id)
    removed = provider.sync_busy(calendar.id, window, changes.state)
    assert removed.deleted == {instance_id(day) for day in range(2, 7)}
    assert removed.instances == []


def test_an_unreadable_event_is_skipped_and_the_rest_still_sync(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    broken = google.add_event(user.primary, start=day_at(2, 9), end=day_at(2, 10))
    broken.resource["start"] = {"dateTime": "next Tuesday"}
    google.add_event(user.primary, start=day_at(3, 9), end=day_at(3, 10))

    changes = provider.sync_busy(user.primary.id, window_ahead(), None)

    assert [i.start for i in changes.instances] == [day_at(3, 9)]
    assert [problem.item for problem in changes.skipped] == [broken.id]


def test_event_titles_and_guests_are_never_downloaded(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    google.add_event(
        user.primary,
        start=day_at(2, 9),
        end=day_at(2, 10),
        summary="Interview at Initech",
        description="Bring the portfolio",
        location="Room 101",
        attendees=[{"email": "recruiter@initech.example", "responseStatus": "accepted"}],
    )
    bodies: list[bytes] = []
    provider.session.hooks["response"].append(lambda response, **_: bodies.append(response.content))

    changes = provider.sync_busy(user.primary.id, window_ahead(), None)

    assert [i.start for i in changes.instances] == [day_at(2, 9)]
    assert bodies
    for secret in (b"Initech", b"portfolio", b"Room 101", b"recruiter@"):
        assert not any(secret in body for body in bodies)
    # The check can fail: without the mask the same answer carries them all.
    unmasked = requests.get(
        f"{served.base_url}/calendar/v3/calendars/{user.email}/events",
        params={"singleEvents": "true"},
        headers={"Authorization": f"Bearer {provider.tokens.access_token()}"},
        timeout=5,
    )
    assert b"Interview at Initech" in unmasked.content
    assert b"recruiter@initech.example" in unmasked.content


# -- rate limits and tokens ------------------------------------------------------------


def test_a_short_retry_after_is_waited_out(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider, sleeps: list[float]
) -> None:
    served.google.add_event(user.primary, start=day_at(2, 9), end=day_at(2, 10))
    served.google.fail_next(429, retry_after=2)

    changes = provider.sync_busy(user.primary.id, window_ahead(), None)

    assert sleeps == [2.0]
    assert len(changes.instances) == 1
    assert changes.requests == 2


def test_a_long_retry_after_is_handed_to_the_task_queue(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider, sleeps: list[float]
) -> None:
    served.google.fail_next(429, retry_after=120)
    with pytest.raises(TransientError) as raised:
        provider.sync_busy(user.primary.id, window_ahead(), None)
    assert raised.value.retry_after == 120.0
    assert sleeps == []


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"])
def test_a_403_rate_limit_is_a_rate_limit_not_a_permission_problem(
    served: ServedGoogle,
    user: FakeUser,
    provider: GoogleProvider,
    sleeps: list[float],
    reason: str,
) -> None:
    served.google.fail_next(403, reason=reason, retry_after=1)
    assert provider.list_calendars()
    assert sleeps == [1.0]

    served.google.fail_next(403, reason=reason, count=3)
    with pytest.raises(TransientError):
        provider.list_calendars()


def test_a_403_for_a_missing_scope_is_a_permission_error(
    served: ServedGoogle, user: FakeUser
) -> None:
    provider = _provider(served.google, user, scopes={EVENTS_READ})
    with pytest.raises(PermissionError, match="leave every box ticked"):
        provider.list_calendars()


@dataclass
class RecordingTokens:
    """A TokenSource that refreshes at the fake's token endpoint and remembers when it
    was asked to."""

    app: OAuthApp
    token: str
    refresh_token: str
    calls: list[bool] = field(default_factory=list)

    def access_token(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        if force_refresh:
            grant = token_refresh(self.app, self.refresh_token, provider_name="Google Calendar")
            self.token = grant.access_token
        return self.token


def _recording_tokens(served: ServedGoogle, user: FakeUser) -> RecordingTokens:
    google = served.google
    token = google.issue_token(user.email, set(REQUIRED_SCOPES))
    app = OAuthApp(google.client_id, google.client_secret, f"{served.base_url}/token")
    return RecordingTokens(app, token, google.refresh_token_of(token))


def test_a_refused_token_is_refreshed_once_and_the_request_repeated(
    served: ServedGoogle, user: FakeUser
) -> None:
    tokens = _recording_tokens(served, user)
    provider = GoogleProvider({"identity": user.email}, tokens=tokens)
    served.google.expire_access_tokens()

    assert provider.list_calendars()[0].external_id == user.email
    assert tokens.calls == [False, True]
    assert served.google.refreshes == 1
    # tokeninfo answers 400, not 401, for a stale token: refreshed there too.
    served.google.expire_access_tokens()
    assert provider.test_connection().display == user.email
    assert served.google.refreshes == 2


def test_a_revoked_grant_disconnects(served: ServedGoogle, user: FakeUser) -> None:
    tokens = _recording_tokens(served, user)
    provider = GoogleProvider({"identity": user.email}, tokens=tokens)
    served.google.revoke_user(user.email)

    with pytest.raises(AuthError, match="revoked or has expired"):
        provider.sync_busy(user.primary.id, window_ahead(), None)


# -- writing events --------------------------------------------------------------------


def _payload(**overrides: Any) -> EventPayload:
    fields: dict[str, Any] = {
        "uid": "appointment-7@convene.test",
        "title": "Career advice",
        "start": day_at(3, 9),
        "end": day_at(3, 10),
        "description": "Booked in Convene",
        **overrides,
    }
    return EventPayload(**fields)


def test_written_event_carries_convenes_id_and_mark(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    ref = provider.upsert_event(
        user.primary.id, _payload(join_url="https://zoom.example/j/1", busy=False)
    )

    stored = user.primary.events[ref.external_id].resource
    assert ref.external_id == event_id_for("appointment-7@convene.test")
    assert re.fullmatch(r"[a-v0-9]{52}", ref.external_id)
    assert ref.etag == stored["etag"]
    assert ref.join_url == "https://zoom.example/j/1"
    assert stored["summary"] == "Career advice"
    assert (
        stored["description"] == "Booked in Convene\n\nJoin the meeting: https://zoom.example/j/1"
    )
    assert stored["start"] == {
        "dateTime": day_at(3, 9).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timeZone": "UTC",
    }
    assert stored["transparency"] == "transparent"
    assert stored["extendedProperties"]["private"] == {
        "convene": "1",
        "conveneUid": "appointment-7@convene.test",
    }
    assert "conferenceData" not in stored


def test_meet_link_is_made_once_and_kept_through_retries_and_updates(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    first = provider.upsert_event(user.primary.id, _payload(conferencing=True))
    stored = user.primary.events[first.external_id].resource

    assert first.join_url.startswith("https://meet.google.com/")
    assert first.join_url == stored["hangoutLink"]
    inserts = [r for r in google.requests_log if r.method == "POST"]
    assert inserts[-1].query["conferenceDataVersion"] == "1"

    retried = provider.upsert_event(user.primary.id, _payload(conferencing=True))
    moved = provider.upsert_event(
        user.primary.id, _payload(conferencing=True, start=day_at(4, 9), end=day_at(4, 10)), retried
    )
    assert retried.join_url == moved.join_url == first.join_url
    assert (
        user.primary.events[first.external_id]
        .resource["start"]["dateTime"]
        .startswith(day_at(4, 9).strftime("%Y-%m-%dT%H:%M"))
    )


def test_an_event_deleted_in_google_is_written_again_and_its_drift_noticed(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    remote = FakeEditor(served.google, user.primary)
    ref = provider.upsert_event(user.primary.id, _payload())
    versions = provider.sync_busy(user.primary.id, window_ahead(), None).versions
    assert versions == {ref.external_id: ref.etag}

    served.google.delete_event(user.primary, ref.external_id)
    assert remote.count_convene_events() == 0
    assert provider.sync_busy(user.primary.id, window_ahead(), None).versions == {}

    again = provider.upsert_event(user.primary.id, _payload(), ref)
    assert again.external_id == ref.external_id
    assert again.etag != ref.etag
    assert remote.count_convene_events() == 1


def test_deleting_twice_or_an_unknown_event_is_success(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    ref = provider.upsert_event(user.primary.id, _payload())
    provider.delete_event(user.primary.id, ref)
    provider.delete_event(user.primary.id, ref)
    provider.delete_event(user.primary.id, EventRef("v0000neverexisted"))
    assert sum(r.method == "DELETE" for r in served.google.requests_log) == 3
    assert user.primary.events[ref.external_id].cancelled


# -- push --------------------------------------------------------------------------------


def test_watch_notify_renew_and_unwatch(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    google = served.google
    sent: list[tuple[str, dict[str, str], bytes]] = []
    google.deliver = lambda url, headers, body: sent.append((url, headers, body)) or 200

    first = provider.watch(user.primary.id, address=ADDRESS, token="secret-1")

    channel = google.channels[first.channel_id]
    assert (channel.address, channel.token, channel.calendar_id) == (
        ADDRESS,
        "secret-1",
        user.primary.id,
    )
    assert first.resource_id == channel.resource_id
    week = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    assert abs((first.expires_at - week).total_seconds()) < 5

    assert google.notify(user.primary.id) == [200]
    ((url, headers, body),) = sent
    assert url == ADDRESS and body == b""
    assert headers["X-Goog-Channel-ID"] == first.channel_id
    assert headers["X-Goog-Channel-Token"] == "secret-1"
    assert headers["X-Goog-Resource-ID"] == first.resource_id
    assert headers["X-Goog-Resource-State"] == "exists"
    assert headers["X-Goog-Message-Number"] == "1"

    second = provider.renew(user.primary.id, first, address=ADDRESS, token="secret-2")

    assert second.channel_id != first.channel_id
    assert list(google.channels) == [second.channel_id]
    assert google.stopped_channels == [first.channel_id]

    provider.unwatch(second)
    provider.unwatch(second)  # already stopped: success
    assert google.channels == {}
    assert google.stopped_channels == [first.channel_id, second.channel_id]


def test_watch_refuses_an_address_that_is_not_https(
    served: ServedGoogle, user: FakeUser, provider: GoogleProvider
) -> None:
    with pytest.raises(ServerError):
        provider.watch(user.primary.id, address="http://convene.example/push/", token="t")
    assert served.google.channels == {}


# -- the fake itself -------------------------------------------------------------------


def test_fake_refuses_what_google_refuses(served: ServedGoogle, user: FakeUser) -> None:
    google = served.google
    headers = {"Authorization": f"Bearer {google.issue_token(user.email, set(REQUIRED_SCOPES))}"}
    url = f"{served.base_url}/calendar/v3/calendars/{user.email}/events"

    def get(**params: str) -> requests.Response:
        return requests.get(url, params=params, headers=headers, timeout=5)

    token = get(singleEvents="true").json()["nextSyncToken"]
    assert get(syncToken=token, timeMin="2030-01-01T00:00:00Z").status_code == 400
    assert get(syncToken="CPunknown").status_code == 410
    assert get(maxResults="2501").status_code == 400
    masked = get(fields="items(id,start/dateTime),nextSyncToken").json()
    assert set(masked) == {"items", "nextSyncToken"}
    assert requests.get(url, timeout=5).status_code == 401
    event = {"id": "not-base32hex!", "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}
    assert requests.post(url, json=event, headers=headers, timeout=5).status_code == 400
