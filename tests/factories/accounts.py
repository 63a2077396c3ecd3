from __future__ import annotations

import datetime as dt

import factory
from factory.django import DjangoModelFactory

from apps.accounts.models import Membership, Organization, OrganizationDomain, Program, Role, User

TEST_PASSWORD = "correct horse battery staple"


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"University {n}")
    slug = factory.Sequence(lambda n: f"university-{n}")


class OrganizationDomainFactory(DjangoModelFactory):
    class Meta:
        model = OrganizationDomain

    organization = factory.SubFactory(OrganizationFactory)
    domain = factory.Sequence(lambda n: f"uni{n}.example.edu")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    full_name = factory.Faker("name")
    time_zone = "Europe/London"
    profile_completed_at = factory.Faker("past_datetime", tzinfo=dt.UTC)
    password = factory.django.Password(TEST_PASSWORD)


class ProgramFactory(DjangoModelFactory):
    class Meta:
        model = Program

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Programme {n}")
    slug = factory.Sequence(lambda n: f"programme-{n}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    program = factory.SubFactory(ProgramFactory)
    role = Role.PARTICIPANT
