"""Connecting an on-premise Exchange calendar, in a real browser, against the fake EWS
served over real HTTP on 127.0.0.1 (tests/fakes/ews.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from apps.accounts.models import Membership, Role, User
from apps.calendars.models import Calendar, CalendarAccount
from tests.browser.conftest import LogIn, Screenshot
from tests.factories import MembershipFactory
from tests.fakes.ews import FakeExchange, ServedExchange, serve

SETTINGS_URL = re.compile(r"/settings/calendars/$")
CONNECT_URL = re.compile(r"/settings/calendars/connect/exchange/$")
FIELDS = ("Email address", "Password", "Exchange server URL", "Username")


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    # The fake listens on 127.0.0.1, which the outbound guard refuses unless allowed.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def participant(transactional_db: None) -> User:
    # The programme's default allows every service, Exchange included.
    membership: Membership = MembershipFactory.create(role=Role.PARTICIPANT)
    return membership.user


@pytest.fixture
def served() -> Iterator[ServedExchange]:
    exchange = FakeExchange()
    exchange.add_folder("Team meetings")
    yield from serve(exchange)


def _open_form(page: Page) -> None:
    page.goto("/settings/calendars/")
    page.get_by_role("link", name="Connect Exchange (on-premise)").click()
    expect(page).to_have_url(CONNECT_URL)


def _fill(
    page: Page, served: ServedExchange, *, password: str | None = None, username: str = ""
) -> None:
    page.get_by_label("Email address").fill(served.exchange.email)
    page.get_by_label("Password", exact=True).fill(
        served.exchange.password if password is None else password
    )
    page.get_by_label("Exchange server URL").fill(served.ews_url)
    if username:
        page.get_by_label("Username").fill(username)
    page.get_by_role("button", name="Test and connect").click()


def _raw_credentials(account: CalendarAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT credentials FROM {CalendarAccount._meta.db_table} WHERE id = %s",  # noqa: S608 - a model name
            [account.pk],
        )
        (raw,) = cursor.fetchone()
    return str(raw)


def test_participant_connects_exchange_and_sees_its_calendars(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    served: ServedExchange,
    allow_loopback: None,
) -> None:
    log_in(page, participant)
    _open_form(page)
    # Every field has a visible label the browser ties to its input.
    for name in FIELDS:
        expect(page.locator("label", has_text=re.compile(rf"^{name}$"))).to_be_visible()
        expect(page.get_by_label(name, exact=True)).to_be_visible()
    screenshot(page, "form")

    _fill(page, served, username="CONTOSO\\ada")

    expect(page).to_have_url(SETTINGS_URL)
    expect(page.get_by_role("status")).to_have_text(
        "Your Exchange (on-premise) calendar is connected."
    )
    for name in ("Calendar", "Team meetings"):
        expect(page.get_by_role("rowheader", name=re.compile(rf"^{name}"))).to_be_visible()
    screenshot(page, "connected")

    account = CalendarAccount.objects.get(owner=participant)
    assert account.provider == "exchange"
    assert account.identity == served.exchange.email
    assert account.server_url == served.ews_url
    assert account.credentials["username"] == "CONTOSO\\ada"
    assert served.exchange.password not in _raw_credentials(account)
    assert set(Calendar.objects.filter(account=account).values_list("name", flat=True)) == {
        "Calendar",
        "Team meetings",
    }


def test_wrong_password_shows_the_providers_message_and_tries_once(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    served: ServedExchange,
    allow_loopback: None,
) -> None:
    log_in(page, participant)
    _open_form(page)
    _fill(page, served, password="not-the-password")

    expect(page).to_have_url(CONNECT_URL)
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^\s*Exchange rejected the email address or password\..*not at risk")
    )
    # What the person typed is kept, except the password.
    expect(page.get_by_label("Email address")).to_have_value(served.exchange.email)
    expect(page.get_by_label("Exchange server URL")).to_have_value(served.ews_url)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    screenshot(page, "wrong-password")

    assert [(a.scheme, a.accepted) for a in served.exchange.attempts] == [("Basic", False)]
    assert not CalendarAccount.objects.filter(owner=participant).exists()
    assert not Calendar.objects.filter(owner=participant).exists()


def test_a_username_without_domain_is_a_field_error(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    participant: User,
    served: ServedExchange,
    allow_loopback: None,
) -> None:
    log_in(page, participant)
    _open_form(page)
    _fill(page, served, username="ada")

    expect(page).to_have_url(CONNECT_URL)
    username = page.get_by_label("Username")
    expect(username).to_have_value("ada")
    # The error is read out with the field (aria-describedby points at it).
    expect(username).to_have_accessible_description(
        re.compile(r"Write the username as DOMAIN\\user or user@domain\.")
    )
    expect(page.get_by_role("alert")).to_have_text(
        "Write the username as DOMAIN\\user or user@domain."
    )
    screenshot(page, "username-error")

    # The form stopped it: Exchange was never asked.
    assert served.exchange.attempts == []
    assert not CalendarAccount.objects.filter(owner=participant).exists()


def test_participant_connects_exchange_that_demands_ntlm(
    page: Page, log_in: LogIn, participant: User, allow_loopback: None
) -> None:
    exchange = FakeExchange(auth="ntlm")
    with contextmanager(serve)(exchange) as served:
        log_in(page, participant)
        _open_form(page)
        _fill(page, served)

        expect(page).to_have_url(SETTINGS_URL)
        expect(page.get_by_role("status")).to_have_text(
            "Your Exchange (on-premise) calendar is connected."
        )
    # exchangelib signed in with NTLM (the email address as the user, no domain): once
    # to test the connection, and again for the first sync, which runs inline in tests.
    assert exchange.attempts
    assert {(a.scheme, a.username, a.accepted) for a in exchange.attempts} == {
        ("NTLM", exchange.email, True)
    }
    assert CalendarAccount.objects.get(owner=participant).identity == exchange.email
