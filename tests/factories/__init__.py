from tests.factories.accounts import (
    TEST_PASSWORD,
    MembershipFactory,
    OrganizationDomainFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
)
from tests.factories.calendars import CalendarAccountFactory, CalendarFactory

__all__ = [
    "TEST_PASSWORD",
    "CalendarAccountFactory",
    "CalendarFactory",
    "MembershipFactory",
    "OrganizationDomainFactory",
    "OrganizationFactory",
    "ProgramFactory",
    "UserFactory",
]
