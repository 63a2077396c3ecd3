"""`make bench`: syncing a Google Calendar and a Microsoft Graph calendar of 2,000 events.

The services are the test suite's fakes (`tests/fakes/google.py`, `tests/fakes/microsoft.py`),
served over real HTTP on 127.0.0.1 from this process, with the page sizes Convene asks
for (Google's maximum of 2,500, and the 200 of the Graph provider's `Prefer`). Each
scenario runs Convene's sync as a worker does (`sync_account_task`: load the account,
ask the service, write busy blocks to PostgreSQL) and, in the same run and against the
same calendar, a baseline: plain `requests` paging through the same list endpoint with
the same parameters, without parsing events into busy blocks or touching the database.
The ratio says what Convene adds to the unavoidable cost of listing the calendar.
Absolute times are printed, never asserted; what is asserted is what must not regress:
one request per calendar when nothing changed, and query counts that do not grow with
the calendar.

Push is off (no HTTPS `PUBLIC_BASE_URL`), as on an install that polls: with it on, a
first sync would also open a channel, which is not what is measured here.
"""

from __future__ import annotations

import abc
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from requests.adapters import HTTPAdapter

from apps.calendars.models import CalendarAccount, SyncRun
from apps.calendars.providers import google as google_provider
from apps.calendars.providers import microsoft as graph_provider
from apps.calendars.providers.base import BusyChanges
from apps.calendars.providers.http import DEFAULT_TIMEOUT
from apps.calendars.providers.oauth import OAuthProvider
from apps.calendars.tasks import sync_account_task
from tests.benchmarks.conftest import (
    ONE_DAY,
    ONE_HOUR,
    SERIES_ZONE,
    SYNC_WINDOW_DAYS,
    WEEKDAYS,
    BenchReport,
    Row,
    Sample,
)
from tests.benchmarks.test_bench_caldav_sync import (
    Synced,
    alternate,
    blocks_of,
    busy_set,
    median_int,
)
from tests.calendars.ics import stamp
from tests.factories import CalendarAccountFactory, CalendarFactory
from tests.fakes import google as fake_google
from tests.fakes import microsoft as fake_microsoft

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

FIRST_SYNC_RUNS = 5
INCREMENTAL_RUNS = 15
# One unrecorded round first: imports, connection pools and the fakes' caches are paid
# for once, not by whichever run happens to come first.
WARMUP_RUNS = 1
CHANGES_PER_SYNC = 10  # 4 events moved, 2 series changed, 2 added, 2 deleted
DELETES_PER_SYNC = 2
SIZES = ((200, 20), (2000, 200))  # (events, of which weekly series)
WEEK = dt.timedelta(weeks=1)

# ---------------------------------------------------------------------------------
# The calendars: the CalDAV benchmark's, 90% single events over the sync window and
# 10% weekly series, written with each service's own means.
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Single:
    start: dt.datetime | dt.date  # a date for an all-day event
    end: dt.datetime | dt.date
    free: bool


@dataclass(frozen=True)
class Weekly:
    first: dt.datetime  # in SERIES_ZONE
    until: dt.datetime | None
    count: int | None
    skipped: tuple[dt.datetime, ...]  # EXDATEs, in SERIES_ZONE
    moved: dt.datetime | None  # the original start of the occurrence moved two hours on


def single(anchor: dt.datetime, singles: int, index: int, *, revision: int = 0) -> Single:
    """Single event `index`, as in the CalDAV seed: spread evenly over the window in
    working hours, every 20th all-day and every 25th free; `revision` moves it by five
    minutes a step."""
    start = anchor + dt.timedelta(
        days=index * SYNC_WINDOW_DAYS // singles,
        hours=8 + index % 9,
        minutes=30 * (index % 2) + 5 * revision,
    )
    free = index % 25 == 0
    if index % 20 == 0:
        return Single(start.date(), start.date() + ONE_DAY, free)
    return Single(start, start + dt.timedelta(minutes=30 + 30 * (index % 3)), free)


def weekly(anchor: dt.datetime, index: int) -> Weekly:
    """Weekly series `index`, as in the CalDAV seed: begun up to seven weeks ago in
    Europe/Berlin, open-ended or ending by UNTIL or COUNT; every third skips two weeks,
    every tenth has one occurrence moved."""
    first = dt.datetime.combine(
        anchor.date() - dt.timedelta(weeks=index % 8, days=index % 7),
        dt.time(9 + index % 8),
        tzinfo=ZoneInfo(SERIES_ZONE),
    )
    until = anchor + dt.timedelta(days=90) if index % 4 == 1 else None
    count = 20 if until is None and index % 5 == 2 else None
    skipped = tuple(first + dt.timedelta(weeks=w) for w in (9, 10)) if index % 3 == 0 else ()
    moved = first + dt.timedelta(weeks=11) if index % 10 == 0 else None
    return Weekly(first, until, count, skipped, moved)


@dataclass
class SeededCalendar:
    """A calendar of the fake holding `events` events, `series` of them weekly series,
    and the service's ids of them, to edit them later."""

    service: Service
    external_id: str
    events: int
    series: int
    anchor: dt.datetime  # midnight UTC of the day it was seeded
    single_ids: list[str]
    series_ids: list[str]

    @property
    def singles(self) -> int:
        return self.events - self.series

    def single(self, index: int, *, revision: int = 0) -> Single:
        return single(self.anchor, self.singles, index, revision=revision)

    def weekly(self, index: int) -> Weekly:
        return weekly(self.anchor, index)


@dataclass(frozen=True)
class Fetched:
    sample: Sample
    tokens: dict[str, str]  # the new sync token (Google) or deltaLink (Graph) of each
    changed: int  # items listed that are events (all of them, without a token)
    deleted: int  # items listed that are deletions


def window_start() -> dt.datetime:
    """Where `sync_window` starts the window (for an owner in no programme)."""
    return timezone.now() - ONE_DAY


def window_end() -> dt.datetime:
    """Where `sync_window` ends the window: the next midnight UTC after the window."""
    end = timezone.now() + dt.timedelta(days=SYNC_WINDOW_DAYS + 1)
    return end.replace(hour=0, minute=0, second=0, microsecond=0)


def counted_session() -> tuple[requests.Session, list[int]]:
    """A plain requests session and a one-item list counting its requests."""
    session = requests.Session()
    count = [0]

    def counted(response: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return response

    session.hooks["response"].append(counted)
    return session, count


class Service(abc.ABC):
    """One calendar service: its fake, how to seed and edit calendars in it, and the
    baseline listing."""

    key: ClassVar[str]  # CalendarAccount.provider
    label: ClassVar[str]
    provider: ClassVar[type[OAuthProvider]]
    identity: str

    @abc.abstractmethod
    def seed(self, events: int, series: int, anchor: dt.datetime) -> SeededCalendar: ...

    @abc.abstractmethod
    def token(self) -> str:
        """A fresh access token, as if the person had just consented."""

    @abc.abstractmethod
    def fetch(self, tokens: dict[str, str | None]) -> Fetched:
        """The baseline: list each calendar in `tokens` (everything without a token, the
        changes since it with one) to the end, with the provider's parameters."""

    @abc.abstractmethod
    def change_ten(self, calendar: SeededCalendar, *, revision: int) -> None:
        """Another app edits the calendar: moves 4 events, changes 2 series (each
        occurrence five minutes longer per revision), adds 2 events and deletes 2,
        leaving it the same size. Each `revision` (1, 2, ...) picks other events."""

    def changed_indexes(self, calendar: SeededCalendar, revision: int) -> dict[str, list[int]]:
        last = calendar.singles - 1 - DELETES_PER_SYNC * revision
        return {
            "moved": [4 * revision + k for k in range(4)],
            "series": [(2 * revision + k) % calendar.series for k in range(2)],
            "added": [2 * revision + k for k in range(2)],
            # From the end of the singles, far from the moved ones at the start.
            "deleted": [last - k for k in range(DELETES_PER_SYNC)],
        }


class GoogleService(Service):
    key = "google"
    label = "Google"
    provider = google_provider.GoogleProvider

    def __init__(self, fake: fake_google.FakeGoogle) -> None:
        self.fake = fake
        self.user = fake.add_user("bench@gmail.example")
        self.identity = self.user.email
        self.api = f"{fake.base_url}/calendar/v3"

    def seed(self, events: int, series: int, anchor: dt.datetime) -> SeededCalendar:
        calendar = self.fake.add_calendar(self.user, f"Bench {events}")
        target = SeededCalendar(self, calendar.id, events, series, anchor, [], [])
        for index in range(target.singles):
            event = target.single(index)
            free = {"transparency": "transparent"} if event.free else {}
            added = self.fake.add_event(calendar, start=event.start, end=event.end, **_google(free))
            target.single_ids.append(added.id)
        for index in range(series):
            target.series_ids.append(self._add_series(calendar, target.weekly(index)))
        return target

    def _add_series(self, calendar: fake_google.FakeCalendar, series: Weekly) -> str:
        rule = f"RRULE:FREQ=WEEKLY;BYDAY={WEEKDAYS[series.first.weekday()]}"
        if series.until is not None:
            rule += f";UNTIL={stamp(series.until)}"
        elif series.count is not None:
            rule += f";COUNT={series.count}"
        recurrence = [rule]
        if series.skipped:
            local = ",".join(f"{day:%Y%m%dT%H%M%S}" for day in series.skipped)
            recurrence.append(f"EXDATE;TZID={SERIES_ZONE}:{local}")
        master = self.fake.add_event(
            calendar,
            start=series.first,
            end=series.first + ONE_HOUR,
            **_google({"recurrence": recurrence}),
        )
        if series.moved is not None:
            self.fake.move_event(
                calendar,
                master.id,
                start=series.moved + 2 * ONE_HOUR,
                end=series.moved + 3 * ONE_HOUR,
                original_start=series.moved,
            )
        return master.id

    def token(self) -> str:
        return self.fake.issue_token(self.identity, set(google_provider.REQUIRED_SCOPES))

    def fetch(self, tokens: dict[str, str | None]) -> Fetched:
        """events.list as the provider calls it: singleEvents, the same fields mask and
        page size, `timeMin` without a token; every page to the nextSyncToken."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        start = time.perf_counter()
        session, count = counted_session()
        new_tokens: dict[str, str] = {}
        changed = deleted = 0
        for calendar_id, sync_token in tokens.items():
            params = {
                "singleEvents": "true",
                "maxResults": str(google_provider.PAGE_SIZE),
                "fields": google_provider.EVENT_FIELDS,
            }
            if sync_token:
                params["syncToken"] = sync_token
            else:
                params["timeMin"] = window_start().strftime("%Y-%m-%dT%H:%M:%SZ")
            url = f"{self.api}/calendars/{quote(calendar_id, safe='')}/events"
            page_token = ""
            while True:
                query = {**params, "pageToken": page_token} if page_token else params
                response = session.get(url, params=query, headers=headers, timeout=DEFAULT_TIMEOUT)
                response.raise_for_status()
                page = response.json()
                for item in page.get("items", []):
                    if item.get("status") == "cancelled":
                        deleted += 1
                    else:
                        changed += 1
                page_token = page.get("nextPageToken", "")
                if not page_token:
                    new_tokens[calendar_id] = page["nextSyncToken"]
                    break
        session.close()
        return Fetched(Sample(time.perf_counter() - start, count[0]), new_tokens, changed, deleted)

    def change_ten(self, calendar: SeededCalendar, *, revision: int) -> None:
        fake_calendar = self.user.calendars[calendar.external_id]
        changes = self.changed_indexes(calendar, revision)
        for index in changes["moved"]:
            event = calendar.single(index, revision=revision)
            self.fake.move_event(
                fake_calendar, calendar.single_ids[index], start=event.start, end=event.end
            )
        for index in changes["series"]:
            first = calendar.weekly(index).first
            longer = ONE_HOUR + dt.timedelta(minutes=5 * revision)
            self.fake.move_event(
                fake_calendar, calendar.series_ids[index], start=first, end=first + longer
            )
        for index in changes["added"]:
            event = calendar.single(index)
            self.fake.add_event(fake_calendar, start=event.start, end=event.end, **_google({}))
        for index in changes["deleted"]:
            self.fake.delete_event(fake_calendar, calendar.single_ids[index])


def _google(fields: dict[str, Any]) -> dict[str, Any]:
    # Title, description and location are there because real events carry them; the
    # fields mask keeps them from ever being sent to Convene.
    return {
        "summary": "Private: busy",
        "description": "Not for Convene's eyes",
        "location": "Room 101",
        **fields,
    }


class GraphService(Service):
    key = "microsoft"
    label = "Graph"
    provider = graph_provider.MicrosoftProvider

    def __init__(self, fake: fake_microsoft.FakeMicrosoft) -> None:
        self.fake = fake
        self.identity = fake.add_mailbox("bench@contoso.example").mail
        self.api = f"{fake.base_url}/v1.0"

    def seed(self, events: int, series: int, anchor: dt.datetime) -> SeededCalendar:
        calendar = self.fake.add_calendar(self.identity, f"Bench {events}")
        target = SeededCalendar(self, calendar.id, events, series, anchor, [], [])
        for index in range(target.singles):
            event = target.single(index)
            added = self._add_single(calendar.id, event)
            target.single_ids.append(added.id)
        for index in range(series):
            target.series_ids.append(self._add_series(calendar.id, target, target.weekly(index)))
        return target

    def _add_single(self, calendar_id: str, event: Single) -> fake_microsoft.FakeEvent:
        start, end = _utc_times(event)
        return self.fake.add_event(
            calendar_id,
            start=start,
            end=end,
            all_day=not isinstance(event.start, dt.datetime),
            show_as="free" if event.free else "busy",
            **_graph(),
        )

    def _add_series(self, calendar_id: str, target: SeededCalendar, series: Weekly) -> str:
        """The fake knows weekly series of a fixed number of occurrences, in UTC: an
        open-ended one runs past the end of the delta round's window."""
        first = series.first.astimezone(dt.UTC)
        last = target.anchor + dt.timedelta(days=SYNC_WINDOW_DAYS + 8)
        if series.until is not None:
            last = series.until
        occurrences = series.count or (last - first) // WEEK + 1
        master = self.fake.add_event(
            calendar_id, start=first, end=first + ONE_HOUR, weekly=occurrences, **_graph()
        )
        # Skipped and moved occurrences by their place in the series (whole weeks on).
        for skipped in series.skipped:
            self.fake.delete_event(master.id, occurrence=first + (skipped - series.first))
        if series.moved is not None:
            moved = first + (series.moved - series.first)
            self.fake.move_event(
                master.id,
                start=moved + 2 * ONE_HOUR,
                end=moved + 3 * ONE_HOUR,
                occurrence=moved,
            )
        return master.id

    def token(self) -> str:
        return self.fake.issue_token(self.identity)

    def fetch(self, tokens: dict[str, str | None]) -> Fetched:
        """calendarView/delta as the provider calls it: the window it asks for, UTC times
        and its page size (`Prefer`); every page to the deltaLink."""
        headers = {
            "Authorization": f"Bearer {self.token()}",
            "Prefer": f"{graph_provider.PREFER_UTC}, odata.maxpagesize={graph_provider.PAGE_SIZE}",
        }
        start = time.perf_counter()
        session, count = counted_session()
        new_links: dict[str, str] = {}
        changed = deleted = 0
        for calendar_id, delta_link in tokens.items():
            url = delta_link or (
                f"{self.api}/me/calendars/{quote(calendar_id, safe='')}/calendarView/delta"
            )
            params: dict[str, str] | None = None
            if not delta_link:
                params = {
                    "startDateTime": _graph_instant(window_start()),
                    "endDateTime": _graph_instant(window_end() + graph_provider.ROUND_SLACK),
                }
            while True:
                response = session.get(url, params=params, headers=headers, timeout=DEFAULT_TIMEOUT)
                response.raise_for_status()
                page = response.json()
                for item in page.get("value", []):
                    if "@removed" in item:
                        deleted += 1
                    else:
                        changed += 1
                url, params = page.get("@odata.nextLink", ""), None
                if not url:
                    new_links[calendar_id] = page["@odata.deltaLink"]
                    break
        session.close()
        return Fetched(Sample(time.perf_counter() - start, count[0]), new_links, changed, deleted)

    def change_ten(self, calendar: SeededCalendar, *, revision: int) -> None:
        changes = self.changed_indexes(calendar, revision)
        for index in changes["moved"]:
            start, end = _utc_times(calendar.single(index, revision=revision))
            self.fake.move_event(calendar.single_ids[index], start=start, end=end)
        for index in changes["series"]:
            first = calendar.weekly(index).first
            longer = ONE_HOUR + dt.timedelta(minutes=5 * revision)
            self.fake.update_event(calendar.series_ids[index], end=first + longer)
        for index in changes["added"]:
            self._add_single(calendar.external_id, calendar.single(index))
        for index in changes["deleted"]:
            assert self.fake.delete_event(calendar.single_ids[index])


def _graph() -> dict[str, Any]:
    # Delta takes no $select: all of this arrives, and the provider drops it as it reads.
    return {
        "subject": "Private: busy",
        "body": "Not for Convene's eyes",
        "location": "Room 101",
        "attendees": ("someone@fabrikam.example",),
    }


def _utc_times(event: Single) -> tuple[dt.datetime, dt.datetime]:
    """An event's start and end as the fake keeps them: all-day ones at midnight UTC."""

    def utc(value: dt.datetime | dt.date) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)

    return utc(event.start), utc(event.end)


def _graph_instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------
# The fakes, served for the length of a test, and the calendars in them.
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["google", "microsoft"])
def service_key(request: pytest.FixtureRequest) -> str:
    # Module scope: pytest runs every scenario of one service before the other's, so
    # the table lists them together.
    return str(request.param)


@pytest.fixture
def service(service_key: str, transactional_db: None, settings: Any) -> Iterator[Service]:
    """The service's fake on a loopback port, with the real services' page sizes, and
    Convene's settings pointing at it, as `tests/oauth_fakes.py` does."""
    settings.PUBLIC_BASE_URL = ""  # push off: Convene polls
    if service_key == "google":
        google = fake_google.FakeGoogle(page_size=google_provider.PAGE_SIZE)
        for served in fake_google.serve(google):
            settings.GOOGLE_API_URL = settings.GOOGLE_OAUTH_URL = served.base_url
            settings.GOOGLE_ACCOUNTS_URL = served.base_url
            yield GoogleService(google)
            assert google.refreshes == 0  # every sync used the token it was given
    else:
        graph = fake_microsoft.FakeMicrosoft()
        # Graph answers what the provider asks for (`Prefer: odata.maxpagesize`).
        assert graph.max_page_size >= graph_provider.PAGE_SIZE
        for served_graph in fake_microsoft.serve(graph):
            settings.MICROSOFT_GRAPH_URL = settings.MICROSOFT_LOGIN_URL = served_graph.base_url
            yield GraphService(graph)


@pytest.fixture
def calendars(service: Service) -> dict[int, SeededCalendar]:
    """Two calendars of the service, keyed by size: 200 events (20 of them series) and
    2,000 (200 series). The scenarios compare the two."""
    anchor = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {events: service.seed(events, series, anchor) for events, series in SIZES}


# ---------------------------------------------------------------------------------
# Measuring: Convene as a worker runs it, and the list endpoint alone.
# ---------------------------------------------------------------------------------


class Probe:
    """What one Convene sync costs, measured from outside: HTTP requests counted where
    they leave (requests' transport adapter, under the provider's own counter, which is
    checked against it) and the time spent inside the provider's `sync_busy` (fetching
    and parsing), the rest being the database and the task around it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, provider: type[OAuthProvider]) -> None:
        self.requests = 0
        self.provider_seconds = 0.0
        send = HTTPAdapter.send
        sync_busy = provider.sync_busy

        def counting_send(adapter: HTTPAdapter, *args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return send(adapter, *args, **kwargs)

        def timed_sync_busy(client: OAuthProvider, *args: Any, **kwargs: Any) -> BusyChanges:
            start = time.perf_counter()
            try:
                return sync_busy(client, *args, **kwargs)
            finally:
                self.provider_seconds += time.perf_counter() - start

        monkeypatch.setattr(HTTPAdapter, "send", counting_send)
        monkeypatch.setattr(provider, "sync_busy", timed_sync_busy)

    def reset(self) -> None:
        self.requests = 0
        self.provider_seconds = 0.0


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch, service: Service) -> Probe:
    return Probe(monkeypatch, service.provider)


def connect(*calendars: SeededCalendar) -> CalendarAccount:
    """An account of the service holding `calendars`, with a fresh access token that
    expires in a day: no refresh happens during the benchmark."""
    service = calendars[0].service
    account = CalendarAccountFactory(
        provider=service.key,
        identity=service.identity,
        server_url="",
        credentials={
            "access_token": service.token(),
            "refresh_token": "unused",
            "expires_at": (timezone.now() + ONE_DAY).isoformat(),
        },
    )
    for calendar in calendars:
        CalendarFactory(account=account, external_id=calendar.external_id)
    return account


def convene_sync(account: CalendarAccount, probe: Probe) -> Synced:
    """One sync of the account as the worker runs it, from loading the account by id
    to the committed busy blocks."""
    before = SyncRun.objects.filter(account=account).count()
    probe.reset()
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        sync_account_task(account_id=account.pk)
        seconds = time.perf_counter() - start
    runs = list(SyncRun.objects.filter(account=account).order_by("started_at", "pk")[before:])
    assert len(runs) == account.calendars.count()
    for run in runs:
        assert run.outcome == SyncRun.Outcome.OK, run.error
        assert run.skipped == 0, run.error  # the seed is valid throughout
    assert sum(run.requests for run in runs) == probe.requests
    sql = [query["sql"] for query in queries.captured_queries]
    sample = Sample(seconds, probe.requests, len(sql), provider_seconds=probe.provider_seconds)
    return Synced(sample, runs, sql)


def row(
    scenario: str, calendars: list[SeededCalendar], convene: list[Synced], baseline: list[Sample]
) -> Row:
    written = [blocks_of(synced.runs) for synced in convene]
    return Row(
        scenario=scenario,
        events=sum(c.events for c in calendars),
        calendars=len(calendars),
        convene=[synced.sample for synced in convene],
        baseline=baseline,
        blocks_written=median_int([w for w, _ in written]),
        blocks_deleted=median_int([d for _, d in written]),
        queries_sql=convene[-1].sql,
        service=calendars[0].service.label,
    )


# ---------------------------------------------------------------------------------
# The scenarios. Each measures the small calendar, then the large one, and compares.
# ---------------------------------------------------------------------------------


def test_first_sync_of_a_calendar(
    calendars: dict[int, SeededCalendar], probe: Probe, bench_report: BenchReport
) -> None:
    for calendar in calendars.values():
        bench_report.add(measure_first_sync(calendar, probe))


def measure_first_sync(calendar: SeededCalendar, probe: Probe) -> Row:
    convene: list[Synced] = []
    baseline: list[Sample] = []
    listed: set[int] = set()

    def sync_new_calendar() -> None:
        account = connect(calendar)  # a new Calendar row: no sync state yet
        synced = convene_sync(account, probe)
        [run] = synced.runs
        assert run.full
        convene.append(synced)
        # Unmeasured: keeps the table at one calendar's blocks, as it would be.
        account.delete()

    def fetch_everything() -> None:
        fetched = calendar.service.fetch({calendar.external_id: None})
        assert fetched.deleted == 0
        listed.add(fetched.changed)
        baseline.append(fetched.sample)

    alternate(WARMUP_RUNS + FIRST_SYNC_RUNS, sync_new_calendar, fetch_everything)
    measured = convene[WARMUP_RUNS:]
    # Every first sync of the same calendar lists and writes the same.
    assert len(listed) == 1, listed
    assert len({blocks_of(synced.runs) for synced in measured}) == 1
    # Convene asks for exactly what the baseline asks for.
    assert {s.sample.requests for s in measured} == {s.requests for s in baseline}
    return row("first sync", [calendar], measured, baseline[WARMUP_RUNS:])


def test_incremental_sync_without_changes_costs_one_request_per_calendar(
    calendars: dict[int, SeededCalendar], probe: Probe, bench_report: BenchReport
) -> None:
    queries: dict[int, int] = {}
    for calendar in calendars.values():
        result = measure_no_changes([calendar], probe)
        queries[calendar.events] = result.convene[0].queries
        bench_report.add(result)
    bench_report.add(measure_no_changes(list(calendars.values()), probe))
    assert len(set(queries.values())) == 1, f"queries grow with the calendar: {queries}"


def measure_no_changes(calendars: list[SeededCalendar], probe: Probe) -> Row:
    """Incremental syncs of one account holding `calendars`, none of which changed."""
    account = connect(*calendars)
    convene_sync(account, probe)  # the first sync, unmeasured: it stores the token
    service = calendars[0].service
    tokens = service.fetch({c.external_id: None for c in calendars}).tokens
    convene: list[Synced] = []
    baseline: list[Sample] = []

    def sync() -> None:
        convene.append(convene_sync(account, probe))

    def ask_for_changes() -> None:
        fetched = service.fetch(dict(tokens))
        assert fetched.changed == fetched.deleted == 0
        baseline.append(fetched.sample)

    alternate(WARMUP_RUNS + INCREMENTAL_RUNS, sync, ask_for_changes)
    measured = convene[WARMUP_RUNS:]
    for synced in measured:
        # Google: one events.list with the sync token; Graph: one GET of the deltaLink.
        assert synced.sample.requests == len(calendars)
        assert not any(run.full for run in synced.runs)
        assert blocks_of(synced.runs) == (0, 0)
    counts = {synced.sample.queries for synced in measured}
    assert len(counts) == 1, f"queries differ between identical syncs: {counts}"
    name = "incremental, no changes"
    if len(calendars) > 1:
        name += f", {len(calendars)} calendars"
    return row(name, calendars, measured, baseline[WARMUP_RUNS:])


def test_incremental_sync_of_ten_changes(
    calendars: dict[int, SeededCalendar], probe: Probe, bench_report: BenchReport
) -> None:
    queries: dict[int, int] = {}
    requests: dict[int, int] = {}
    for calendar in calendars.values():
        result = measure_ten_changes(calendar, probe)
        queries[calendar.events] = result.convene[0].queries
        requests[calendar.events] = result.convene[0].requests
        bench_report.add(result)
    assert len(set(queries.values())) == 1, f"queries grow with the calendar: {queries}"
    assert len(set(requests.values())) == 1, f"requests grow with the calendar: {requests}"


def measure_ten_changes(calendar: SeededCalendar, probe: Probe) -> Row:
    """Incremental syncs after another app made 10 changes each time."""
    service = calendar.service
    account = connect(calendar)
    convene_sync(account, probe)
    tokens = service.fetch({calendar.external_id: None}).tokens
    convene: list[Synced] = []
    baseline: list[Sample] = []

    def edit(round_index: int) -> None:
        service.change_ten(calendar, revision=round_index + 1)

    def sync() -> None:
        convene.append(convene_sync(account, probe))

    def fetch_changes() -> None:
        fetched = service.fetch(dict(tokens))
        # A changed series lists each of its occurrences (Graph also lists those outside
        # the window as removed), so these are lower bounds.
        assert fetched.changed >= CHANGES_PER_SYNC - DELETES_PER_SYNC
        assert fetched.deleted >= DELETES_PER_SYNC
        tokens.update(fetched.tokens)
        baseline.append(fetched.sample)

    alternate(WARMUP_RUNS + INCREMENTAL_RUNS, sync, fetch_changes, before=edit)
    measured = convene[WARMUP_RUNS:]
    assert not any(run.full for synced in measured for run in synced.runs)
    counts = {synced.sample.queries for synced in measured}
    assert len(counts) == 1, f"queries differ between syncs of equal changes: {counts}"
    # Fast because right: after all those increments the blocks are exactly those a
    # first sync of the calendar as it now is writes.
    fresh = connect(calendar)
    convene_sync(fresh, probe)
    assert busy_set(account) == busy_set(fresh)
    return row("incremental, 10 changes", [calendar], measured, baseline[WARMUP_RUNS:])
