from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from apps.accounts.models import Program, Role, User
from apps.mentoring.models import MentoringGroup
from tests.factories import MembershipFactory, ProgramFactory, UserFactory
from tests.factories.mentoring import connect_calendar, make_group


@dataclass
class Circle:
    """A circle: a mentor (UTC) and three mentees. Ana (Berlin) and Ben (New York)
    have connected calendars; Sam (London) has none. Plus a member of another group of
    the same programme, and an outsider of another programme."""

    program: Program
    group: MentoringGroup
    mentor: User
    ana: User
    ben: User
    sam: User
    other_member: User
    outsider: User

    @property
    def mentees(self) -> list[User]:
        return [self.ana, self.ben, self.sam]


@pytest.fixture
def circle(db: None) -> Circle:
    program = ProgramFactory(
        name="Mentoring",
        minimum_notice=dt.timedelta(hours=1),
        booking_horizon=dt.timedelta(days=60),
        slot_granularity_minutes=15,
    )
    mentor = UserFactory(email="mentor@example.org", full_name="Maya Mentor", time_zone="UTC")
    ana = UserFactory(email="ana@example.org", full_name="Ana Alves", time_zone="Europe/Berlin")
    ben = UserFactory(email="ben@example.org", full_name="Ben Brown", time_zone="America/New_York")
    sam = UserFactory(email="sam@example.org", full_name="Sam Smith", time_zone="Europe/London")
    group = make_group(program, mentors=[mentor], mentees=[ana, ben, sam], name="Data circle")
    connect_calendar(ana)
    connect_calendar(ben)
    other_mentor = UserFactory(email="other-mentor@example.org")
    other_member = UserFactory(email="other@example.org", full_name="Olga Other")
    make_group(program, mentors=[other_mentor], mentees=[other_member], name="Other pair")
    outsider = UserFactory(email="outsider@example.org")
    MembershipFactory(user=outsider, role=Role.PARTICIPANT)  # another programme
    return Circle(program, group, mentor, ana, ben, sam, other_member, outsider)
