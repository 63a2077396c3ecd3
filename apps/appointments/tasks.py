from __future__ import annotations

from celery import shared_task

from apps.appointments.outbox import calendar_write_deliver, outbox_sweep


@shared_task(name="appointments.deliver_calendar_write", acks_late=True)
def deliver_calendar_write_task(*, write_id: int) -> None:
    calendar_write_deliver(write_id=write_id)


@shared_task(name="appointments.outbox_sweep")
def outbox_sweep_task() -> int:
    return outbox_sweep()
