"""Benchmark plumbing: the seeded Radicale calendars, samples, the summary table
printed at the end of the run, and the machine-readable record in
var/bench/caldav_sync.json.

Every number is measured in the same run as its baseline, on the same machine and the
same server, so a ratio compares like with like even where absolute times do not
travel between machines. docs/benchmarks.md explains how to read the table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from caldav.davclient import DAVClient

from apps.calendars.sync import DEFAULT_SYNC_WINDOW_DAYS
from tests.caldav_servers import CalDAVServer
from tests.calendars.ics import stamp

RESULT_FILE = Path("var") / "bench" / "caldav_sync.json"
_REPORT_KEY = pytest.StashKey["BenchReport"]()
# Seeding and editing are not measured, only waited for: on a loaded machine Radicale
# takes longer than the test suite's 10 s to split a 2,000-event upload.
EDITOR_TIMEOUT_SECONDS = 300
# The owner of the benchmark accounts is in no programme: the default window applies.
SYNC_WINDOW_DAYS = DEFAULT_SYNC_WINDOW_DAYS
HEADERS = {"Content-Type": "text/calendar; charset=utf-8"}


# ---------------------------------------------------------------------------------
# The calendars: 90% single events over the sync window, 10% weekly series.
# ---------------------------------------------------------------------------------

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
# Radicale, seeded once per run: 200 and 2,000 events.
# ---------------------------------------------------------------------------------


def editor_client(server: CalDAVServer) -> DAVClient:
    """A client for another calendar app editing the server, patient with it."""
    return DAVClient(
        url=server.url,
        username=server.username,
        password=server.password,
        timeout=EDITOR_TIMEOUT_SECONDS,
    )


@pytest.fixture(scope="session")
def calendars(radicale_server: CalDAVServer) -> dict[int, SeededCalendar]:
    """Two calendars on the session's Radicale, keyed by size: 200 events (20 of them
    series) and 2,000 (200 series). The scenarios compare the two."""
    anchor = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seeded: dict[int, SeededCalendar] = {}
    for events, series in ((200, 20), (2000, 200)):
        client = editor_client(radicale_server)
        name = f"bench-{events}-{uuid.uuid4().hex[:8]}"
        calendar = client.get_principal().make_calendar(name=name, cal_id=name)
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
# Samples and the report.
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measured sync: wall time, HTTP requests on the wire, SQL queries, and for
    Convene the part of the time spent in the provider (fetching and parsing)."""

    seconds: float
    requests: int
    queries: int = 0
    provider_seconds: float = 0.0


@dataclass
class Row:
    """One scenario: Convene's syncs next to the baseline of the same work (the client
    library alone: caldav, or plain requests for Google and Microsoft Graph)."""

    scenario: str
    events: int
    calendars: int
    convene: list[Sample]
    baseline: list[Sample]
    blocks_written: int = 0
    blocks_deleted: int = 0
    queries_sql: list[str] = field(default_factory=list)
    service: str = "CalDAV"

    @property
    def ratio(self) -> float:
        return _median_ms(self.convene) / _median_ms(self.baseline)

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "scenario": self.scenario,
            "events": self.events,
            "calendars": self.calendars,
            "runs": len(self.convene),
            "convene_ms": _spread(self.convene),
            "provider_ms": round(_median_ms(self.convene, provider=True), 1),
            "baseline_ms": _spread(self.baseline),
            "ratio": round(self.ratio, 2),
            "requests": _counts([s.requests for s in self.convene]),
            "baseline_requests": _counts([s.requests for s in self.baseline]),
            "queries": _counts([s.queries for s in self.convene]),
            # Every run, in the order measured, to see drift or a bimodal server.
            "convene_runs_ms": [round(s.seconds * 1000, 1) for s in self.convene],
            "baseline_runs_ms": [round(s.seconds * 1000, 1) for s in self.baseline],
            "blocks_written": self.blocks_written,
            "blocks_deleted": self.blocks_deleted,
            # What the queries were, cut short: enough to see which one appeared when a
            # count changes, without the multi-megabyte INSERTs of a first sync.
            "queries_sql": [sql[:160] for sql in self.queries_sql],
        }


def _median_ms(samples: list[Sample], *, provider: bool = False) -> float:
    return statistics.median(s.provider_seconds if provider else s.seconds for s in samples) * 1000


def _spread(samples: list[Sample]) -> dict[str, float]:
    times = [s.seconds * 1000 for s in samples]
    return {
        "median": round(statistics.median(times), 1),
        "min": round(min(times), 1),
        "max": round(max(times), 1),
    }


def _counts(values: list[int]) -> int | dict[str, int]:
    # Counts are expected to be the same every run; when they are not, say so.
    return values[0] if len(set(values)) == 1 else {"min": min(values), "max": max(values)}


def _count_text(values: list[int]) -> str:
    counts = _counts(values)
    return str(counts) if isinstance(counts, int) else f"{counts['min']}-{counts['max']}"


@dataclass
class BenchReport:
    rows: list[Row] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def table(self) -> list[str]:
        header = (
            f"{'service':<7} {'scenario':<36} {'events':>6} {'runs':>4} "
            f"{'Convene ms (min-max)':>24} "
            f"{'provider':>8} {'baseline':>8} {'ratio':>5} {'HTTP':>4} {'base':>4} {'SQL':>4} "
            f"{'blocks +/-':>10}"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            convene, baseline = _spread(row.convene), _spread(row.baseline)
            times = f"{convene['median']:.1f} ({convene['min']:.1f}-{convene['max']:.1f})"
            lines.append(
                f"{row.service:<7} {row.scenario:<36} {row.events:>6} {len(row.convene):>4} "
                f"{times:>24} "
                f"{_median_ms(row.convene, provider=True):>8.1f} "
                f"{baseline['median']:>8.1f} {row.ratio:>5.2f} "
                f"{_count_text([s.requests for s in row.convene]):>4} "
                f"{_count_text([s.requests for s in row.baseline]):>4} "
                f"{_count_text([s.queries for s in row.convene]):>4} "
                f"{f'{row.blocks_written}/{row.blocks_deleted}':>10}"
            )
        return lines

    def write(self, root: Path) -> Path:
        path = root / RESULT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"environment": self.environment, "rows": [r.as_json() for r in self.rows]}
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path


@pytest.fixture(scope="session")
def bench_report(pytestconfig: pytest.Config) -> BenchReport:
    report = BenchReport(
        environment={
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            # Other work on the machine shows in every time but hardly in the ratios.
            "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
            **{
                name: version(name)
                for name in ("Django", "caldav", "Radicale", "icalendar", "requests")
            },
        }
    )
    pytestconfig.stash[_REPORT_KEY] = report
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or not report.rows:
        return
    terminalreporter.section("Calendar sync benchmark (times are medians)")
    for line in report.table():
        terminalreporter.write_line(line)
    report.environment["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    terminalreporter.write_line(
        f"\nLoad average (1, 5, 15 min) at start {report.environment['load_average_at_start']}, "
        f"at end {report.environment['load_average_at_end']}, on {os.cpu_count()} CPUs."
    )
    path = report.write(config.rootpath)
    terminalreporter.write_line(f"\nWritten to {path.relative_to(config.rootpath)}")
