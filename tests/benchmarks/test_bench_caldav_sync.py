"""`make bench`: syncing a CalDAV calendar of 2,000 events from a real Radicale.

Each scenario runs Convene's sync as a worker does (`sync_account_task`: load the
account, ask the server, write busy blocks to PostgreSQL) and, in the same run and
against the same calendar, a baseline: the caldav library alone fetching the same
data, without parsing or database. The ratio says what Convene adds to the unavoidable
cost of talking to the server. Absolute times are printed, never asserted; what is
asserted is what must not regress: one HTTP request per calendar when nothing changed,
and query counts that do not grow with the calendar.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.calendars.models import BusyBlock, CalendarAccount, OutboundAllowRule, SyncRun
from apps.calendars.providers.caldav import MULTIGET_BATCH
from apps.calendars.providers.http import GuardedNiquestsAdapter
from apps.calendars.tasks import sync_account_task
from tests.benchmarks.conftest import BenchReport, Row, Sample
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.calendars.ics import stamp
from tests.factories import CalendarAccountFactory, CalendarFactory

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

FIRST_SYNC_RUNS = 5
INCREMENTAL_RUNS = 15
# One unrecorded round first: imports, connection pools and Radicale's item cache are
# paid for once, not by whichever run happens to come first.
WARMUP_RUNS = 1
CHANGES_PER_SYNC = 10  # 4 events moved, 2 series changed, 2 added, 2 deleted
SYNC_WINDOW_DAYS = 180  # the sync engine's default: the owner is in no programme
HEADERS = {"Content-Type": "text/calendar; charset=utf-8"}

# Series are written the way desktop clients write them: local times with a VTIMEZONE.
SERIES_ZONE = "Europe/Berlin"
VTIMEZONE = "".join(
    f"{line}\r\n"
    for line in [
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
    ]
)
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
ONE_HOUR = dt.timedelta(hours=1)
ONE_DAY = dt.timedelta(days=1)


# ---------------------------------------------------------------------------------
# The calendar: 90% single events over the sync window, 10% weekly series.
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededCalendar:
    """A Radicale calendar filled with `events` resources, `series` of them weekly
    series. Hrefs are `<uid>.ics`: Radicale names uploaded items after their UID."""

    server: CalDAVServer
    url: str
    events: int
    series: int
    anchor: dt.datetime  # midnight UTC of the day it was seeded; every time hangs off it

    @property
    def singles(self) -> int:
        return self.events - self.series

    def href(self, uid: str) -> str:
        return f"{self.url}{uid}.ics"

    def single(self, index: int, *, revision: int = 0, uid: str = "") -> str:
        return _resource(self.single_component(index, revision=revision, uid=uid))

    def weekly(self, index: int, *, revision: int = 0) -> str:
        return _resource(*self.weekly_components(index, revision=revision), zone=True)

    def collection(self) -> str:
        """Every resource in one VCALENDAR, for one PUT of the whole collection."""
        components = [self.single_component(i) for i in range(self.singles)]
        for i in range(self.series):
            components.extend(self.weekly_components(i))
        return _resource(*components, zone=True)

    def single_component(self, index: int, *, revision: int = 0, uid: str = "") -> str:
        """Single event `index`, spread evenly over the window in working hours; every
        20th is all-day and every 25th free (transparent), as in real calendars.
        `revision` moves it by five minutes a step."""
        start = self.anchor + dt.timedelta(
            days=index * SYNC_WINDOW_DAYS // self.singles,
            hours=8 + index % 9,
            minutes=30 * (index % 2) + 5 * revision,
        )
        if index % 20 == 0:
            day = start.date()
            lines = [f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{day + ONE_DAY:%Y%m%d}"]
        else:
            end = start + dt.timedelta(minutes=30 + 30 * (index % 3))
            lines = [f"DTSTART:{stamp(start)}", f"DTEND:{stamp(end)}"]
        if index % 25 == 0:
            lines.append("TRANSP:TRANSPARENT")
        return _component(uid or f"single-{index}", lines)

    def weekly_components(self, index: int, *, revision: int = 0) -> list[str]:
        """Weekly series `index`, begun up to seven weeks ago: open-ended, or ending by
        UNTIL or COUNT; every third skips two weeks (EXDATE), every tenth has one
        occurrence moved (an overriding VEVENT with RECURRENCE-ID)."""
        first = dt.datetime.combine(
            self.anchor.date() - dt.timedelta(weeks=index % 8, days=index % 7),
            dt.time(9 + index % 8, 5 * revision % 60),
            tzinfo=ZoneInfo(SERIES_ZONE),
        )
        rule = f"RRULE:FREQ=WEEKLY;BYDAY={WEEKDAYS[first.weekday()]}"
        if index % 4 == 1:
            rule += f";UNTIL={stamp(self.anchor + dt.timedelta(days=90))}"
        elif index % 5 == 2:
            rule += ";COUNT=20"
        lines = [_zoned("DTSTART", first), _zoned("DTEND", first + ONE_HOUR), rule]
        if index % 3 == 0:
            skipped = ",".join(_local(first + dt.timedelta(weeks=w)) for w in (9, 10))
            lines.append(f"EXDATE;TZID={SERIES_ZONE}:{skipped}")
        uid = f"series-{index}"
        components = [_component(uid, lines)]
        if index % 10 == 0:
            moved = first + dt.timedelta(weeks=11)
            override = [
                _zoned("RECURRENCE-ID", moved),
                _zoned("DTSTART", moved + 2 * ONE_HOUR),
                _zoned("DTEND", moved + 3 * ONE_HOUR),
            ]
            components.append(_component(uid, override))
        return components


def _local(value: dt.datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _zoned(name: str, value: dt.datetime) -> str:
    return f"{name};TZID={SERIES_ZONE}:{_local(value)}"


def _component(uid: str, lines: list[str]) -> str:
    # Title, description and location are there because real events carry them, and
    # parsing them is part of the cost; Convene must never store them.
    return "".join(
        f"{line}\r\n"
        for line in [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            *lines,
            "SUMMARY:Private: busy",
            "DESCRIPTION:Not for Convene's eyes",
            "LOCATION:Room 101",
            "END:VEVENT",
        ]
    )


def _resource(*components: str, zone: bool = False) -> str:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bench//Seed//EN\r\n"
    return head + (VTIMEZONE if zone else "") + "".join(components) + "END:VCALENDAR\r\n"


# ---------------------------------------------------------------------------------
# Radicale, seeded once for the module: 200 and 2,000 events.
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calendars(radicale_server: CalDAVServer) -> dict[int, SeededCalendar]:
    anchor = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seeded: dict[int, SeededCalendar] = {}
    for events, series in ((200, 20), (2000, 200)):
        client, calendar = make_calendar(radicale_server)
        target = SeededCalendar(radicale_server, str(calendar.url), events, series, anchor)
        # One PUT of the whole collection (Radicale splits it into one item per UID):
        # a PUT per event costs Radicale a scan of the collection each, minutes in all.
        response = client.put(target.url, target.collection(), HEADERS)
        assert response.status in (200, 201), response.status
        # The listing checks the seed and builds Radicale's item cache, which the first
        # request after an upload would otherwise pay for inside a measurement.
        listed = {str(obj.url) for obj in calendar.get_objects_by_sync_token(load_objects=False)}
        uids = [f"single-{i}" for i in range(target.singles)]
        uids += [f"series-{i}" for i in range(series)]
        assert listed == {target.href(uid) for uid in uids}
        client.close()
        seeded[events] = target
    return seeded


# ---------------------------------------------------------------------------------
# Measuring: Convene as a worker runs it, and the caldav library alone.
# ---------------------------------------------------------------------------------


class WireCounter:
    """HTTP requests Convene sends, counted where they leave (the guarded adapter),
    not by the provider's own counter: SyncRun.requests is checked against it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        send = GuardedNiquestsAdapter.send

        def counting_send(adapter: GuardedNiquestsAdapter, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return send(adapter, *args, **kwargs)

        monkeypatch.setattr(GuardedNiquestsAdapter, "send", counting_send)


@dataclass(frozen=True)
class Synced:
    sample: Sample
    runs: list[SyncRun]
    sql: list[str]


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> WireCounter:
    return WireCounter(monkeypatch)


@pytest.fixture
def loopback(transactional_db: None) -> None:
    # Radicale listens on 127.0.0.1, which the outbound guard refuses unless allowed,
    # as an admin would allow a campus server.
    OutboundAllowRule.objects.create(value="127.0.0.0/8", note="Radicale for make bench")


def connect(*calendars: SeededCalendar) -> CalendarAccount:
    server = calendars[0].server
    account = CalendarAccountFactory(
        server_url=server.url,
        credentials={"username": server.username, "password": server.password},
    )
    for calendar in calendars:
        CalendarFactory(account=account, external_id=calendar.url)
    return account


def convene_sync(account: CalendarAccount, wire: WireCounter) -> Synced:
    """One sync of the account as the worker runs it, from loading the account by id
    to the committed busy blocks."""
    before = SyncRun.objects.filter(account=account).count()
    wire.count = 0
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        sync_account_task(account_id=account.pk)
        seconds = time.perf_counter() - start
    runs = list(SyncRun.objects.filter(account=account).order_by("started_at", "pk")[before:])
    assert len(runs) == account.calendars.count()
    for run in runs:
        assert run.outcome == SyncRun.Outcome.OK, run.error
        assert run.skipped == 0, run.error  # the seed is valid iCalendar throughout
    assert sum(run.requests for run in runs) == wire.count
    sql = [query["sql"] for query in queries.captured_queries]
    return Synced(Sample(seconds, wire.count, len(sql)), runs, sql)


def dav_client(server: CalDAVServer) -> tuple[DAVClient, list[int]]:
    """A plain caldav client set up as Convene's is (Basic auth up front, no RFC 6764
    discovery), and a one-item list counting its requests."""
    client = DAVClient(
        url=server.url,
        username=server.username,
        password=server.password,
        auth_type="basic",
        enable_rfc6764=False,
    )
    count = [0]

    def counted(response: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return response

    client.session.hooks["response"].append(counted)
    return client, count


def baseline_fetch(calendar: SeededCalendar, token: str | None) -> tuple[Sample, str, int]:
    """The caldav library alone fetching what a sync must fetch: the sync-collection
    listing (everything, or the changes since `token`) and a multiget of every changed
    resource, in Convene's batch size. No parsing, no database. Returns the sample, the
    new token and how many resources changed or went."""
    start = time.perf_counter()
    client, count = dav_client(calendar.server)
    dav = DAVCalendar(client=client, url=calendar.url)
    listing = dav.get_objects_by_sync_token(sync_token=token, load_objects=False)
    deleted = {str(url) for url in listing.deleted_urls}
    urls = [obj.url for obj in listing if str(obj.url) not in deleted]
    fetched = 0
    for offset in range(0, len(urls), MULTIGET_BATCH):
        fetched += len(dav.multiget(urls[offset : offset + MULTIGET_BATCH]))
    client.close()
    seconds = time.perf_counter() - start
    assert fetched == len(urls)
    return Sample(seconds, count[0]), str(listing.sync_token), len(urls) + len(deleted)


def alternate(rounds: int, first: Callable[[], None], second: Callable[[], None]) -> None:
    """Run both measurements `rounds` times, swapping which goes first each round, so
    neither always meets a server just warmed (or just disturbed) by the other."""
    for index in range(rounds):
        for measure in (first, second) if index % 2 == 0 else (second, first):
            measure()


def blocks_of(runs: list[SyncRun]) -> tuple[int, int]:
    return sum(r.upserted for r in runs), sum(r.deleted for r in runs)


def median_int(values: list[int]) -> int:
    return int(statistics.median(values))
