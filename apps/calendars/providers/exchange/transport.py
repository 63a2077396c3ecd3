"""exchangelib's connections, rebuilt so that every request goes through the guarded
HTTP adapter (providers/http.py): exchangelib builds its own requests sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from exchangelib.autodiscover.protocol import AutodiscoverProtocol
from exchangelib.protocol import DEFAULT_HEADERS, Protocol

from apps.calendars.providers.http import (
    DEFAULT_TIMEOUT,
    GuardedRequestsAdapter,
    OutboundPolicy,
    Resolver,
)

# Per-request timeout in seconds; exchangelib's default is 120.
REQUEST_TIMEOUT = DEFAULT_TIMEOUT[1]


class Guard:
    """What the protocol sessions need to reach only allowed servers, and count."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver, count: Callable[[], None]):
        self.policy = policy
        self.resolver = resolver
        self.count = count

    def session(self, useragent: str | None) -> requests.Session:
        session = requests.Session()
        # As guarded_requests_session: no .netrc passwords or proxies from the
        # environment, and no redirects (exchangelib reports them itself).
        session.trust_env = False
        session.max_redirects = 0
        session.headers.update(DEFAULT_HEADERS)
        if useragent:
            session.headers["User-Agent"] = useragent
        session.adapters.clear()
        # exchangelib wants one connection per session and does its own retries.
        adapter = GuardedRequestsAdapter(
            policy=self.policy,
            resolver=self.resolver,
            timeout=DEFAULT_TIMEOUT,
            pool_block=True,
            pool_connections=1,
            pool_maxsize=1,
            max_retries=0,
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.hooks["response"].append(lambda response, **kwargs: self.count())
        return session


class GuardedProtocol(Protocol):
    """exchangelib's Protocol, its sessions built by the guard. exchangelib calls
    `raw_session` (a classmethod upstream) on the instance everywhere, so an instance
    method here sees this connection's guard."""

    TIMEOUT = REQUEST_TIMEOUT
    guard: Guard

    def raw_session(self, prefix: str, *args: Any, **kwargs: Any) -> requests.Session:
        return self.guard.session(self.USERAGENT)


class GuardedAutodiscoverProtocol(AutodiscoverProtocol):
    TIMEOUT = REQUEST_TIMEOUT
    guard: Guard

    def raw_session(self, prefix: str, *args: Any, **kwargs: Any) -> requests.Session:
        return self.guard.session(self.USERAGENT)
