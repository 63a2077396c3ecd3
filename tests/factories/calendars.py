from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from apps.calendars.models import Calendar, CalendarAccount
from tests.factories.accounts import UserFactory


class CalendarAccountFactory(DjangoModelFactory):
    class Meta:
        model = CalendarAccount

    owner = factory.SubFactory(UserFactory)
    provider = "caldav"
    identity = factory.LazyAttribute(lambda account: account.owner.email)
    server_url = "https://dav.example.org/"
    credentials = factory.LazyFunction(lambda: {"username": "someone", "password": "s3cret"})


class CalendarFactory(DjangoModelFactory):
    class Meta:
        model = Calendar

    account = factory.SubFactory(CalendarAccountFactory)
    owner = factory.SelfAttribute("account.owner")
    external_id = factory.Sequence(lambda n: f"https://dav.example.org/cal-{n}/")
    name = factory.Sequence(lambda n: f"Calendar {n}")
    is_primary = True
    check_conflicts = True
