from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from apps.accounts.models import Program, Role, User
from apps.appointments.booking import appointment_book
from apps.appointments.models import Appointment
from tests.factories import MembershipFactory, ProgramFactory, UserFactory


@dataclass
class Booking:
    """A programme with a host (mentor, UTC), a participant, staff, and an outsider."""

    program: Program
    host: User
    participant: User
    staff: User
    outsider: User

    def book(self, start: dt.datetime, **overrides: Any) -> Appointment:
        """The participant books the host for half an hour (override anything)."""
        arguments: dict[str, Any] = {
            "program": self.program,
            "host": self.host,
            "attendees": [self.participant],
            "start": start,
            "end": start + dt.timedelta(minutes=30),
            "title": "CV review",
            "booked_by": self.participant,
        }
        return appointment_book(**{**arguments, **overrides})


@pytest.fixture
def booking(db: None) -> Booking:
    program = ProgramFactory(
        minimum_notice=dt.timedelta(hours=1),
        booking_horizon=dt.timedelta(days=60),
        slot_granularity_minutes=15,
    )
    host = UserFactory(time_zone="UTC", email="host@example.org")
    participant = UserFactory(email="student@example.org", time_zone="Europe/Berlin")
    staff = UserFactory(email="staff@example.org")
    outsider = UserFactory(email="outsider@example.org")
    MembershipFactory(user=host, program=program, role=Role.MENTOR)
    MembershipFactory(user=participant, program=program, role=Role.PARTICIPANT)
    MembershipFactory(user=staff, program=program, role=Role.STAFF)
    MembershipFactory(user=outsider, role=Role.PARTICIPANT)  # another programme
    return Booking(program, host, participant, staff, outsider)
