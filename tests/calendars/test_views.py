from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.calendars.models import CalendarAccount
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.factories import CalendarFactory, MembershipFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_settings_page_says_when_no_calendar_is_connected(client: Client) -> None:
    user = UserFactory()
    MembershipFactory(user=user, role=Role.PARTICIPANT)
    client.force_login(user)
    content = client.get(reverse("calendar_settings")).content.decode()
    assert "Your calendar is not connected" in content
    assert "Connect iCloud" in content
    assert "Connect CalDAV" in content


def test_connect_buttons_follow_the_programmes_services(client: Client) -> None:
    user = UserFactory()
    MembershipFactory(user=user, program=ProgramFactory(allowed_calendar_services=["icloud"]))
    client.force_login(user)
    content = client.get(reverse("calendar_settings")).content.decode()
    assert "Connect iCloud" in content
    assert "Connect CalDAV" not in content
    assert client.get(reverse("calendar_connect", args=["nosuch"])).status_code == 404


def test_status_lines_for_each_state(client: Client) -> None:
    calendar = CalendarFactory(account__provider="icloud")
    account = calendar.account
    client.force_login(account.owner)
    account.last_synced_at = timezone.now()
    account.save()
    assert (
        "Your iCloud calendar is connected. Last synced"
        in client.get(reverse("calendar_settings")).content.decode()
    )
    account.status = CalendarAccount.Status.DISCONNECTED
    account.status_detail = "iCloud rejected the Apple ID or password."
    account.save()
    content = client.get(reverse("calendar_settings")).content.decode()
    assert "Action required" in content
    assert "iCloud rejected the Apple ID or password." in content
    assert reverse("calendar_account_reconnect", args=[account.pk]) in content


def test_credentials_are_never_rendered(client: Client) -> None:
    calendar = CalendarFactory(account__credentials={"username": "u", "password": "hunter2-xyz"})
    client.force_login(calendar.owner)
    for url in (
        reverse("calendar_settings"),
        reverse("calendar_account_reconnect", args=[calendar.account_id]),
        reverse("calendar_account_disconnect", args=[calendar.account_id]),
    ):
        assert b"hunter2-xyz" not in client.get(url).content


def test_connect_form_explains_a_refused_address(
    client: Client, radicale_server: CalDAVServer
) -> None:
    user = UserFactory()
    MembershipFactory(user=user)
    client.force_login(user)
    response = client.post(
        reverse("calendar_connect", args=["caldav"]),
        {"server_url": radicale_server.url, "username": "alice", "password": "x"},
    )
    assert response.status_code == 200
    assert "ask your administrator" in response.content.decode()
    assert not CalendarAccount.objects.exists()


def test_connect_form_refuses_an_unsafe_next_url(
    client: Client, radicale_server: CalDAVServer, settings: object
) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # type: ignore[attr-defined]
    dav_client, dav_calendar = make_calendar(radicale_server)
    user = UserFactory()
    MembershipFactory(user=user)
    client.force_login(user)
    response = client.post(
        reverse("calendar_connect", args=["caldav"]),
        {
            "server_url": radicale_server.url,
            "username": radicale_server.username,
            "password": radicale_server.password,
            "next": "https://evil.example.com/",
        },
    )
    dav_calendar.delete()
    dav_client.close()
    assert response.status_code == 302
    assert response["Location"] == reverse("calendar_settings")


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("calendar_account_reconnect", "get"),
        ("calendar_account_disconnect", "get"),
        ("calendar_account_disconnect", "post"),
        ("calendar_account_refresh", "post"),
        ("calendar_account_choices", "post"),
    ],
)
def test_an_outsider_cannot_touch_someone_elses_account(
    client: Client, name: str, method: str
) -> None:
    calendar = CalendarFactory()
    client.force_login(UserFactory())
    response = getattr(client, method)(
        reverse(name, args=[calendar.account_id]), {"remove_events": "yes"}
    )
    assert response.status_code == 404
    assert CalendarAccount.objects.filter(pk=calendar.account_id).exists()


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = client.get(reverse("calendar_settings"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_welcome_calendar_step_can_be_skipped(client: Client) -> None:
    user = UserFactory()
    MembershipFactory(user=user)
    client.force_login(user)
    content = client.get(reverse("welcome_calendar")).content.decode()
    assert "Skip for now" in content
    assert "Connect iCloud" in content
