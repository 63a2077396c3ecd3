"""Benchmark plumbing: samples, the summary table printed at the end of the run, and
the machine-readable record in var/bench/caldav_sync.json.

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
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

RESULT_FILE = Path("var") / "bench" / "caldav_sync.json"
_REPORT_KEY = pytest.StashKey["BenchReport"]()


@dataclass(frozen=True)
class Sample:
    """One measured sync: wall time, HTTP requests on the wire, SQL queries."""

    seconds: float
    requests: int
    queries: int = 0


@dataclass
class Row:
    """One scenario: Convene's syncs next to the caldav-only baseline of the same work."""

    scenario: str
    events: int
    calendars: int
    convene: list[Sample]
    baseline: list[Sample]
    blocks_written: int = 0
    blocks_deleted: int = 0
    queries_sql: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return _median_ms(self.convene) / _median_ms(self.baseline)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "events": self.events,
            "calendars": self.calendars,
            "runs": len(self.convene),
            "convene_ms": _spread(self.convene),
            "baseline_ms": _spread(self.baseline),
            "ratio": round(self.ratio, 2),
            "requests": _counts([s.requests for s in self.convene]),
            "baseline_requests": _counts([s.requests for s in self.baseline]),
            "queries": _counts([s.queries for s in self.convene]),
            "blocks_written": self.blocks_written,
            "blocks_deleted": self.blocks_deleted,
            # What the queries were, cut short: enough to see which one appeared when a
            # count changes, without the multi-megabyte INSERTs of a first sync.
            "queries_sql": [sql[:160] for sql in self.queries_sql],
        }


def _median_ms(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples) * 1000


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
            f"{'scenario':<34} {'events':>6} {'runs':>4} {'Convene ms (min-max)':>24} "
            f"{'baseline ms':>11} {'ratio':>6} {'HTTP':>5} {'base HTTP':>9} {'SQL':>4} "
            f"{'blocks +/-':>12}"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            convene, baseline = _spread(row.convene), _spread(row.baseline)
            times = f"{convene['median']:.1f} ({convene['min']:.1f}-{convene['max']:.1f})"
            lines.append(
                f"{row.scenario:<34} {row.events:>6} {len(row.convene):>4} {times:>24} "
                f"{baseline['median']:>11.1f} {row.ratio:>6.2f} "
                f"{_count_text([s.requests for s in row.convene]):>5} "
                f"{_count_text([s.requests for s in row.baseline]):>9} "
                f"{_count_text([s.queries for s in row.convene]):>4} "
                f"{f'{row.blocks_written}/{row.blocks_deleted}':>12}"
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
            "platform": platform.platform(),
            "python": platform.python_version(),
            **{name: version(name) for name in ("Django", "caldav", "Radicale", "icalendar")},
        }
    )
    pytestconfig.stash[_REPORT_KEY] = report
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or not report.rows:
        return
    terminalreporter.section("CalDAV sync benchmark (times are medians)")
    for line in report.table():
        terminalreporter.write_line(line)
    path = report.write(config.rootpath)
    terminalreporter.write_line(f"\nWritten to {path.relative_to(config.rootpath)}")
