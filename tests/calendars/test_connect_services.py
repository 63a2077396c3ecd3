"""Connecting, choosing, refreshing and disconnecting, end to end against Radicale."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from caldav.collection import Calendar as DAVCalendar
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from apps.accounts.models import Role, User
from apps.calendars.models import BusyBlock, Calendar, CalendarAccount
from apps.calendars.providers import ical
from apps.calendars.providers.base import AuthError, EventPayload, ServerError
from apps.calendars.services import (
    calendar_account_connect,
    calendar_account_disconnect,
    calendar_choices_update,
    calendar_event_upsert,
    calendar_list_refresh,
)
from tests.caldav_servers import CalDAVServer, make_calendar
from tests.calendars.ics import vevent
from tests.factories import MembershipFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def participant() -> User:
    user = UserFactory(time_zone="Europe/Berlin")
    MembershipFactory(user=user, role=Role.PARTICIPANT)
    return user


@pytest.fixture
def dav_calendar(radicale_server: CalDAVServer) -> Iterator[DAVCalendar]:
    client, calendar = make_calendar(radicale_server)
    yield calendar
    calendar.delete()
    client.close()


def _connect(user: User, server: CalDAVServer, **overrides: str) -> CalendarAccount:
    credentials = {"username": server.username, "password": server.password, **overrides}
    return calendar_account_connect(
        owner=user, provider="caldav", credentials=credentials, server_url=server.url
    )


def _stored(dav: DAVCalendar) -> set[str]:
    listing = dav.get_objects_by_sync_token(load_objects=False)
    deleted = {str(url) for url in listing.deleted_urls}
    return {str(obj.url) for obj in listing} - deleted


def _ours(account: CalendarAccount, dav: DAVCalendar) -> Calendar:
    return account.calendars.get(external_id=str(dav.url))


def test_connect_tests_saves_encrypted_and_syncs(
    participant: User,
    radicale_server: CalDAVServer,
    dav_calendar: DAVCalendar,
    loopback_allowed: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    dav_calendar.add_event(vevent(f"e-{uuid.uuid4()}", start, start + dt.timedelta(hours=1)))
    with django_capture_on_commit_callbacks(execute=True):
        account = _connect(participant, radicale_server)
    assert account.identity == radicale_server.username
    assert account.credentials["password"] == radicale_server.password
    with connection.cursor() as cursor:
        cursor.execute(
            "select credentials from calendars_calendaraccount where id = %s", [account.pk]
        )
        raw = cursor.fetchone()[0]
    assert radicale_server.password not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    # The first calendar is checked for conflicts; the synced event is busy time.
    calendar = account.calendars.get(check_conflicts=True)
    account.refresh_from_db()
    assert account.status == CalendarAccount.Status.ACTIVE
    assert account.last_synced_at is not None
    if calendar.external_id == str(dav_calendar.url):
        assert BusyBlock.objects.filter(calendar=calendar, start=start).exists()


def test_wrong_password_saves_nothing(
    participant: User, radicale_server: CalDAVServer, loopback_allowed: None
) -> None:
    with pytest.raises(AuthError, match="rejected the username or password"):
        _connect(participant, radicale_server, password="wrong")
    assert not CalendarAccount.objects.exists()


def test_a_loopback_server_is_refused_unless_allowed(
    participant: User, radicale_server: CalDAVServer
) -> None:
    with pytest.raises(ServerError, match="ask your administrator"):
        _connect(participant, radicale_server)
    assert not CalendarAccount.objects.exists()


def test_services_the_programme_does_not_allow_are_refused(
    radicale_server: CalDAVServer, loopback_allowed: None
) -> None:
    user = UserFactory()
    MembershipFactory(user=user, program=ProgramFactory(allowed_calendar_services=["google"]))
    with pytest.raises(ValidationError, match="do not allow connecting CalDAV"):
        _connect(user, radicale_server)


def test_nobody_outside_a_programme_connects(
    radicale_server: CalDAVServer, loopback_allowed: None
) -> None:
    with pytest.raises(ValidationError):
        _connect(UserFactory(), radicale_server)


def test_the_account_limit_is_enforced(
    participant: User, radicale_server: CalDAVServer, loopback_allowed: None
) -> None:
    CalendarAccount.objects.create(owner=participant, provider="icloud", identity="a@icloud.com")
    CalendarAccount.objects.create(owner=participant, provider="icloud", identity="b@icloud.com")
    with pytest.raises(ValidationError, match="the most your programme allows"):
        _connect(participant, radicale_server)


def test_the_same_account_cannot_be_connected_twice(
    participant: User,
    radicale_server: CalDAVServer,
    dav_calendar: DAVCalendar,
    loopback_allowed: None,
) -> None:
    _connect(participant, radicale_server)
    with pytest.raises(ValidationError, match="already connected"):
        _connect(participant, radicale_server)


def test_choices_refresh_and_disconnect_removing_convenes_events(
    participant: User,
    radicale_server: CalDAVServer,
    dav_calendar: DAVCalendar,
    loopback_allowed: None,
) -> None:
    account = _connect(participant, radicale_server)
    ours = _ours(account, dav_calendar)
    calendar_choices_update(
        account=account,
        actor=participant,
        conflict_calendar_ids=[ours.pk],
        write_calendar_id=ours.pk,
    )
    ours.refresh_from_db()
    assert ours.check_conflicts
    assert ours.is_write_target
    assert account.calendars.filter(check_conflicts=True).count() == 1

    client, extra = make_calendar(radicale_server)
    try:
        names = {c.name for c in calendar_list_refresh(account=account, actor=participant)}
        assert str(extra.get_display_name()) in names
    finally:
        extra.delete()
        client.close()
    names = {c.name for c in calendar_list_refresh(account=account, actor=participant)}
    assert str(extra.get_display_name()) not in names
    assert account.calendars.filter(is_deleted=True).exists()

    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    key = f"test-{uuid.uuid4().hex}"
    calendar_event_upsert(
        calendar=ours,
        key=key,
        payload=EventPayload(
            uid=ical.convene_uid(key),
            title="Advice",
            start=start,
            end=start + dt.timedelta(hours=1),
        ),
    )
    assert len(_stored(dav_calendar)) == 1
    problems = calendar_account_disconnect(account=account, actor=participant, remove_events=True)
    assert problems == []
    assert not CalendarAccount.objects.filter(pk=account.pk).exists()
    assert _stored(dav_calendar) == set()


def test_disconnect_keeping_events_leaves_them(
    participant: User,
    radicale_server: CalDAVServer,
    dav_calendar: DAVCalendar,
    loopback_allowed: None,
) -> None:
    account = _connect(participant, radicale_server)
    ours = _ours(account, dav_calendar)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    calendar_event_upsert(
        calendar=ours,
        key="k1",
        payload=EventPayload(
            uid=ical.convene_uid("k1"),
            title="Advice",
            start=start,
            end=start + dt.timedelta(hours=1),
        ),
    )
    calendar_account_disconnect(account=account, actor=participant, remove_events=False)
    assert len(_stored(dav_calendar)) == 1


def test_only_the_owner_changes_an_account(
    participant: User,
    radicale_server: CalDAVServer,
    dav_calendar: DAVCalendar,
    loopback_allowed: None,
) -> None:
    account = _connect(participant, radicale_server)
    outsider = UserFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    for intruder in (outsider, staff):
        with pytest.raises(PermissionDenied):
            calendar_account_disconnect(account=account, actor=intruder, remove_events=True)
        with pytest.raises(PermissionDenied):
            calendar_list_refresh(account=account, actor=intruder)
        with pytest.raises(PermissionDenied):
            calendar_choices_update(
                account=account, actor=intruder, conflict_calendar_ids=[], write_calendar_id=None
            )
    assert CalendarAccount.objects.filter(pk=account.pk).exists()


def test_a_read_only_calendar_cannot_receive_appointments(participant: User) -> None:
    account = CalendarAccount.objects.create(owner=participant, provider="caldav", identity="x")
    shared = Calendar.objects.create(
        account=account,
        owner=participant,
        external_id="/shared/",
        name="Holidays",
        is_read_only=True,
    )
    with pytest.raises(ValidationError, match="read-only"):
        calendar_choices_update(
            account=account,
            actor=participant,
            conflict_calendar_ids=[shared.pk],
            write_calendar_id=shared.pk,
        )
