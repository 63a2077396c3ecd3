"""Exchange on-premise under NTLM, the scheme most Exchange servers offer, against the
fake EWS speaking the MS-NLMP handshake over real keep-alive HTTP.

The fake checks who signs in, not the NTLMv2 response (see tests/fakes/ews.py), so
a wrong password is covered under Basic in test_exchange.py; here a wrong user name
stands in for wrong credentials."""

from __future__ import annotations

import base64
import datetime as dt
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from apps.calendars.providers.base import AuthError
from apps.calendars.providers.exchange import ExchangeProvider
from tests.calendars.contract import day_at, window_ahead
from tests.calendars.test_exchange_contract import LOOPBACK
from tests.fakes.ews import NTLM_SIGNATURE, FakeExchange, ServedExchange, ntlm_challenge, serve


@pytest.fixture
def ntlm_exchange() -> FakeExchange:
    return FakeExchange(auth="ntlm")


@pytest.fixture
def served(ntlm_exchange: FakeExchange) -> Iterator[ServedExchange]:
    yield from serve(ntlm_exchange)


def _provider(served: ServedExchange, **overrides: Any) -> ExchangeProvider:
    credentials = {
        "email": served.exchange.email,
        "password": served.exchange.password,
        "username": "",
        "server_url": served.ews_url,
        **overrides,
    }
    return ExchangeProvider(credentials, policy=LOOPBACK)


def _ntlm_types(served: ServedExchange) -> list[int]:
    """The NTLM message types the fake received, in order (0: no NTLM header)."""
    types = []
    for request in served.exchange.requests:
        scheme, _, value = request.authorization.partition(" ")
        message = base64.b64decode(value) if scheme == "NTLM" else b""
        ok = message.startswith(NTLM_SIGNATURE)
        types.append(struct.unpack_from("<I", message, 8)[0] if ok else 0)
    return types


def test_connect_list_and_sync_under_ntlm(served: ServedExchange) -> None:
    exchange = served.exchange
    team = exchange.add_folder("Team")
    item = exchange.add_item(subject="Board", start=day_at(2, 9), end=day_at(2, 10))
    provider = _provider(served)
    try:
        identity = provider.test_connection()
        calendars = provider.list_calendars()
        changes = provider.sync_busy(exchange.calendar.id, window_ahead(), None)
    finally:
        provider.close()

    assert identity.display == exchange.email
    assert {c.name for c in calendars} == {"Calendar", "Team"}
    assert next(c for c in calendars if c.primary).external_id == exchange.calendar.id
    assert team.id in {c.external_id for c in calendars}
    assert [(i.event_id, i.start, i.end) for i in changes.instances] == [
        (item.id, day_at(2, 9), day_at(2, 10))
    ]
    # One handshake for the whole session: the connection stays signed in, so later
    # requests carry no Authorization header and need no new attempt.
    assert [(a.scheme, a.username, a.accepted) for a in exchange.attempts] == [
        ("NTLM", exchange.email, True)
    ]
    assert {"GetFolder", "FindFolder", "SyncFolderItems", "FindItem"} <= set(exchange.operations())


def test_exchangelib_chose_ntlm(served: ServedExchange) -> None:
    provider = _provider(served)
    try:
        provider.test_connection()
        assert provider.account.protocol.auth_type == "NTLM"
    finally:
        provider.close()
    types = _ntlm_types(served)
    # exchangelib first asks without credentials (to taste the auth types), then
    # requests_ntlm answers the 401 with NEGOTIATE, then AUTHENTICATE; nothing Basic.
    assert types[:1] == [0]
    assert types.count(1) == types.count(3) == 1
    assert types.index(1) < types.index(3)
    assert not any(r.authorization.startswith("Basic") for r in served.exchange.requests)


def test_domain_user_signs_in_under_ntlm(served: ServedExchange) -> None:
    provider = _provider(served, username="CONTOSO\\ada")
    try:
        provider.test_connection()
    finally:
        provider.close()
    assert [(a.username, a.accepted) for a in served.exchange.attempts] == [("CONTOSO\\ada", True)]


def test_a_wrong_user_name_under_ntlm_is_one_attempt(served: ServedExchange) -> None:
    provider = _provider(served, username="CONTOSO\\mallory")
    with pytest.raises(AuthError, match="rejected the email address or password"):
        provider.test_connection()
    provider.close()
    assert [(a.scheme, a.username, a.accepted) for a in served.exchange.attempts] == [
        ("NTLM", "CONTOSO\\mallory", False)
    ]
    assert _ntlm_types(served).count(3) == 1


def test_a_locked_account_under_ntlm_is_explained(served: ServedExchange) -> None:
    served.exchange.locked = True
    provider = _provider(served)
    with pytest.raises(AuthError, match="locked out"):
        provider.test_connection()
    provider.close()
    assert len(served.exchange.attempts) == 1


def test_the_challenge_is_a_well_formed_type_2_message() -> None:
    # MS-NLMP 2.2.1.2, field by field.
    message = ntlm_challenge(b"\x01\x02\x03\x04\x05\x06\x07\x08", 0xE2088297)
    assert message[:8] == NTLM_SIGNATURE
    assert struct.unpack_from("<I", message, 8) == (2,)
    name_len, name_max, name_offset = struct.unpack_from("<HHI", message, 12)
    assert message[name_offset : name_offset + name_len].decode("utf-16-le") == "CONTOSO"
    assert name_max == name_len
    (flags,) = struct.unpack_from("<I", message, 20)
    assert flags & 0x00800000  # NTLMSSP_NEGOTIATE_TARGET_INFO
    assert flags & 0x00000001  # NTLMSSP_NEGOTIATE_UNICODE
    assert message[24:32] == b"\x01\x02\x03\x04\x05\x06\x07\x08"
    assert message[32:40] == b"\x00" * 8
    info_len, _info_max, info_offset = struct.unpack_from("<HHI", message, 40)
    info = message[info_offset : info_offset + info_len]
    pairs: list[tuple[int, bytes]] = []
    at = 0
    while at < len(info):
        av_id, av_len = struct.unpack_from("<HH", info, at)
        pairs.append((av_id, info[at + 4 : at + 4 + av_len]))
        at += 4 + av_len
    assert pairs[-1] == (0, b"")  # MsvAvEOL ends the list
    assert {av_id for av_id, _ in pairs} == {0, 1, 2, 3, 4, 7}
    (filetime,) = struct.unpack("<Q", dict(pairs)[7])
    stamp = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=filetime // 10)
    assert abs(stamp - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
