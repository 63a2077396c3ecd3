from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.services import user_update_profile
from apps.accounts.timezones import time_zone_names, validate_time_zone
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_email_is_the_login_and_is_stored_lower_case() -> None:
    user = User.objects.create_user(email="Ada.Lovelace@Example.ORG", password="pw-12345678")
    assert user.email == "ada.lovelace@example.org"
    assert user.check_password("pw-12345678")
    assert User.USERNAME_FIELD == "email"


def test_superuser_is_staff_and_superuser() -> None:
    user = User.objects.create_superuser(email="root@example.org", password="pw-12345678")
    assert user.is_staff and user.is_superuser


def test_new_users_default_to_utc() -> None:
    assert User.objects.create_user(email="a@example.org").time_zone == "UTC"


def test_time_zone_list_is_canonical_and_searchable_names() -> None:
    names = time_zone_names()
    assert names[0] == "UTC"
    assert {"Europe/London", "America/New_York", "Asia/Kolkata"} <= set(names)
    assert not any(name.startswith(("Etc/", "US/")) for name in names)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "europe/london", "GMT+3"])
def test_unknown_time_zones_are_refused_with_an_example(name: str) -> None:
    with pytest.raises(ValidationError, match="Europe/London"):
        validate_time_zone(name)


def test_model_validation_refuses_an_unknown_time_zone() -> None:
    user = UserFactory.build(time_zone="Nowhere/Special")
    with pytest.raises(ValidationError) as excinfo:
        user.full_clean(exclude=["password"])
    assert "time_zone" in excinfo.value.message_dict


def test_completing_the_profile_stamps_it_once() -> None:
    user = UserFactory(full_name="", profile_completed_at=None)
    user_update_profile(user=user, full_name="  Grace Hopper ", time_zone="America/New_York")
    user.refresh_from_db()
    assert user.full_name == "Grace Hopper"
    assert user.time_zone == "America/New_York"
    first = user.profile_completed_at
    assert first is not None
    user_update_profile(user=user, full_name="Grace B. Hopper", time_zone="America/New_York")
    user.refresh_from_db()
    assert user.profile_completed_at == first


def test_pages_show_times_in_the_viewers_time_zone(client) -> None:
    user = UserFactory(time_zone="Asia/Kolkata")
    client.login(email=user.email, password=TEST_PASSWORD)
    seen: list[str] = []

    from django.test.signals import template_rendered

    def capture(sender: object, template: object, context: dict, **kwargs: object) -> None:
        seen.append(timezone.get_current_timezone_name())

    template_rendered.connect(capture)
    try:
        assert client.get("/").status_code == 200
    finally:
        template_rendered.disconnect(capture)
    assert seen and set(seen) == {"Asia/Kolkata"}
    # and outside a request we are back in UTC
    assert timezone.get_current_timezone_name() == "UTC"
    noon = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    assert timezone.localtime(noon, user.zone).hour == 17
