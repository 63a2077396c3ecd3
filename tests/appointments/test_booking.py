from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from apps.appointments.models import Appointment, HostSettings
from apps.appointments.services import SlotTakenError
from apps.calendars.models import BusyBlock
from tests.appointments.conftest import Booking
from tests.factories import AppointmentFactory, CalendarFactory, next_weekday_at

pytestmark = pytest.mark.django_db
HALF_HOUR = dt.timedelta(minutes=30)


def test_a_participant_books_a_free_slot_approved_at_once(
    booking: Booking, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        appointment = booking.book(next_weekday_at(10))
    assert appointment.status == Appointment.Status.APPROVED
    assert not appointment.booked_on_behalf
    assert list(appointment.attendees.all()) == [booking.participant]
    assert [t.to_status for t in appointment.transitions.all()] == ["approved"]
    # The host hears of it; the participant made it and gets no email about it.
    assert [m.to for m in mail.outbox] == [[booking.host.email]]
    assert mail.outbox[0].subject == "New appointment: CV review"
    # Without a connected calendar, the email carries the invitation.
    (attachment,) = mail.outbox[0].attachments
    assert "METHOD:REQUEST" in attachment[1]


def test_bookings_need_approval_when_the_host_says_so(booking: Booking) -> None:
    HostSettings.objects.create(host=booking.host, needs_approval=True)
    assert booking.book(next_weekday_at(10)).status == Appointment.Status.REQUESTED


def test_a_busy_block_makes_the_slot_unbookable(booking: Booking) -> None:
    calendar = CalendarFactory(account__owner=booking.host)
    start = next_weekday_at(10)
    BusyBlock.objects.create(
        calendar=calendar,
        owner=booking.host,
        external_event_id="x",
        instance_start=start,
        start=start - dt.timedelta(minutes=15),
        end=start + dt.timedelta(minutes=15),
    )
    with pytest.raises(SlotTakenError, match="just taken"):
        booking.book(start)
    assert booking.book(start + HALF_HOUR).pk


def test_a_busy_block_of_an_unchecked_calendar_does_not_block(booking: Booking) -> None:
    calendar = CalendarFactory(account__owner=booking.host, check_conflicts=False)
    start = next_weekday_at(10)
    BusyBlock.objects.create(
        calendar=calendar,
        owner=booking.host,
        external_event_id="x",
        instance_start=start,
        start=start,
        end=start + HALF_HOUR,
    )
    assert booking.book(start).pk


def test_tentative_blocks_follow_the_programme_setting(booking: Booking) -> None:
    calendar = CalendarFactory(account__owner=booking.host)
    start = next_weekday_at(10)
    BusyBlock.objects.create(
        calendar=calendar,
        owner=booking.host,
        external_event_id="t",
        instance_start=start,
        start=start,
        end=start + HALF_HOUR,
        kind="tentative",
    )
    with pytest.raises(SlotTakenError):
        booking.book(start)
    booking.program.tentative_is_busy = False
    booking.program.save()
    assert booking.book(start).pk


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (lambda: next_weekday_at(21), "after the latest end"),
        (lambda: next_weekday_at(6), "before the earliest start"),
        (lambda: next_weekday_at(10, days_ahead=0) - dt.timedelta(days=1), "in the past"),
        (lambda: next_weekday_at(10, days_ahead=90), "beyond the horizon"),
        (lambda: next_weekday_at(10) + dt.timedelta(minutes=7), "off the 15-minute grid"),
    ],
)
def test_programme_rules_apply(booking: Booking, start: Any, reason: str) -> None:
    with pytest.raises(SlotTakenError):
        booking.book(start())


def test_weekends_are_refused_unless_allowed(booking: Booking) -> None:
    saturday = next_weekday_at(10)
    while saturday.weekday() != 5:
        saturday += dt.timedelta(days=1)
    with pytest.raises(SlotTakenError):
        booking.book(saturday)
    booking.program.weekends_allowed = True
    booking.program.save()
    assert booking.book(saturday).pk


def test_an_outsider_cannot_book(booking: Booking) -> None:
    with pytest.raises(ValidationError, match="participant"):
        booking.book(next_weekday_at(10), attendees=[booking.outsider], booked_by=booking.outsider)


def test_a_participant_cannot_book_for_someone_else(booking: Booking) -> None:
    with pytest.raises(PermissionDenied):
        booking.book(next_weekday_at(10), booked_by=booking.host)  # a mentor is not staff


def test_a_participant_cannot_override_availability(booking: Booking) -> None:
    with pytest.raises(PermissionDenied):
        booking.book(next_weekday_at(10), override_availability=True)


def test_staff_may_override_availability_and_it_is_recorded(booking: Booking) -> None:
    start = next_weekday_at(22)  # after the day's latest end
    appointment = booking.book(start, booked_by=booking.staff, override_availability=True)
    assert appointment.booked_on_behalf
    assert appointment.availability_overridden
    assert appointment.transitions.get().note == "overrode availability"


def test_staff_without_override_get_only_free_slots(booking: Booking) -> None:
    with pytest.raises(SlotTakenError):
        booking.book(next_weekday_at(22), booked_by=booking.staff)


def test_the_host_cannot_be_double_booked(booking: Booking) -> None:
    start = next_weekday_at(10)
    booking.book(start)
    with pytest.raises(SlotTakenError):
        booking.book(start + dt.timedelta(minutes=15))


def test_the_database_refuses_overlaps_even_past_the_service(booking: Booking) -> None:
    from django.db import IntegrityError, transaction

    start = next_weekday_at(10)
    AppointmentFactory(program=booking.program, host=booking.host, start=start)
    with pytest.raises(IntegrityError), transaction.atomic():
        AppointmentFactory(
            program=booking.program, host=booking.host, start=start + dt.timedelta(minutes=10)
        )
    # Canceled appointments do not hold their time.
    Appointment.objects.update(status=Appointment.Status.CANCELED)
    AppointmentFactory(program=booking.program, host=booking.host, start=start)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_slot_make_one_appointment(booking: Booking) -> None:
    start = next_weekday_at(11)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            barrier.wait()
            booking.book(start)
            result = "booked"
        except SlotTakenError:
            result = "taken"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["booked"] + ["taken"] * 49
    assert Appointment.objects.filter(host=booking.host).count() == 1


def test_booking_query_count_does_not_grow_with_data(booking: Booking) -> None:
    calendar = CalendarFactory(account__owner=booking.host)

    def queries_for_booking(day: int) -> int:
        start = next_weekday_at(9, days_ahead=day)
        with CaptureQueriesContext(connection) as captured:
            booking.book(start)
        return len(captured)

    few = queries_for_booking(2)
    blocks = []
    for i in range(300):
        s = next_weekday_at(12, days_ahead=2) + dt.timedelta(days=i % 20, minutes=30 * (i % 8))
        blocks.append(
            BusyBlock(
                calendar=calendar,
                owner=booking.host,
                external_event_id=f"e{i}",
                instance_start=s,
                start=s,
                end=s + dt.timedelta(minutes=20),
            )
        )
    BusyBlock.objects.bulk_create(blocks)
    for i in range(40):
        AppointmentFactory(
            program=booking.program,
            host=booking.host,
            start=next_weekday_at(8, days_ahead=4) + dt.timedelta(days=i),
        )
    many = queries_for_booking(3)
    assert many == few
