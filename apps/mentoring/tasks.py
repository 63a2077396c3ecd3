from __future__ import annotations

from celery import shared_task

from apps.mentoring.services import polls_close_due, polls_remind_due


@shared_task(name="mentoring.close_due_polls")
def close_due_polls_task() -> int:
    return polls_close_due()


@shared_task(name="mentoring.remind_due_polls")
def remind_due_polls_task() -> int:
    return polls_remind_due()
