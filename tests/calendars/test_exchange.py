"""The Exchange provider's own behaviour, beyond the shared contract: what Exchange
sends (recurrences, all-day events, free/busy states), and how it fails without ever
locking an account or talking to a server outside the person's domain."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection

from apps.accounts.models import Role, User
from apps.calendars.models import CalendarAccount
from apps.calendars.providers.base import (
    AuthError,
    BusyKind,
    EventPayload,
    ServerError,
    TransientError,
    Window,
)
from apps.calendars.providers.exchange import ExchangeProvider
from apps.calendars.providers.http import IPAddress, OutboundPolicy
from apps.calendars.services import calendar_account_connect
from tests.calendars.contract import day_at, window_ahead
from tests.calendars.test_exchange_contract import LOOPBACK, FakeEditor
from tests.factories import MembershipFactory, UserFactory
from tests.fakes.ews import FakeExchange, Occurrence, ServedExchange, serve


@pytest.fixture
def fake_exchange() -> FakeExchange:
    return FakeExchange()


@pytest.fixture
def served(fake_exchange: FakeExchange) -> Iterator[ServedExchange]:
    yield from serve(fake_exchange)


def _provider(served: ServedExchange, **overrides: Any) -> ExchangeProvider:
    credentials = {
        "email": served.exchange.email,
        "password": served.exchange.password,
        "username": "",
        "server_url": served.ews_url,
    }
    options = {"policy": LOOPBACK}
    for key in ("policy", "resolver", "time_zone"):
        if key in overrides:
            options[key] = overrides.pop(key)
    return ExchangeProvider({**credentials, **overrides}, **options)


def _authenticated(exchange: FakeExchange) -> list[str]:
    return [r.operation for r in exchange.requests if r.authorization]


def test_recurring_meeting_with_an_exception_is_expanded_under_the_master_id(
    served: ServedExchange,
) -> None:
    first = day_at(3, 9)
    occurrences = [
        Occurrence(first, first, first + dt.timedelta(hours=1)),
        # The second week's meeting was moved to the afternoon: an exception.
        Occurrence(
            first + dt.timedelta(days=7),
            first + dt.timedelta(days=7, hours=5),
            first + dt.timedelta(days=7, hours=6),
        ),
        Occurrence(
            first + dt.timedelta(days=14),
            first + dt.timedelta(days=14),
            first + dt.timedelta(days=14, hours=1),
        ),
    ]
    master = served.exchange.add_item(
        subject="Weekly", start=first, end=first + dt.timedelta(hours=1), occurrences=occurrences
    )
    changes = _provider(served).sync_busy(served.exchange.calendar.id, window_ahead(), None)
    assert {i.event_id for i in changes.instances} == {master.id}
    assert sorted((i.instance_start, i.start) for i in changes.instances) == [
        (o.original_start, o.start) for o in occurrences
    ]


def test_all_day_events_cover_the_owners_whole_days(served: ServedExchange) -> None:
    day = day_at(4, 0)
    served.exchange.add_item(
        subject="Conference", start=day, end=day + dt.timedelta(days=2), all_day=True
    )
    (instance,) = (
        _provider(served).sync_busy(served.exchange.calendar.id, window_ahead(), None).instances
    )
    assert instance.all_day
    # EWS's end is exclusive; exchangelib makes it an inclusive date: two days, not one.
    assert (instance.start, instance.end) == (day, day + dt.timedelta(days=2))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("Busy", BusyKind.BUSY),
        ("Tentative", BusyKind.TENTATIVE),
        ("OOF", BusyKind.OUT_OF_OFFICE),
        ("Free", None),
        ("WorkingElsewhere", None),
    ],
)
def test_free_busy_status_decides_the_kind(
    served: ServedExchange, status: str, kind: BusyKind | None
) -> None:
    served.exchange.add_item(subject="x", start=day_at(2, 9), end=day_at(2, 10), status=status)
    changes = _provider(served).sync_busy(served.exchange.calendar.id, window_ahead(), None)
    assert [i.kind for i in changes.instances] == ([kind] if kind else [])


def test_a_sync_without_changes_is_one_request(served: ServedExchange) -> None:
    FakeEditor(served.exchange).add(start=day_at(2, 9), end=day_at(2, 10))
    provider = _provider(served)
    state = provider.sync_busy(served.exchange.calendar.id, window_ahead(), None).state
    served.exchange.requests.clear()
    quiet = provider.sync_busy(served.exchange.calendar.id, window_ahead(), state)
    assert served.exchange.operations() == ["SyncFolderItems"]
    assert quiet.requests == 1


def test_a_wrong_password_is_tried_exactly_once(served: ServedExchange) -> None:
    provider = _provider(served, password="wrong")
    with pytest.raises(AuthError, match="rejected the email address or password"):
        provider.test_connection()
    assert len(_authenticated(served.exchange)) == 1


def test_a_locked_account_is_explained(served: ServedExchange) -> None:
    served.exchange.locked = True
    with pytest.raises(AuthError, match="locked out"):
        _provider(served).test_connection()
    assert len(_authenticated(served.exchange)) == 1


def test_server_busy_is_transient_with_the_servers_back_off(served: ServedExchange) -> None:
    provider = _provider(served)
    provider.test_connection()
    served.exchange.busy_answers.append(30_000)
    with pytest.raises(TransientError) as caught:
        provider.sync_busy(served.exchange.calendar.id, window_ahead(), None)
    assert caught.value.retry_after == 30.0
    # Not retried behind the engine's back: the busy answer was the last request.
    assert served.exchange.operations()[-1] == "SyncFolderItems"


def test_an_address_refused_by_the_guard_is_never_contacted(served: ServedExchange) -> None:
    with pytest.raises(ServerError, match="loopback"):
        _provider(served, policy=OutboundPolicy()).test_connection()
    assert served.exchange.requests == []


def test_a_server_that_is_not_ews_is_explained(served: ServedExchange) -> None:
    provider = _provider(served, server_url=f"{served.base}/owa/")
    with pytest.raises(ServerError, match="Exchange Web Services"):
        provider.test_connection()
    assert not _authenticated(served.exchange)


def test_an_unreachable_server_is_explained() -> None:
    provider = ExchangeProvider(
        {"email": "ada@contoso.test", "password": "x", "server_url": "http://127.0.0.1:9/"},
        policy=LOOPBACK,
    )
    with pytest.raises(ServerError, match="could not reach"):
        provider.test_connection()


def test_a_retried_write_updates_the_first_event(served: ServedExchange) -> None:
    provider = _provider(served)
    event = EventPayload(
        uid="appointment-7-calendar-1@convene.test",
        title="Mock interview",
        start=day_at(5, 9),
        end=day_at(5, 10),
    )
    first = provider.upsert_event(served.exchange.calendar.id, event)
    # The answer to the first write was lost: the retry knows no ref.
    moved = EventPayload(**{**event.__dict__, "start": day_at(5, 11), "end": day_at(5, 12)})
    again = provider.upsert_event(served.exchange.calendar.id, moved)
    assert again.external_id == first.external_id
    (item,) = served.exchange.items.values()
    assert (item.start, item.end) == (day_at(5, 11), day_at(5, 12))
    assert served.exchange.operations().count("CreateItem") == 1


class _Resolver:
    """Sends every name to the fake, remembering which names were asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [ipaddress.ip_address("127.0.0.1")]


def test_autodiscover_finds_the_server_in_the_users_domain(
    served: ServedExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real templates are https on port 443; the fake is plain http on a free port.
    monkeypatch.setattr(
        ExchangeProvider,
        "AUTODISCOVER_URLS",
        (
            f"http://{{domain}}:{served.port}/nothing-here",
            f"http://autodiscover.{{domain}}:{served.port}/autodiscover/autodiscover.svc",
        ),
    )
    resolver = _Resolver()
    provider = _provider(served, server_url="", resolver=resolver)
    assert provider.test_connection().display == served.exchange.email
    assert set(resolver.asked) == {"contoso.test", "autodiscover.contoso.test", "127.0.0.1"} - {
        "127.0.0.1"
    } or set(resolver.asked) <= {"contoso.test", "autodiscover.contoso.test", "127.0.0.1"}
    assert "autodiscover.contoso.test" in resolver.asked
    assert "GetUserSettingsRequestMessage" in served.exchange.operations()


def test_autodiscover_never_leaves_the_users_domain(
    served: ServedExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ExchangeProvider,
        "AUTODISCOVER_URLS",
        tuple(
            template.replace("https://", "http://").replace("}/", f"}}:{served.port}/nope/")
            for template in ExchangeProvider.AUTODISCOVER_URLS
        ),
    )
    resolver = _Resolver()
    provider = _provider(served, server_url="", resolver=resolver)
    with pytest.raises(ServerError, match=r"could not find the Exchange server for contoso\.test"):
        provider.test_connection()
    # Only names inside contoso.test: never autodiscover.test, never a DNS SRV target.
    assert set(resolver.asked) == {"contoso.test", "autodiscover.contoso.test"}
    assert {r.host.split(":")[0] for r in served.exchange.requests} == set(resolver.asked)
    assert not _authenticated(served.exchange)


def test_the_real_autodiscover_addresses_are_https_in_the_users_domain() -> None:
    assert ExchangeProvider.AUTODISCOVER_URLS == (
        "https://{domain}/autodiscover/autodiscover.svc",
        "https://autodiscover.{domain}/autodiscover/autodiscover.svc",
    )


@pytest.mark.django_db
def test_connecting_saves_the_account_with_encrypted_credentials(
    served: ServedExchange, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    user: User = UserFactory(time_zone="Europe/Berlin")
    MembershipFactory(user=user, role=Role.PARTICIPANT)
    served.exchange.add_folder("Team calendar")
    account = calendar_account_connect(
        owner=user,
        provider="exchange",
        credentials={
            "email": served.exchange.email,
            "password": served.exchange.password,
            "username": "",
        },
        server_url=served.ews_url,
    )
    assert account.identity == served.exchange.email
    assert sorted(account.calendars.values_list("name", flat=True)) == ["Calendar", "Team calendar"]
    assert CalendarAccount.objects.get(pk=account.pk).credentials["password"] == "s3cret!"
    with connection.cursor() as cursor:
        cursor.execute(
            "select credentials::text from calendars_calendaraccount where id = %s", [account.pk]
        )
        (raw,) = cursor.fetchone()
    assert "s3cret!" not in raw


def test_window_is_respected(served: ServedExchange) -> None:
    served.exchange.add_item(subject="later", start=day_at(90, 9), end=day_at(90, 10))
    window = Window(start=day_at(0, 0), end=day_at(30, 0))
    assert _provider(served).sync_busy(served.exchange.calendar.id, window, None).instances == []


def test_an_untrusted_certificate_is_explained(tmp_path: Any) -> None:
    # A server whose certificate nobody vouches for (self-signed).
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.contoso.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        provider = ExchangeProvider(
            {
                "email": "ada@contoso.test",
                "password": "pw",
                "username": "",
                "server_url": f"https://127.0.0.1:{server.server_address[1]}/EWS/Exchange.asmx",
            },
            policy=LOOPBACK,
        )
        with pytest.raises(ServerError, match="certificate"):
            provider.test_connection()
    finally:
        server.shutdown()
        server.server_close()
