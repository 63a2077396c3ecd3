from __future__ import annotations

from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from tests.conftest import Personas
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_landing_page_invites_anonymous_visitors_to_sign_up(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert reverse("account_signup").encode() in response.content


def test_sign_up_leads_to_profile_completion(client: Client) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "email": "New.Person@Example.org",
            "password1": "a-long-pass-9876",
            "password2": "a-long-pass-9876",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("welcome")
    user = User.objects.get(email="new.person@example.org")
    assert user.profile_completed_at is None


def test_first_login_goes_through_welcome_then_the_calendar_step(client: Client) -> None:
    user = UserFactory(full_name="", profile_completed_at=None)
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD}
    )
    assert response["Location"] == reverse("welcome")
    response = client.post(
        reverse("welcome"), {"full_name": "Alan Turing", "time_zone": "Europe/London"}
    )
    assert response["Location"] == reverse("welcome_calendar")
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD}
    )
    assert response["Location"] == reverse("home")


def test_wrong_password_says_so_and_does_not_log_in(client: Client) -> None:
    user = UserFactory()
    response = client.post(reverse("account_login"), {"login": user.email, "password": "nope"})
    assert response.status_code == 200
    assert b"not correct" in response.content
    assert "_auth_user_id" not in client.session


def test_profile_refuses_an_unknown_time_zone_with_a_hint(client: Client) -> None:
    user = UserFactory(time_zone="Europe/Paris")
    client.force_login(user)
    response = client.post(reverse("profile"), {"full_name": "X", "time_zone": "Atlantis/City"})
    assert response.status_code == 200
    assert b"Atlantis/City is not a time zone we know" in response.content
    user.refresh_from_db()
    assert user.time_zone == "Europe/Paris"


def test_profile_form_fields_have_visible_labels(client: Client) -> None:
    client.force_login(UserFactory())
    content = client.get(reverse("profile")).content.decode()
    assert '<label for="id_full_name">Your name</label>' in content
    assert '<label for="id_time_zone">Time zone</label>' in content
    assert 'list="time-zones"' in content and '<datalist id="time-zones">' in content


def test_home_tells_a_participant_what_to_do_next(client: Client, personas: Personas) -> None:
    client.force_login(personas.participant)
    response = client.get("/")
    assert b"What you can do next" in response.content
    assert b"North Careers" in response.content
    assert b"Book time with an adviser" in response.content


def test_home_tells_someone_without_programme_how_to_join(client: Client) -> None:
    client.force_login(UserFactory())
    assert b"not in a programme yet" in client.get("/").content


def test_settings_page_lists_programmes_and_security_links(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.mentor)
    response = client.get(reverse("settings"))
    assert b"North Careers" in response.content
    assert reverse("account_change_password").encode() in response.content


@pytest.mark.parametrize("name", ["profile", "welcome", "settings"])
def test_private_pages_require_login(client: Client, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_password_reset_sends_an_email_after_commit(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    user = UserFactory()
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("account_reset_password"), {"email": user.email})
    assert len(callbacks) == 1
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body
