"""The Exchange provider against the fake EWS endpoint (tests/fakes/ews.py), served
over real HTTP so exchangelib, requests and the guarded adapter all run unmodified."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator

import pytest

from apps.calendars.providers.exchange import CONVENE_PROPERTY_SET, ExchangeProvider
from apps.calendars.providers.http import OutboundPolicy
from tests.calendars.contract import ProviderContract
from tests.fakes.ews import FakeExchange, ServedExchange, serve

LOOPBACK = OutboundPolicy(allowed_networks=[ipaddress.ip_network("127.0.0.0/8")])


class FakeEditor:
    """Another mail client editing the mailbox: straight into the fake's store."""

    def __init__(self, exchange: FakeExchange) -> None:
        self.exchange = exchange

    def add(self, *, start: dt.datetime, end: dt.datetime, busy: bool = True) -> str:
        status = "Busy" if busy else "Free"
        return self.exchange.add_item(subject="Elsewhere", start=start, end=end, status=status).id

    def move(self, handle: str, *, start: dt.datetime, end: dt.datetime) -> None:
        item = self.exchange.items[handle]
        item.start, item.end = start, end
        self.exchange.touch(item)

    def remove(self, handle: str) -> None:
        self.exchange.remove(handle)

    def count_convene_events(self) -> int:
        return sum(
            1
            for item in self.exchange.items.values()
            if (CONVENE_PROPERTY_SET, "ConveneUid") in item.extended
        )


@pytest.fixture
def fake_exchange() -> FakeExchange:
    return FakeExchange()


@pytest.fixture
def served(fake_exchange: FakeExchange) -> Iterator[ServedExchange]:
    yield from serve(fake_exchange)


@pytest.fixture
def provider(served: ServedExchange) -> Iterator[ExchangeProvider]:
    provider = ExchangeProvider(
        {
            "email": served.exchange.email,
            "password": served.exchange.password,
            "username": "",
            "server_url": served.ews_url,
        },
        policy=LOOPBACK,
    )
    yield provider
    provider.close()


@pytest.fixture
def calendar_id(fake_exchange: FakeExchange) -> str:
    return fake_exchange.calendar.id


@pytest.fixture
def remote(fake_exchange: FakeExchange) -> FakeEditor:
    return FakeEditor(fake_exchange)


class TestExchangeContract(ProviderContract):
    pass
