"""A real Celery worker consuming from the real Redis broker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from apps.accounts.tasks import send_email_task
from config.celery import app


@pytest.fixture
def redis_worker() -> Iterator[None]:
    if not str(app.conf.broker_url).startswith("redis://"):
        pytest.fail("CELERY_BROKER_URL is not Redis: run the tests with `make test`.")
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield
    finally:
        app.conf.task_always_eager = True


@pytest.mark.django_db(transaction=True)
def test_worker_delivers_email_queued_through_redis(redis_worker: None) -> None:
    result = send_email_task.apply_async(
        kwargs={
            "subject": "Hello from the worker",
            "body": "Sent through Redis.",
            "from_email": "convene@example.org",
            "to": ["someone@example.org"],
        }
    )
    assert result.id
    for _ in range(100):
        if mail.outbox:
            break
        time.sleep(0.1)
    assert [m.subject for m in mail.outbox] == ["Hello from the worker"]
