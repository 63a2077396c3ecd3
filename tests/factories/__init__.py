from tests.factories.accounts import (
    TEST_PASSWORD,
    MembershipFactory,
    OrganizationDomainFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
)

__all__ = [
    "TEST_PASSWORD",
    "MembershipFactory",
    "OrganizationDomainFactory",
    "OrganizationFactory",
    "ProgramFactory",
    "UserFactory",
]
