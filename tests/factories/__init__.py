from tests.factories.accounts import (
    TEST_PASSWORD,
    MembershipFactory,
    OrganizationDomainFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
)
from tests.factories.appointments import AppointmentFactory, next_weekday_at
from tests.factories.calendars import CalendarAccountFactory, CalendarFactory

__all__ = [
    "TEST_PASSWORD",
    "AppointmentFactory",
    "CalendarAccountFactory",
    "CalendarFactory",
    "MembershipFactory",
    "OrganizationDomainFactory",
    "OrganizationFactory",
    "ProgramFactory",
    "UserFactory",
    "next_weekday_at",
]
