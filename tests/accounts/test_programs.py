from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.models import CalendarService, Program
from tests.factories import OrganizationFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def test_program_defaults_follow_the_design() -> None:
    program = ProgramFactory()
    assert program.weekends_allowed is False
    assert (program.earliest_start, program.latest_end) == (dt.time(8), dt.time(20))
    assert program.calendar_account_limit == 2
    assert program.sync_window_days == 180
    assert set(program.allowed_calendar_services) == set(CalendarService.values)


def test_earliest_start_must_be_before_latest_end() -> None:
    program = ProgramFactory.build(
        organization=OrganizationFactory(), earliest_start=dt.time(18), latest_end=dt.time(9)
    )
    with pytest.raises(ValidationError) as excinfo:
        program.full_clean()
    assert "latest_end" in excinfo.value.message_dict


def test_database_refuses_a_day_that_ends_before_it_starts() -> None:
    program = ProgramFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Program.objects.filter(pk=program.pk).update(latest_end=dt.time(7))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("calendar_account_limit", 0),
        ("sync_window_days", 0),
        ("slot_granularity_minutes", 0),
    ],
)
def test_limits_must_be_positive(field: str, value: int) -> None:
    program = ProgramFactory.build(organization=OrganizationFactory(), **{field: value})
    with pytest.raises(ValidationError) as excinfo:
        program.full_clean()
    assert field in excinfo.value.message_dict


def test_negative_notice_and_empty_horizon_are_refused() -> None:
    program = ProgramFactory.build(
        organization=OrganizationFactory(),
        minimum_notice=dt.timedelta(hours=-1),
        booking_horizon=dt.timedelta(0),
    )
    with pytest.raises(ValidationError) as excinfo:
        program.full_clean()
    assert {"minimum_notice", "booking_horizon"} <= set(excinfo.value.message_dict)


def test_unknown_calendar_service_is_refused() -> None:
    program = ProgramFactory.build(
        organization=OrganizationFactory(), allowed_calendar_services=["google", "myspace"]
    )
    with pytest.raises(ValidationError, match="myspace"):
        program.full_clean()
