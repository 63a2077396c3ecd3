"""What Google Calendar and Microsoft Graph have in common: JSON over HTTPS with a
bearer token that expires, rate limits with Retry-After, and push channels.

The base URLs come from settings (never from a user), so these providers use a plain
`requests` session with timeouts rather than the guarded client, which exists for
addresses people type in.

Tokens come from a `TokenSource`. Outside tests it is `apps.calendars.tokens`, which
refreshes under a row lock and stores rotated refresh tokens; a provider only asks for
a token, and for a fresh one when the service answered 401.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol

import requests

from apps.calendars.providers.base import (
    AuthError,
    CalendarProvider,
    PermissionError,
    ServerError,
    TransientError,
)
from apps.calendars.providers.http import DEFAULT_TIMEOUT, OutboundPolicy

# A Retry-After this short is waited out in place; a longer one ends the sync with a
# TransientError carrying it, so the task queue waits instead of a worker.
MAX_INLINE_WAIT_SECONDS = 5.0
MAX_INLINE_RETRIES = 2


class TokenSource(Protocol):
    def access_token(self, *, force_refresh: bool = False) -> str:
        """A bearer token; with `force_refresh`, a new one even if the stored one has
        not expired yet (the service refused it). Raises AuthError when the grant is
        revoked, TransientError when the token endpoint is unreachable."""


@dataclass
class StaticToken:
    """A token that cannot be refreshed: a 401 is final."""

    token: str

    def access_token(self, *, force_refresh: bool = False) -> str:
        if force_refresh:
            raise AuthError("The calendar service no longer accepts Convene's access.")
        return self.token


@dataclass(frozen=True)
class OAuthApp:
    """A registered OAuth client and the token endpoint it uses."""

    client_id: str
    secret: str
    token_url: str


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str  # empty when the service did not rotate it: keep the old one
    expires_at: dt.datetime
    scopes: frozenset[str]


def token_refresh(
    app: OAuthApp, refresh_token: str, *, provider_name: str, scope: str = ""
) -> TokenGrant:
    """Trade a refresh token for a new access token (RFC 6749, section 6)."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": app.client_id,
        "client_secret": app.secret,
    }
    if scope:
        data["scope"] = scope
    try:
        response = requests.post(app.token_url, data=data, timeout=DEFAULT_TIMEOUT)
    except requests.RequestException as error:
        raise TransientError(
            f"{provider_name} could not be reached to renew Convene's access."
        ) from error
    return token_grant_from_response(response, provider_name=provider_name)


def token_grant_from_response(response: requests.Response, *, provider_name: str) -> TokenGrant:
    """Read a token endpoint's answer; the error codes are RFC 6749, section 5.2."""
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(
            f"{provider_name} is not renewing access right now.",
            retry_after=retry_after_seconds(response),
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        if body.get("error") in {"invalid_grant", "invalid_client", "unauthorized_client"}:
            raise AuthError(
                f"{provider_name} no longer lets Convene see your calendar: the access was "
                "revoked or has expired. Reconnect the calendar to continue."
            )
        raise TransientError(f"{provider_name} refused to renew Convene's access.")
    try:
        expires_in = int(body.get("expires_in", 3600))
        return TokenGrant(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token", "")),
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in),
            scopes=frozenset(str(body.get("scope", "")).split()),
        )
    except (KeyError, ValueError) as error:
        raise TransientError(f"{provider_name} sent an unreadable token answer.") from error


def retry_after_seconds(response: requests.Response) -> float | None:
    """`Retry-After` as seconds (RFC 9110, 10.2.3: delay-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass(frozen=True)
class PushSubscription:
    """A push channel (Google) or subscription (Microsoft) for one calendar."""

    channel_id: str
    resource_id: str
    expires_at: dt.datetime


def no_limit(key: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


class OAuthProvider(CalendarProvider):
    """A calendar service reached with a bearer token. Subclasses say how their
    service signals a rate limit and a missing permission."""

    supports_push: ClassVar[bool] = True
    integrated_conferencing: ClassVar[bool] = True
    # How many requests may reach one mailbox at once, across all workers (None: the
    # service sets no such limit).
    mailbox_concurrency: ClassVar[int | None] = None
    # The delegated scopes asked for when a calendar is connected, each with the
    # sentence that tells the person what it lets Convene do.
    scopes: ClassVar[dict[str, str]]

    def __init__(
        self,
        credentials: Mapping[str, Any],
        *,
        time_zone: str = "UTC",
        policy: OutboundPolicy | None = None,
        tokens: TokenSource | None = None,
        limiter: Callable[[str], AbstractContextManager[None]] = no_limit,
    ) -> None:
        super().__init__(credentials, time_zone=time_zone, policy=policy)
        self.tokens = tokens or StaticToken(str(credentials.get("access_token", "")))
        # Bounds concurrent requests per mailbox across workers (Graph allows 4).
        self.limiter = limiter
        self.session = requests.Session()
        self.requests = 0
        self.configure()

    @abc.abstractmethod
    def configure(self) -> None:
        """Read the service's addresses from settings."""

    def close(self) -> None:
        self.session.close()

    # -- subclass hooks -----------------------------------------------------------

    def limiter_key(self) -> str:
        """Whose request budget a request counts against."""
        return f"{self.key}:{self.credentials.get('identity', '')}"

    def is_rate_limited(self, response: requests.Response) -> bool:
        return response.status_code == 429

    def permission_message(self, response: requests.Response) -> str:
        return (
            f"{self.name} refused Convene access to this calendar. Reconnect it and "
            "allow every permission Convene asks for."
        )

    # -- push ---------------------------------------------------------------------

    @abc.abstractmethod
    def watch(self, calendar_id: str, *, address: str, token: str) -> PushSubscription:
        """Ask the service to call `address` when the calendar changes; `token` comes
        back with every notification, so forged ones can be told apart."""

    @abc.abstractmethod
    def renew(
        self, calendar_id: str, subscription: PushSubscription, *, address: str, token: str
    ) -> PushSubscription:
        """Extend a subscription before it expires; the returned one replaces it."""

    @abc.abstractmethod
    def unwatch(self, subscription: PushSubscription) -> None:
        """Stop notifications; one the service already forgot is success."""

    # -- the one way requests are made ------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one API request with the bearer token. A 401 gets one retry with a
        refreshed token; short rate-limit waits are waited out; everything else that
        is not in `ok` becomes a typed provider error."""
        refreshed = False
        waits = 0
        while True:
            token = self.tokens.access_token(force_refresh=refreshed)
            sent = {**(headers or {}), "Authorization": f"Bearer {token}"}
            try:
                with self.limiter(self.limiter_key()):
                    self.requests += 1
                    response = self.session.request(
                        method, url, headers=sent, timeout=DEFAULT_TIMEOUT, **kwargs
                    )
            except requests.Timeout as error:
                raise TransientError(f"{self.name} did not answer in time.") from error
            except requests.RequestException as error:
                raise TransientError(f"{self.name} could not be reached.") from error
            status = response.status_code
            if status in ok:
                return response
            if status == 401 and not refreshed:
                refreshed = True
                continue
            if status == 401:
                raise AuthError(
                    f"{self.name} no longer accepts Convene's access to your calendar. "
                    "Reconnect the calendar to continue."
                )
            if self.is_rate_limited(response) or status >= 500:
                wait = retry_after_seconds(response)
                if (
                    wait is not None
                    and wait <= MAX_INLINE_WAIT_SECONDS
                    and waits < MAX_INLINE_RETRIES
                ):
                    waits += 1
                    time.sleep(wait)
                    continue
                what = "is limiting how fast Convene may read" if status < 500 else "has a problem"
                raise TransientError(
                    f"{self.name} {what} right now.",
                    retry_after=wait if wait is not None else None,
                )
            if status == 403:
                raise PermissionError(self.permission_message(response))
            raise ServerError(f"{self.name} refused a request ({status}).")
