from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache

from apps.accounts.models import Organization, Program, Role, User
from tests.factories import (
    MembershipFactory,
    OrganizationDomainFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
)

pytest_plugins = ["tests.caldav_servers", "tests.oauth_fakes"]


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "The tests run on PostgreSQL: use `make test`, or set DATABASE_URL=postgres://..."
        )


@dataclass
class Personas:
    """The people of permission tests: one organization with its programme, and an
    outsider organization whose people must be refused."""

    organization: Organization
    program: Program
    org_admin: User
    program_admin: User
    mentor: User
    participant: User
    other_organization: Organization
    other_program: Program
    other_org_admin: User
    outsider: User


@pytest.fixture
def personas(db: None) -> Personas:
    organization = OrganizationFactory(name="North University", slug="north")
    program = ProgramFactory(organization=organization, name="North Careers")
    OrganizationDomainFactory(organization=organization, domain="north.example.edu")
    other_organization = OrganizationFactory(name="South College", slug="south")
    OrganizationDomainFactory(organization=other_organization, domain="south.example.edu")
    other_program = ProgramFactory(organization=other_organization, name="South Mentoring")
    program_admin = UserFactory(email="padmin@north.example.edu", is_staff=True)
    MembershipFactory(user=program_admin, program=program, role=Role.PROGRAM_ADMIN)
    mentor = UserFactory(email="mentor@north.example.edu")
    MembershipFactory(user=mentor, program=program, role=Role.MENTOR)
    participant = UserFactory(email="student@north.example.edu")
    MembershipFactory(user=participant, program=program, role=Role.PARTICIPANT)
    outsider = UserFactory(email="outsider@south.example.edu")
    MembershipFactory(user=outsider, program=other_program, role=Role.PARTICIPANT)
    return Personas(
        organization=organization,
        program=program,
        org_admin=UserFactory(
            email="admin@north.example.edu", is_staff=True, managed_organization=organization
        ),
        program_admin=program_admin,
        mentor=mentor,
        participant=participant,
        other_organization=other_organization,
        other_program=other_program,
        other_org_admin=UserFactory(
            email="admin@south.example.edu", is_staff=True, managed_organization=other_organization
        ),
        outsider=outsider,
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's deliberate slowness is for attackers, not for test suites.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # The cache is the real Redis: rate-limit counters must not leak between tests.
    cache.clear()
