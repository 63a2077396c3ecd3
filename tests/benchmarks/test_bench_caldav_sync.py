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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.calendars.models import BusyBlock, CalendarAccount, OutboundAllowRule, SyncRun
from apps.calendars.providers.base import BusyChanges
from apps.calendars.providers.caldav import MULTIGET_BATCH, CalDAVProvider
from apps.calendars.providers.http import GuardedNiquestsAdapter
from apps.calendars.tasks import sync_account_task
from tests.benchmarks.conftest import (
    HEADERS,
    BenchReport,
    Row,
    Sample,
    SeededCalendar,
    editor_client,
)
from tests.caldav_servers import CalDAVServer
from tests.factories import CalendarAccountFactory, CalendarFactory

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

FIRST_SYNC_RUNS = 5
INCREMENTAL_RUNS = 15
# One unrecorded round first: imports, connection pools and Radicale's item cache are
# paid for once, not by whichever run happens to come first.
WARMUP_RUNS = 1
CHANGES_PER_SYNC = 10  # 4 events moved, 2 series changed, 2 added, 2 deleted
DELETES_PER_SYNC = 2

# ---------------------------------------------------------------------------------
# Measuring: Convene as a worker runs it, and the caldav library alone.
# ---------------------------------------------------------------------------------


class Probe:
    """What one Convene sync costs, measured from outside: HTTP requests counted where
    they leave (the guarded adapter, not the provider's own counter, which is checked
    against it) and the time spent inside the provider (fetching and parsing), the
    rest being the database and the task around it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests = 0
        self.provider_seconds = 0.0
        send = GuardedNiquestsAdapter.send
        sync_busy = CalDAVProvider.sync_busy

        def counting_send(adapter: GuardedNiquestsAdapter, *args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return send(adapter, *args, **kwargs)

        def timed_sync_busy(provider: CalDAVProvider, *args: Any, **kwargs: Any) -> BusyChanges:
            start = time.perf_counter()
            try:
                return sync_busy(provider, *args, **kwargs)
            finally:
                self.provider_seconds += time.perf_counter() - start

        monkeypatch.setattr(GuardedNiquestsAdapter, "send", counting_send)
        monkeypatch.setattr(CalDAVProvider, "sync_busy", timed_sync_busy)

    def reset(self) -> None:
        self.requests = 0
        self.provider_seconds = 0.0


@dataclass(frozen=True)
class Synced:
    sample: Sample
    runs: list[SyncRun]
    sql: list[str]


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Probe:
    return Probe(monkeypatch)


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
        assert run.skipped == 0, run.error  # the seed is valid iCalendar throughout
    assert sum(run.requests for run in runs) == probe.requests
    sql = [query["sql"] for query in queries.captured_queries]
    sample = Sample(seconds, probe.requests, len(sql), provider_seconds=probe.provider_seconds)
    return Synced(sample, runs, sql)


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


@dataclass(frozen=True)
class Fetched:
    sample: Sample
    tokens: dict[str, str]  # the new sync token of each calendar
    changed: int  # resources fetched (all of them, without a token)
    deleted: int


def baseline_fetch(server: CalDAVServer, tokens: dict[str, str | None]) -> Fetched:
    """The caldav library alone fetching what a sync must fetch from each calendar URL
    in `tokens`, through one client as Convene uses one per account: the
    sync-collection listing (everything, or the changes since the token) and a multiget
    of every changed resource, in Convene's batch size. No parsing, no database."""
    start = time.perf_counter()
    client, count = dav_client(server)
    new_tokens: dict[str, str] = {}
    changed = deleted = 0
    for url, token in tokens.items():
        dav = DAVCalendar(client=client, url=url)
        listing = dav.get_objects_by_sync_token(sync_token=token, load_objects=False)
        # Radicale lists long-deleted resources even without a token (as 404s).
        gone = {str(href) for href in listing.deleted_urls}
        hrefs = [obj.url for obj in listing if str(obj.url) not in gone]
        fetched = 0
        for offset in range(0, len(hrefs), MULTIGET_BATCH):
            fetched += len(dav.multiget(hrefs[offset : offset + MULTIGET_BATCH]))
        assert fetched == len(hrefs)
        new_tokens[url] = str(listing.sync_token)
        changed += len(hrefs)
        deleted += len(gone)
    client.close()
    sample = Sample(time.perf_counter() - start, count[0])
    return Fetched(sample, new_tokens, changed, deleted)


def alternate(
    rounds: int,
    first: Callable[[], None],
    second: Callable[[], None],
    *,
    before: Callable[[int], None] | None = None,
) -> None:
    """Run both measurements `rounds` times, swapping which goes first each round, so
    neither always meets a server just warmed (or just disturbed) by the other.
    `before(round)` prepares each round, unmeasured."""
    for index in range(rounds):
        if before is not None:
            before(index)
        for measure in (first, second) if index % 2 == 0 else (second, first):
            measure()


def blocks_of(runs: list[SyncRun]) -> tuple[int, int]:
    return sum(r.upserted for r in runs), sum(r.deleted for r in runs)


def median_int(values: list[int]) -> int:
    return int(statistics.median(values))


def busy_set(account: CalendarAccount) -> set[tuple[str, dt.datetime, dt.datetime, dt.datetime]]:
    return set(
        BusyBlock.objects.filter(calendar__account=account).values_list(
            "external_event_id", "instance_start", "start", "end"
        )
    )


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
    )


# ---------------------------------------------------------------------------------
# The scenarios. Each measures the small calendar, then the large one, and compares.
# ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback")
def test_first_sync_of_a_calendar(
    calendars: dict[int, SeededCalendar], probe: Probe, bench_report: BenchReport
) -> None:
    for calendar in calendars.values():
        bench_report.add(measure_first_sync(calendar, probe))


def measure_first_sync(calendar: SeededCalendar, probe: Probe) -> Row:
    convene: list[Synced] = []
    baseline: list[Sample] = []

    def sync_new_calendar() -> None:
        account = connect(calendar)  # a new Calendar row: no sync state yet
        synced = convene_sync(account, probe)
        [run] = synced.runs
        assert run.full
        assert BusyBlock.objects.filter(calendar__account=account).count() == run.upserted
        convene.append(synced)
        # Unmeasured: keeps the table at one calendar's blocks, as it would be.
        account.delete()

    def fetch_everything() -> None:
        fetched = baseline_fetch(calendar.server, {calendar.url: None})
        assert fetched.changed == calendar.events
        baseline.append(fetched.sample)

    alternate(WARMUP_RUNS + FIRST_SYNC_RUNS, sync_new_calendar, fetch_everything)
    measured = convene[WARMUP_RUNS:]
    # Every first sync of the same calendar writes the same blocks.
    assert len({blocks_of(synced.runs) for synced in measured}) == 1
    return row("first sync", [calendar], measured, baseline[WARMUP_RUNS:])


@pytest.mark.usefixtures("loopback")
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
    server = calendars[0].server
    tokens = baseline_fetch(server, {c.url: None for c in calendars}).tokens
    convene: list[Synced] = []
    baseline: list[Sample] = []

    def sync() -> None:
        convene.append(convene_sync(account, probe))

    def ask_for_changes() -> None:
        fetched = baseline_fetch(server, dict(tokens))
        assert fetched.changed == fetched.deleted == 0
        baseline.append(fetched.sample)

    alternate(WARMUP_RUNS + INCREMENTAL_RUNS, sync, ask_for_changes)
    measured = convene[WARMUP_RUNS:]
    for synced in measured:
        assert synced.sample.requests == len(calendars)  # one sync-collection REPORT each
        assert not any(run.full for run in synced.runs)
        assert blocks_of(synced.runs) == (0, 0)
    counts = {synced.sample.queries for synced in measured}
    assert len(counts) == 1, f"queries differ between identical syncs: {counts}"
    name = "incremental, no changes"
    if len(calendars) > 1:
        name += f", {len(calendars)} calendars"
    return row(name, calendars, measured, baseline[WARMUP_RUNS:])


@pytest.mark.usefixtures("loopback")
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
    """Incremental syncs after another client made 10 changes each time."""
    account = connect(calendar)
    convene_sync(account, probe)
    tokens = baseline_fetch(calendar.server, {calendar.url: None}).tokens
    editor = editor_client(calendar.server)
    convene: list[Synced] = []
    baseline: list[Sample] = []

    def edit(round_index: int) -> None:
        change_ten(calendar, editor, revision=round_index + 1)

    def sync() -> None:
        convene.append(convene_sync(account, probe))

    def fetch_changes() -> None:
        fetched = baseline_fetch(calendar.server, dict(tokens))
        assert (fetched.changed, fetched.deleted) == (
            CHANGES_PER_SYNC - DELETES_PER_SYNC,
            DELETES_PER_SYNC,
        )
        tokens.update(fetched.tokens)
        baseline.append(fetched.sample)

    try:
        alternate(WARMUP_RUNS + INCREMENTAL_RUNS, sync, fetch_changes, before=edit)
    finally:
        editor.close()
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


def change_ten(calendar: SeededCalendar, client: DAVClient, *, revision: int) -> None:
    """Another client edits the calendar: moves 4 events, changes 2 series, adds 2
    events and deletes 2, leaving it the same size. Each `revision` (1, 2, ...) picks
    other events, and edits them differently from the revision before."""
    puts: dict[str, str] = {}
    for k in range(4):
        index = 4 * revision + k
        puts[calendar.href(f"single-{index}")] = calendar.single(index, revision=revision)
    for k in range(2):
        index = (2 * revision + k) % calendar.series
        puts[calendar.href(f"series-{index}")] = calendar.weekly(index, revision=revision)
        uid = f"added-{revision}-{k}"
        puts[calendar.href(uid)] = calendar.single(2 * revision + k, uid=uid)
    for href, body in puts.items():
        assert client.put(href, body, HEADERS).status in (201, 204)
    # From the end of the singles, far from the moved ones at the start.
    last = calendar.singles - 1 - DELETES_PER_SYNC * revision
    gone = [calendar.href(f"single-{last - k}") for k in range(DELETES_PER_SYNC)]
    for href in gone:
        assert client.delete(href).status in (200, 204)
    assert len(puts) + len(gone) == CHANGES_PER_SYNC
