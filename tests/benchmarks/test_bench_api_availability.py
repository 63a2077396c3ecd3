"""Availability queries through the whole HTTP stack (a real server, a real client,
authentication, throttling, serialization) for 10, 50 and 500 members over 30 days,
beside PostgreSQL merely fetching the same busy blocks, in the same run."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.calendars.models import BusyBlock
from apps.integrations.services import api_key_create
from tests.factories import CalendarFactory, MembershipFactory, ProgramFactory, UserFactory

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]

SIZES = (10, 50, 500)
BLOCKS_EACH = 120  # about four a working day over 30 days
DAYS = 30
RUNS = 15
START = dt.datetime(2027, 5, 3, tzinfo=dt.UTC)
RESULT_FILE = Path("var") / "bench" / "api_availability.json"


def _seed(program: Any, count: int) -> list[int]:
    rng = random.Random(7)
    users = []
    blocks = []
    for _ in range(count):
        user = UserFactory()
        MembershipFactory(user=user, program=program, role=Role.PARTICIPANT)
        calendar = CalendarFactory(account__owner=user)
        users.append(user.pk)
        for i in range(BLOCKS_EACH):
            begin = START + dt.timedelta(minutes=15 * rng.randrange(DAYS * 96))
            blocks.append(
                BusyBlock(
                    calendar=calendar,
                    owner=user,
                    external_event_id=f"e{i}",
                    instance_start=begin,
                    start=begin,
                    end=begin + dt.timedelta(minutes=rng.choice([30, 60, 90])),
                )
            )
    BusyBlock.objects.bulk_create(blocks)
    return users


def _timings(action: Callable[[], object]) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def test_availability_api_at_10_50_and_500_members(live_server: Any) -> None:
    program = ProgramFactory()
    everyone = _seed(program, max(SIZES))
    _, raw = api_key_create(organization=program.organization, name="bench", created_by=None)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {raw}"
    end = START + dt.timedelta(days=DAYS)
    rows = []
    query_counts = {}
    for size in SIZES:
        ids = everyone[:size]
        body = {
            "participants": [
                {"members": [{"sub": str(pk)} for pk in ids], "required": max(1, size // 2)}
            ],
            "required_duration": {"minutes": 30},
            "query_periods": [{"start": START.isoformat(), "end": end.isoformat()}],
            "response_format": "slots",
            "include_member_statuses": True,
        }

        def call(body: dict[str, Any] = body) -> None:
            cache.clear()  # throttling is not what is measured
            response = session.post(
                f"{live_server.url}/api/v1/availability", json=body, timeout=120
            )
            assert response.status_code == 200, response.text[:500]

        def fetch(ids: list[int] = ids) -> None:
            list(
                BusyBlock.objects.filter(
                    owner_id__in=ids, start__lt=end, end__gt=START
                ).values_list("owner_id", "start", "end")
            )

        call()
        fetch()  # warm-ups, unmeasured
        api_median, api_p95 = _timings(call)
        fetch_median, fetch_p95 = _timings(fetch)
        # The live server answers in another thread: count the same request in-process.
        local = APIClient()
        local.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        with CaptureQueriesContext(connection) as queries:
            assert local.post("/api/v1/availability", body, format="json").status_code == 200
        query_counts[size] = len(queries)
        rows.append(
            {
                "members": size,
                "busy_blocks": size * BLOCKS_EACH,
                "api_ms_median": round(api_median, 1),
                "api_ms_p95": round(api_p95, 1),
                "fetch_ms_median": round(fetch_median, 1),
                "fetch_ms_p95": round(fetch_p95, 1),
                "ratio": round(api_median / fetch_median, 2),
                "queries": len(queries),
            }
        )
    session.close()
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(rows, indent=2))
    lines = [
        f"{'members':>8} {'blocks':>7} {'API median':>11} {'API p95':>8} "
        f"{'fetch median':>13} {'fetch p95':>10} {'ratio':>6} {'queries':>8}"
    ]
    lines += [
        f"{r['members']:>8} {r['busy_blocks']:>7} {r['api_ms_median']:>11} {r['api_ms_p95']:>8} "
        f"{r['fetch_ms_median']:>13} {r['fetch_ms_p95']:>10} {r['ratio']:>6} {r['queries']:>8}"
        for r in rows
    ]
    print("\nAvailability API, 30 days, slots, N-of-M (ms):\n" + "\n".join(lines))
    # The query count does not grow with the number of members.
    assert len(set(query_counts.values())) == 1, query_counts
