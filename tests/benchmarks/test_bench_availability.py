"""The availability engine at scale, beside the cost of fetching its data.

20 members over 180 days with 1,500 busy blocks each (30-minute meetings, 15-minute
start interval). The baseline, measured in the same run, is PostgreSQL merely returning
those 30,000 busy blocks; the goal is that computing availability costs no more than
fetching it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.appointments.availability import (
    Group,
    Interval,
    Member,
    Query,
    WorkingRules,
    availability,
)
from apps.appointments.selectors import busy_intervals
from apps.calendars.models import BusyBlock
from tests.factories import CalendarFactory, UserFactory

pytestmark = [pytest.mark.bench, pytest.mark.django_db]

MEMBERS = 20
BLOCKS_EACH = 1500
DAYS = 180
RUNS = 7
RESULT_FILE = Path("var") / "bench" / "availability.json"
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]


def _seed(start: dt.datetime) -> list[int]:
    rng = random.Random(42)
    ids = []
    blocks = []
    for n in range(MEMBERS):
        user = UserFactory(time_zone=ZONES[n % len(ZONES)])
        calendar = CalendarFactory(account__owner=user)
        ids.append(user.pk)
        for i in range(BLOCKS_EACH):
            begin = start + dt.timedelta(minutes=15 * rng.randrange(DAYS * 96))
            length = dt.timedelta(minutes=rng.choice([15, 30, 45, 60, 90, 120]))
            blocks.append(
                BusyBlock(
                    calendar=calendar,
                    owner=user,
                    external_event_id=f"e{i}",
                    instance_start=begin,
                    start=begin,
                    end=begin + length,
                )
            )
    BusyBlock.objects.bulk_create(blocks)
    return ids


def _median_ms(action: Callable[[], object]) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), max(samples)


def test_availability_costs_no_more_than_fetching_its_data() -> None:
    start = dt.datetime(2027, 1, 4, tzinfo=dt.UTC)
    window = Interval(start, start + dt.timedelta(days=DAYS))
    ids = _seed(start)
    zones = {user_id: ZONES[n % len(ZONES)] for n, user_id in enumerate(ids)}

    def fetch() -> list[tuple[int, dt.datetime, dt.datetime]]:
        return list(
            BusyBlock.objects.filter(
                owner_id__in=ids, start__lt=window.end, end__gt=window.start
            ).values_list("owner_id", "start", "end")
        )

    busy = busy_intervals(ids, window)
    assert sum(len(v) for v in busy.values()) == MEMBERS * BLOCKS_EACH

    def compute() -> int:
        members = [
            Member(id=str(pk), busy=busy[pk], rules=WorkingRules(time_zone=zones[pk])) for pk in ids
        ]
        result = availability(
            Query(
                groups=[Group(members=members, required=MEMBERS // 2)],
                periods=[window],
                duration=dt.timedelta(minutes=30),
                start_interval=dt.timedelta(minutes=15),
            )
        )
        return len(result.slots(overlapping=True))

    # Warm both up once (connection, caches, zoneinfo), unmeasured.
    fetch()
    slots = compute()
    fetch_ms, fetch_max = _median_ms(fetch)
    compute_ms, compute_max = _median_ms(compute)
    full_ms, full_max = _median_ms(lambda: (busy_intervals(ids, window), compute()))
    with CaptureQueriesContext(connection) as queries:
        busy_intervals(ids, window)
    result = {
        "date": dt.date.today().isoformat(),  # noqa: DTZ011 - a label for the report
        "members": MEMBERS,
        "busy_blocks": MEMBERS * BLOCKS_EACH,
        "days": DAYS,
        "slots": slots,
        "fetch_ms_median": round(fetch_ms, 1),
        "engine_ms_median": round(compute_ms, 1),
        "fetch_and_engine_ms_median": round(full_ms, 1),
        "engine_over_fetch": round(compute_ms / fetch_ms, 2),
        "queries_to_load_busy_time": len(queries),
        "max_ms": {
            "fetch": round(fetch_max, 1),
            "engine": round(compute_max, 1),
            "both": round(full_max, 1),
        },
    }
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(result, indent=2))
    print(
        "\nAvailability, {members} members x {days} days, {busy_blocks} busy blocks, "
        "N-of-M group, 30-min slots every 15 min ({slots} slots):\n"
        "  PostgreSQL fetch of the busy blocks   median {fetch_ms_median} ms\n"
        "  engine (availability + slots)         median {engine_ms_median} ms"
        "  (ratio {engine_over_fetch})\n"
        "  selector + engine, end to end         median {fetch_and_engine_ms_median} ms\n"
        "  queries to load everyone's busy time  {queries_to_load_busy_time}".format(**result)
    )
    # Constant in the number of members and blocks: busy blocks + appointments.
    assert len(queries) == 2
    assert slots > 0
