"""Microsoft end to end: work and personal accounts connect through allauth against
the fake identity platform and Graph; subscriptions, notifications and privacy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from allauth.socialaccount.models import SocialToken
from django.apps import apps
from django.test import Client
from django.utils import timezone

from apps.accounts.models import User
from apps.calendars.models import BusyBlock, Calendar, CalendarAccount, PushChannel, SyncRun
from tests.calendars.contract import day_at
from tests.calendars.oauth_flow import finish_connect, graph_consent, start_connect
from tests.conftest import Personas
from tests.fakes.microsoft import FakeMicrosoft

SECRET_SUBJECT = "Disciplinary hearing, room 4"


@pytest.fixture
def participant(personas: Personas, client: Client) -> User:
    client.force_login(personas.participant)
    return personas.participant


def _connect(client: Client, graph: FakeMicrosoft, mail: str, *, accept: bool = True) -> Any:
    graph.signed_in = mail
    authorize = start_connect(client, "/settings/calendars/connect/microsoft/")
    return finish_connect(client, graph_consent(authorize, accept=accept))


@pytest.mark.parametrize(
    ("mail", "personal"), [("ada@contoso.example", False), ("ada.l@outlook.example", True)]
)
def test_work_and_personal_accounts_connect_and_sync_without_subjects(
    client: Client, participant: User, graph: FakeMicrosoft, mail: str, personal: bool
) -> None:
    mailbox = graph.add_mailbox(mail, personal=personal)
    graph.add_event(
        mailbox.default_calendar_id, start=day_at(2, 9), end=day_at(2, 10), subject=SECRET_SUBJECT
    )
    graph.add_event(
        mailbox.default_calendar_id, start=day_at(3, 9), end=day_at(3, 10), show_as="free"
    )

    response = _connect(client, graph, mail)

    assert response["Location"] == "/settings/calendars/"
    account = CalendarAccount.objects.get(owner=participant)
    assert (account.provider, account.identity, account.status) == (
        "microsoft",
        mail,
        CalendarAccount.Status.ACTIVE,
    )
    assert account.credentials["refresh_token"]
    assert not SocialToken.objects.exists()
    calendar = Calendar.objects.get(account=account)
    assert calendar.is_write_target
    assert list(BusyBlock.objects.values_list("start", "end")) == [(day_at(2, 9), day_at(2, 10))]
    # The subscription passed Graph's validation handshake against Convene's endpoint.
    channel = PushChannel.objects.get(calendar=calendar)
    assert channel.expires_at > timezone.now() + dt.timedelta(days=1)
    for model in apps.get_models():
        for row in model.objects.all().values():
            assert SECRET_SUBJECT not in str(row), model


def test_declining_consent_changes_nothing(
    client: Client, participant: User, graph: FakeMicrosoft
) -> None:
    graph.add_mailbox("ada@contoso.example")
    response = _connect(client, graph, "ada@contoso.example", accept=False)
    assert response["Location"] == "/settings/calendars/"
    assert not CalendarAccount.objects.exists()
    page = client.get("/settings/calendars/").content.decode()
    assert "was cancelled; nothing was changed" in page
    assert "Try again" in page


def test_a_change_notification_syncs_that_calendar_only(
    client: Client, participant: User, graph: FakeMicrosoft
) -> None:
    mailbox = graph.add_mailbox("ada@contoso.example")
    _connect(client, graph, mailbox.mail)
    calendar = Calendar.objects.get()
    SyncRun.objects.all().delete()

    graph.add_event(mailbox.default_calendar_id, start=day_at(4, 13), end=day_at(4, 14))
    assert graph.notify(mailbox.default_calendar_id) == [202]

    assert [(r.calendar_id, r.trigger) for r in SyncRun.objects.all()] == [
        (calendar.pk, SyncRun.Trigger.PUSH)
    ]
    assert BusyBlock.objects.filter(start=day_at(4, 13)).exists()


def test_lifecycle_events_renew_and_recreate_the_subscription(
    client: Client, participant: User, graph: FakeMicrosoft
) -> None:
    mailbox = graph.add_mailbox("ada@contoso.example")
    _connect(client, graph, mailbox.mail)
    channel = PushChannel.objects.get()
    PushChannel.objects.update(expires_at=timezone.now() + dt.timedelta(minutes=30))

    assert graph.lifecycle(channel.channel_id, "reauthorizationRequired") == 202
    renewed = PushChannel.objects.get()
    assert renewed.channel_id == channel.channel_id  # Graph renews in place (PATCH)
    assert renewed.expires_at > timezone.now() + dt.timedelta(days=1)
    assert renewed.renewed_at is not None

    assert graph.lifecycle(channel.channel_id, "subscriptionRemoved") == 202
    replaced = PushChannel.objects.get()
    assert replaced.channel_id != channel.channel_id
    graph.add_event(mailbox.default_calendar_id, start=day_at(6, 8), end=day_at(6, 9))
    assert graph.notify(mailbox.default_calendar_id) == [202]
    assert BusyBlock.objects.filter(start=day_at(6, 8)).exists()
