"""Google end to end: a participant connects through allauth against the fake Google
(consent page, token endpoint, Calendar API), then tokens, push and privacy."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.apps import apps
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.utils import timezone

from apps.accounts.models import User
from apps.calendars.models import BusyBlock, Calendar, CalendarAccount, PushChannel, SyncRun
from apps.calendars.providers.base import AuthError
from apps.calendars.tasks import renew_push_channels_task, sync_account_task
from apps.calendars.tokens import AccountTokens
from tests.calendars.contract import day_at
from tests.calendars.oauth_flow import finish_connect, google_consent, start_connect
from tests.conftest import Personas
from tests.fakes.google import FakeGoogle

EVENTS_READ = "https://www.googleapis.com/auth/calendar.events.readonly"
SECRET_TITLE = "Salary negotiation with the dean"


@pytest.fixture
def participant(personas: Personas, client: Client) -> User:
    client.force_login(personas.participant)
    return personas.participant


def _connect(client: Client, google: FakeGoogle, email: str, **consent: Any) -> Any:
    authorize = start_connect(client, "/settings/calendars/connect/google/")
    return finish_connect(client, google_consent(authorize, email=email, **consent))


def test_connecting_google_syncs_busy_time_and_never_stores_titles(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")
    google.add_event(user.primary, start=day_at(2, 9), end=day_at(2, 10), summary=SECRET_TITLE)
    google.add_event(
        user.primary,
        start=day_at(3, 9),
        end=day_at(3, 10),
        summary="Gym",
        transparency="transparent",
    )

    response = _connect(client, google, user.email)

    assert response.status_code == 302
    assert response["Location"] == "/settings/calendars/"
    account = CalendarAccount.objects.get(owner=participant)
    assert (account.provider, account.identity, account.status) == (
        "google",
        user.email,
        CalendarAccount.Status.ACTIVE,
    )
    # The refresh token is in the encrypted credentials; allauth's plain-text token
    # table stays empty.
    assert account.credentials["refresh_token"].startswith("1//")
    assert not SocialToken.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM calendars_calendaraccount")
        (stored,) = cursor.fetchone()
    assert account.credentials["refresh_token"] not in str(stored)
    calendar = Calendar.objects.get(account=account)
    assert (calendar.is_primary, calendar.check_conflicts, calendar.is_write_target) == (
        True,
        True,
        True,
    )
    assert list(BusyBlock.objects.values_list("start", "end")) == [(day_at(2, 9), day_at(2, 10))]
    # Real-time updates: a channel for the synced calendar.
    channel = PushChannel.objects.get(calendar=calendar)
    assert google.channels[channel.channel_id].address == (
        "https://convene.test/calendars/push/google/"
    )
    page = client.get("/settings/calendars/")
    assert f"Google Calendar · {user.email}" in page.content.decode()
    # Nothing anywhere in the database holds the title of the foreign event.
    for model in apps.get_models():
        for row in model.objects.all().values():
            assert SECRET_TITLE not in str(row), model


def test_an_unticked_permission_is_named_and_nothing_is_kept(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")

    response = _connect(client, google, user.email, untick=frozenset({EVENTS_READ}))

    assert response.status_code == 302
    assert not CalendarAccount.objects.exists()
    assert not SocialAccount.objects.exists()
    page = client.get("/settings/calendars/").content.decode()
    assert "Your Google calendar is not connected" in page
    assert "see when you are busy" in page
    assert 'href="/settings/calendars/connect/google/">Try again' in page
    # Shown once, not forever.
    assert "Try again" not in client.get("/settings/calendars/").content.decode()


def test_cancelling_on_the_consent_screen_changes_nothing(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")

    response = _connect(client, google, user.email, allow=False)

    assert response.status_code == 302
    assert response["Location"] == "/settings/calendars/"
    assert not CalendarAccount.objects.exists()
    assert (
        "was cancelled; nothing was changed" in client.get("/settings/calendars/").content.decode()
    )


def test_two_google_accounts_up_to_the_programme_limit(
    client: Client, participant: User, personas: Personas, google: FakeGoogle
) -> None:
    personas.program.calendar_account_limit = 2
    personas.program.save()
    first, second, third = (google.add_user(f"me{n}@gmail.example") for n in range(3))

    _connect(client, google, first.email)
    _connect(client, google, second.email)
    _connect(client, google, third.email)

    assert sorted(CalendarAccount.objects.values_list("identity", flat=True)) == [
        first.email,
        second.email,
    ]
    page = client.get("/settings/calendars/").content.decode()
    assert "the most your programme allows" in page


def test_google_cannot_sign_anyone_in(
    client: Client, google: FakeGoogle, personas: Personas
) -> None:
    user = google.add_user(personas.participant.email)
    authorize = client.post("/accounts/google/login/?process=login")
    assert authorize.status_code == 302
    response = finish_connect(client, google_consent(authorize["Location"], email=user.email))
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()


def test_a_revoked_grant_disconnects_once_and_reconnecting_keeps_choices(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")
    team = google.add_calendar(user, "Team")
    _connect(client, google, user.email)
    account = CalendarAccount.objects.get(owner=participant)
    # The person's own choices: conflicts from the team calendar too.
    Calendar.objects.filter(account=account, external_id=team.id).update(check_conflicts=True)
    mail.outbox.clear()

    google.revoke_user(user.email)
    with TestCase.captureOnCommitCallbacks(execute=True):
        sync_account_task.delay(account_id=account.pk)
        sync_account_task.delay(account_id=account.pk)

    account.refresh_from_db()
    assert account.status == CalendarAccount.Status.DISCONNECTED
    assert "Reconnect" in account.status_detail
    assert [m.subject for m in mail.outbox] == [
        "Action required: your Google calendar is no longer connected"
    ]
    reconnect = f"/settings/calendars/{account.pk}/reconnect/"
    assert reconnect in mail.outbox[0].body
    assert "Reconnect" in client.get("/settings/calendars/").content.decode()

    authorize = start_connect(client, reconnect)
    finish_connect(client, google_consent(authorize, email=user.email))

    again = CalendarAccount.objects.get(owner=participant)
    assert again.pk == account.pk
    assert again.status == CalendarAccount.Status.ACTIVE
    assert again.disconnect_notified_at is None
    assert set(
        Calendar.objects.filter(account=again, check_conflicts=True).values_list(
            "external_id", flat=True
        )
    ) == {user.email, team.id}


def test_an_expiring_token_is_refreshed_and_a_rotated_refresh_token_kept(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")
    _connect(client, google, user.email)
    account = CalendarAccount.objects.get(owner=participant)
    old_refresh = account.credentials["refresh_token"]
    account.credentials = {**account.credentials, "expires_at": timezone.now().isoformat()}
    account.save()
    google.rotate_refresh_tokens = True

    sync_account_task.delay(account_id=account.pk)

    account.refresh_from_db()
    assert google.refreshes == 1
    assert account.status == CalendarAccount.Status.ACTIVE
    assert account.credentials["refresh_token"] != old_refresh
    assert dt.datetime.fromisoformat(account.credentials["expires_at"]) > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_spend_the_refresh_token_once(google: FakeGoogle) -> None:
    user = google.add_user("student@gmail.example")
    google.rotate_refresh_tokens = True
    access = google.issue_token(user.email, {EVENTS_READ})
    owner = User.objects.create_user(email="owner@example.org", password="x")
    account = CalendarAccount.objects.create(
        owner=owner,
        provider="google",
        identity=user.email,
        credentials={
            "access_token": access,
            "refresh_token": google.refresh_token_of(access),
            "expires_at": timezone.now().isoformat(),
        },
    )
    tokens: list[str] = []
    errors: list[Exception] = []

    def refresh() -> None:
        try:
            tokens.append(AccountTokens(account).access_token())
        except AuthError as error:  # the loser of an unlocked race would see this
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert google.refreshes == 1
    assert len(set(tokens)) == 1


def test_a_push_notification_syncs_exactly_that_calendar(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")
    team = google.add_calendar(user, "Team")
    _connect(client, google, user.email)
    account = CalendarAccount.objects.get(owner=participant)
    primary, team_calendar = (
        Calendar.objects.get(account=account, external_id=user.email),
        Calendar.objects.get(account=account, external_id=team.id),
    )
    client.post(
        f"/settings/calendars/{account.pk}/choices/",
        {
            f"account-{account.pk}-conflicts": [primary.pk, team_calendar.pk],
            f"account-{account.pk}-write_calendar": primary.pk,
        },
    )
    sync_account_task.delay(account_id=account.pk)
    assert PushChannel.objects.filter(calendar__account=account).count() == 2
    SyncRun.objects.all().delete()

    google.add_event(team, start=day_at(4, 14), end=day_at(4, 15))
    assert google.notify(team.id) == [200]

    runs = list(SyncRun.objects.all())
    assert [(run.calendar_id, run.trigger, run.full) for run in runs] == [
        (team_calendar.pk, SyncRun.Trigger.PUSH, False)
    ]
    assert BusyBlock.objects.filter(calendar=team_calendar, start=day_at(4, 14)).exists()


def test_channels_are_renewed_before_they_expire_and_stopped_on_disconnect(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")
    _connect(client, google, user.email)
    channel = PushChannel.objects.get()
    old_id = channel.channel_id
    PushChannel.objects.update(expires_at=timezone.now() + dt.timedelta(hours=2))

    assert renew_push_channels_task.delay().get() == 1

    channel.refresh_from_db()
    assert channel.channel_id != old_id
    assert channel.expires_at > timezone.now() + dt.timedelta(days=6)
    assert google.stopped_channels == [old_id]
    google.add_event(user.primary, start=day_at(5, 9), end=day_at(5, 10))
    assert google.notify(user.email) == [200]
    assert BusyBlock.objects.filter(start=day_at(5, 9)).exists()

    account = CalendarAccount.objects.get()
    client.post(f"/settings/calendars/{account.pk}/disconnect/", {"remove_events": "no"})
    assert not CalendarAccount.objects.exists()
    assert not SocialAccount.objects.exists()
    assert google.stopped_channels == [old_id, channel.channel_id]


def test_without_a_public_address_calendars_are_polled(
    client: Client, participant: User, google: FakeGoogle, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = ""
    user = google.add_user("student@gmail.example")
    _connect(client, google, user.email)
    assert CalendarAccount.objects.get().status == CalendarAccount.Status.ACTIVE
    assert not PushChannel.objects.exists()
    assert google.channels == {}


def test_a_rate_limited_sync_keeps_the_busy_time_and_retries_later(
    client: Client, participant: User, google: FakeGoogle
) -> None:
    user = google.add_user("student@gmail.example")
    google.add_event(user.primary, start=day_at(2, 9), end=day_at(2, 10))
    _connect(client, google, user.email)
    google.fail_next(429, retry_after=120, count=1)

    sync_account_task.delay(account_id=CalendarAccount.objects.get().pk, full=True)

    account = CalendarAccount.objects.get()
    assert account.status == CalendarAccount.Status.ERROR
    assert "try again" in account.status_detail
    assert BusyBlock.objects.count() == 1
