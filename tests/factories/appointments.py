from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.appointments.models import Appointment
from tests.factories.accounts import ProgramFactory, UserFactory


def next_weekday_at(hour: int, *, days_ahead: int = 2) -> dt.datetime:
    """A UTC time on a weekday at least `days_ahead` days away (hour in UTC)."""
    day = timezone.now().date() + dt.timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


class AppointmentFactory(DjangoModelFactory):
    class Meta:
        model = Appointment
        skip_postgeneration_save = True

    program = factory.SubFactory(ProgramFactory)
    host = factory.SubFactory(UserFactory)
    start = factory.LazyFunction(lambda: next_weekday_at(10))
    end = factory.LazyAttribute(lambda a: a.start + dt.timedelta(minutes=30))
    title = "Career advice"
    status = Appointment.Status.APPROVED
    booked_by = factory.SelfAttribute("host")

    @factory.post_generation
    def attendees(self, create: bool, extracted: list[object] | None, **kwargs: object) -> None:
        if create:
            self.attendees.set(extracted or [UserFactory()])
