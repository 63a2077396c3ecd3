"""A stateful fake of Microsoft Graph v1.0 (calendars) and the Microsoft identity
platform v2.0, served over real HTTP on 127.0.0.1 by a threaded server.

Built from Microsoft's documentation:

- Calendars, events and their JSON: https://learn.microsoft.com/graph/api/resources/calendar,
  https://learn.microsoft.com/graph/api/resources/event, create/update/delete event
  (https://learn.microsoft.com/graph/api/calendar-post-events, .../event-update,
  .../event-delete), and the `Prefer: outlook.timezone` header.
- calendarView delta: https://learn.microsoft.com/graph/api/event-delta and
  https://learn.microsoft.com/graph/delta-query-events (no `$select`/`$filter`,
  `Prefer: odata.maxpagesize`, `@odata.nextLink` pages, a deltaLink per round,
  `@removed` for deletions and for events that changed outside the window), expired
  tokens as 410 syncStateNotFound (https://learn.microsoft.com/graph/delta-query-overview).
- Subscriptions: https://learn.microsoft.com/graph/api/resources/subscription, the
  validation handshake and notification payloads of
  https://learn.microsoft.com/graph/change-notifications-delivery-webhooks, lifecycle
  notifications (https://learn.microsoft.com/graph/change-notifications-lifecycle-events).
- Errors and throttling: https://learn.microsoft.com/graph/errors,
  https://learn.microsoft.com/graph/throttling (429 with Retry-After).
- Identity platform: the authorization code flow
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow), its
  `common`/`organizations`/`consumers` tenants, refresh tokens that are replaced on
  every use, and its AADSTS error codes
  (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
- App-only access: the client credentials grant with `<resource>/.default`
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
  for apps registered in a tenant (`add_app`), whose tokens carry the application
  permissions an administrator consented (`grant_admin_consent`; without consent the
  token is still issued, with no roles, and Graph answers 403), reach `/users/{id|upn}`
  of that tenant's mailboxes only and never `/me`; the tenant's OpenID configuration
  (`/{tenant}/v2.0/.well-known/openid-configuration`, where an unknown tenant is
  AADSTS90002), which msal reads before anything else. msal accepts https authorities
  only: `serve(fake, tls=True)` serves over TLS with a throwaway certificate.

State is real: mailboxes hold calendars, calendars hold events; every change bumps a
sequence, so a deltaLink (a token for calendar, window and sequence) yields exactly what
changed since. Outgoing calls (the validation handshake, notifications) go through the
`deliver` attribute, so a test can route them into Django's test client.

Simplifications, on purpose: tokens are opaque random strings (real access tokens are
JWTs a client must not read anyway) and id tokens are signed HS256 with the client
secret (Microsoft signs RS256 with published keys); a delta round lists occurrences and
exceptions, never series masters; a personal account's calendar allows skypeForConsumer
meetings, a work account's teamsForBusiness; recurrence is weekly only, with a fixed
number of occurrences, and only through `add_event` (not the API); an occurrence's id
is its series id and original start; time zones are IANA names or UTC (Windows zone
names are read as UTC); a transactionId repeated with the same subject and times
returns the first event, otherwise (or once that event is deleted) it is refused with
ErrorDuplicateTransactionId, a behaviour Microsoft describes but does not specify; a
refresh token is refused once it has been used (see `reuse_rotated_refresh_tokens`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import hashlib
import html
import ipaddress
import itertools
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The tenant every personal Microsoft account signs in through.
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
MAX_SUBSCRIPTION_MINUTES = 10080  # Outlook events: under 7 days
READ_SCOPES = frozenset({"calendars.readbasic", "calendars.read", "calendars.readwrite"})
WRITE_SCOPES = frozenset({"calendars.readwrite"})
USER_SCOPES = frozenset({"user.read", "user.readwrite", "user.read.all", "user.readbasic.all"})
DEFAULT_SCOPES = ("openid", "email", "offline_access", "User.Read", "Calendars.ReadWrite")
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
# What the consent screen says for the scopes it knows.
SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    "user.read": "Sign you in and read your profile",
    "calendars.read": "Read your calendars",
    "calendars.readbasic": "Read basic details of your calendars",
    "calendars.readwrite": "Have full access to your calendars",
}
DELTA_UNSUPPORTED = ("$select", "$filter", "$expand", "$orderby", "$search")
WEEK = dt.timedelta(weeks=1)

Response = tuple[int, dict[str, str], bytes]
Deliver = Callable[[str, dict[str, str], bytes], tuple[int, str, bytes]]


def http_deliver(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    """POST over real HTTP, within the 10 seconds Graph allows for validation."""
    response = requests.post(url, data=body, headers=headers, timeout=10)
    return response.status_code, response.headers.get("Content-Type", ""), response.content


# -- state --------------------------------------------------------------------------------


@dataclass
class Occurrence:
    """An occurrence of a series changed on its own: moved (an exception), or cancelled."""

    start: dt.datetime
    end: dt.datetime
    cancelled: bool = False
    seq: int = 0


class Shown(NamedTuple):
    """One item of a calendarView: a single event, or an occurrence of a series."""

    id: str
    original: dt.datetime | None  # an occurrence's original start
    start: dt.datetime
    end: dt.datetime
    seq: int  # its last change


@dataclass
class FakeEvent:
    id: str
    calendar_id: str
    subject: str
    start: dt.datetime  # UTC; midnight UTC of its dates when all-day
    end: dt.datetime
    is_all_day: bool = False
    show_as: str = "busy"
    is_cancelled: bool = False
    response: str = "none"  # responseStatus.response: none, organizer, accepted, declined, ...
    body: str = ""
    location: str = ""
    attendees: list[str] = field(default_factory=list)
    organizer: str = ""
    transaction_id: str = ""
    extended: dict[str, str] = field(default_factory=dict)  # singleValueExtendedProperties
    online_provider: str = "unknown"
    join_url: str = ""
    weekly: int = 0  # a series of this many weekly occurrences; 0: a single instance
    exceptions: dict[dt.datetime, Occurrence] = field(default_factory=dict)  # by original start
    seq: int = 0  # last change of the event itself (all its occurrences)
    last_seq: int = 0  # last change of it or any of its occurrences
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    deleted: bool = False


@dataclass
class FakeCalendar:
    id: str
    mailbox_id: str
    name: str
    can_edit: bool = True
    is_default: bool = False
    hex_color: str = ""
    allowed_providers: list[str] = field(default_factory=list)
    default_provider: str = "unknown"


@dataclass
class FakeMailbox:
    id: str
    mail: str
    user_principal_name: str
    personal: bool
    display_name: str
    tenant_id: str
    default_calendar_id: str = ""
    active: int = 0  # requests being answered right now
    max_concurrent: int = 0  # the most ever answered at once


@dataclass
class FakeSubscription:
    id: str
    mailbox_id: str
    resource: str
    calendar_id: str  # "" for every event of the mailbox
    change_type: str
    notification_url: str
    lifecycle_url: str
    client_state: str
    expires_at: dt.datetime


@dataclass
class Grant:
    """What an access or refresh token stands for: a person's delegated scopes, or
    (app-only, no mailbox) the application permissions (`roles`) of an app."""

    mailbox_id: str  # "" for an app-only token
    scopes: frozenset[str]  # as requested, e.g. "Calendars.ReadWrite"; app-only: roles
    client_id: str
    expires_at: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )
    tenant_id: str = ""  # app-only: whose mailboxes it reaches

    @property
    def app_only(self) -> bool:
        return not self.mailbox_id

    def allows(self, wanted: frozenset[str]) -> bool:
        return any(scope.lower() in wanted for scope in self.scopes)


@dataclass
class FakeApp:
    """An app registration of a tenant that signs in as itself (client credentials)."""

    tenant_id: str
    client_id: str
    secret: str
    permissions: set[str]  # application permissions configured on the registration
    consented: set[str] = field(default_factory=set)  # what an administrator granted
    secret_expired: bool = False


@dataclass
class Authorization:
    """An authorization request waiting for consent, then for its code to be redeemed."""

    redirect_uri: str
    scopes: frozenset[str]
    state: str | None
    mailbox_id: str
    tenant: str
    code_challenge: str = ""
    code_challenge_method: str = "plain"
    nonce: str = ""


@dataclass
class DeltaRound:
    mailbox_id: str
    calendar_id: str
    start: dt.datetime
    end: dt.datetime
    seq: int
    remaining: list[dict[str, Any]] = field(default_factory=list)  # pages not yet sent


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int = 0
    answer: bytes = b""  # what the fake answered

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    status: int
    code: str
    retry_after: str | None


class FakeMicrosoft:
    """Microsoft Graph and the identity platform for one registered app."""

    def __init__(
        self,
        client_id: str = "00000000-0000-4000-8000-00000c0ffee0",
        client_secret: str = "convene-test-secret-with-32-bytes!",  # noqa: S107 - a test app
        *,
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_id = tenant_id
        self.base_url = ""  # set by serve()
        self.redirect_uris: set[str] = set()  # empty: any redirect URI is accepted
        self.signed_in = ""  # the account the browser is signed in with, by address
        self.mailboxes: dict[str, FakeMailbox] = {}
        self.calendars: dict[str, FakeCalendar] = {}
        self.events: dict[str, FakeEvent] = {}  # live events by id
        self.tombstones: list[FakeEvent] = []  # deleted events, for delta
        self.transactions: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
        self.subscriptions: dict[str, FakeSubscription] = {}
        self.requests_log: list[RecordedRequest] = []
        self.deliveries: list[tuple[str, bytes]] = []  # every outgoing call, url and body
        self.deliver: Deliver = http_deliver
        self.require_https = True  # Graph only calls notification URLs over HTTPS
        self.max_subscription_minutes = MAX_SUBSCRIPTION_MINUTES
        self.default_page_size = 10  # without Prefer: odata.maxpagesize
        self.max_page_size = 1000
        self.delay = 0.0  # seconds every Graph request takes, to measure concurrency
        # Microsoft hands out a new refresh token on every use. Refusing the old one
        # afterwards is stricter than documented, and catches code that loses the new one.
        self.reuse_rotated_refresh_tokens = False
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.seq = 0
        self._faults: list[Fault] = []
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._revoked: set[str] = set()
        self._pending: dict[str, Authorization] = {}
        self._codes: dict[str, Authorization] = {}
        self._rounds: dict[str, DeltaRound] = {}  # delta and skip tokens
        self.apps: dict[str, FakeApp] = {}  # app-only registrations by client id

    # -- helpers for tests --------------------------------------------------------------

    def _next(self) -> int:
        self.seq = next(self._seq)
        return self.seq

    def add_mailbox(
        self, mail: str, *, personal: bool = False, display_name: str = ""
    ) -> FakeMailbox:
        """A Microsoft 365 (work) or, with `personal`, an Outlook.com account, with its
        default calendar. Personal accounts have no `mail`: their sign-in name is it."""
        with self.lock:
            mailbox = FakeMailbox(
                id=str(uuid.uuid4()),
                mail=mail,
                user_principal_name=mail,
                personal=personal,
                display_name=display_name or mail.split("@")[0].title(),
                tenant_id=CONSUMER_TENANT if personal else self.tenant_id,
            )
            self.mailboxes[mailbox.id] = mailbox
            providers = ["skypeForConsumer"] if personal else ["teamsForBusiness"]
            calendar = self.add_calendar(
                mail, "Calendar", default=True, allowed=providers, default_provider=providers[0]
            )
            mailbox.default_calendar_id = calendar.id
            return mailbox

    def add_calendar(
        self,
        mail: str,
        name: str,
        *,
        can_edit: bool = True,
        default: bool = False,
        hex_color: str = "#74b4e3",
        allowed: list[str] | None = None,
        default_provider: str = "unknown",
    ) -> FakeCalendar:
        with self.lock:
            mailbox = self.mailbox(mail)
            calendar = FakeCalendar(
                id=_graph_id("AAMkCal"),
                mailbox_id=mailbox.id,
                name=name,
                can_edit=can_edit,
                is_default=default,
                hex_color=hex_color,
                allowed_providers=list(allowed if allowed is not None else ["teamsForBusiness"]),
                default_provider=default_provider,
            )
            self.calendars[calendar.id] = calendar
            return calendar

    def mailbox(self, name: str) -> FakeMailbox:
        """A mailbox by id, address or user principal name."""
        found = self._mailbox_named(name)
        if found is None:
            raise KeyError(name)
        return found

    def _mailbox_named(self, name: str) -> FakeMailbox | None:
        lowered = name.lower()
        return next(
            (
                m
                for m in self.mailboxes.values()
                if lowered in (m.id, m.mail.lower(), m.user_principal_name.lower())
            ),
            None,
        )

    def add_event(
        self,
        calendar_id: str,
        *,
        start: dt.datetime,
        end: dt.datetime,
        subject: str = "Dentist (private)",
        all_day: bool = False,
        show_as: str = "busy",
        cancelled: bool = False,
        response: str = "organizer",
        weekly: int = 0,
        body: str = "Bring the referral letter.",
        location: str = "Harley Street 12",
        attendees: tuple[str, ...] = ("someone@fabrikam.test",),
    ) -> FakeEvent:
        """An event made in Outlook; `weekly=n` makes a series of n weekly occurrences."""
        with self.lock:
            calendar = self.calendars[calendar_id]
            event = FakeEvent(
                id=_graph_id("AAMkEvt"),
                calendar_id=calendar_id,
                subject=subject,
                start=_utc(start),
                end=_utc(end),
                is_all_day=all_day,
                show_as=show_as,
                is_cancelled=cancelled,
                response=response,
                body=body,
                location=location,
                attendees=list(attendees),
                organizer=self.mailboxes[calendar.mailbox_id].mail,
                weekly=weekly,
            )
            self.events[event.id] = event
            self._touch(event)
            return event

    def update_event(self, event_id: str, **fields: Any) -> FakeEvent:
        """Change an event's fields (show_as, response, is_cancelled, ...) as Outlook would."""
        with self.lock:
            event = self.events[event_id]
            for name, value in fields.items():
                if not hasattr(event, name):
                    raise AttributeError(name)
                setattr(event, name, _utc(value) if isinstance(value, dt.datetime) else value)
            self._touch(event)
            return event

    def move_event(
        self,
        event_id: str,
        *,
        start: dt.datetime,
        end: dt.datetime,
        occurrence: dt.datetime | None = None,
    ) -> None:
        """Move an event, or (with `occurrence`, its original start) one occurrence."""
        with self.lock:
            if occurrence is None:
                self.update_event(event_id, start=start, end=end)
                return
            event = self.events[event_id]
            event.exceptions[_utc(occurrence)] = Occurrence(_utc(start), _utc(end))
            self._touch_occurrence(event, _utc(occurrence))

    def delete_event(self, event_id: str, *, occurrence: dt.datetime | None = None) -> bool:
        """Delete an event, or cancel one occurrence of a series."""
        with self.lock:
            event = self.events.get(event_id)
            if event is None:
                return False
            if occurrence is not None:
                original = _utc(occurrence)
                end = original + (event.end - event.start)
                event.exceptions[original] = Occurrence(original, end, cancelled=True)
                self._touch_occurrence(event, original)
                return True
            del self.events[event_id]
            event.deleted = True
            event.last_seq = self._next()
            self.tombstones.append(event)
            return True

    def _touch(self, event: FakeEvent) -> None:
        event.seq = event.last_seq = self._next()

    def _touch_occurrence(self, event: FakeEvent, original: dt.datetime) -> None:
        event.exceptions[original].seq = event.last_seq = self._next()

    def events_in(self, calendar_id: str) -> list[FakeEvent]:
        with self.lock:
            return [e for e in self.events.values() if e.calendar_id == calendar_id]

    def add_app(
        self, tenant_id: str, client_id: str, secret: str, permissions: set[str] | None = None
    ) -> FakeApp:
        """An app registration in `tenant_id` with a client secret, configured to ask for
        these application permissions (none consented yet)."""
        with self.lock:
            app = FakeApp(tenant_id, client_id, secret, set(permissions or ()))
            self.apps[client_id] = app
            return app

    def grant_admin_consent(self, client_id: str, permissions: set[str] | None = None) -> None:
        """A tenant administrator consents to the app's application permissions (all
        those configured when `permissions` is None). Tokens issued later carry them."""
        with self.lock:
            app = self.apps[client_id]
            app.consented = set(app.permissions if permissions is None else permissions)

    def expire_secret(self, client_id: str) -> None:
        with self.lock:
            self.apps[client_id].secret_expired = True

    def token_requests(self, grant_type: str = "client_credentials") -> list[RecordedRequest]:
        """The token endpoint requests of one grant type, in order."""
        with self.lock:
            return [
                r
                for r in self.requests_log
                if r.path.endswith("/oauth2/v2.0/token")
                and dict(parse_qsl(r.body.decode())).get("grant_type") == grant_type
            ]

    def issue_token(self, mail: str, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> str:
        """An access token for `mail`, as if it had signed in and consented."""
        with self.lock:
            token = f"EwA{secrets.token_urlsafe(24)}"
            self._access[token] = Grant(self.mailbox(mail).id, frozenset(scopes), self.client_id)
            return token

    def expire_access_tokens(self) -> None:
        with self.lock:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            for grant in self._access.values():
                grant.expires_at = past

    def revoke(self, mail: str) -> None:
        """The person removed the app's access (or changed their password)."""
        with self.lock:
            mailbox_id = self.mailbox(mail).id
            for tokens in (self._access, self._refresh):
                for token in [t for t, g in tokens.items() if g.mailbox_id == mailbox_id]:
                    del tokens[token]
                    self._revoked.add(token)

    def expire_delta_tokens(self) -> None:
        with self.lock:
            self._rounds.clear()

    def fail_next(
        self, status: int, retry_after: float | None = None, code: str | None = None, count: int = 1
    ) -> None:
        """Answer the next `count` Graph requests with an error (after authentication)."""
        default = {429: "TooManyRequests", 403: "ErrorAccessDenied", 410: "syncStateNotFound"}
        fault = Fault(
            status,
            code or default.get(status, "serviceNotAvailable"),
            None if retry_after is None else f"{retry_after:g}",
        )
        with self.lock:
            self._faults.extend([fault] * count)

    def max_concurrent(self, mail: str) -> int:
        return self.mailbox(mail).max_concurrent

    def notify(
        self, calendar_id: str, event_id: str = "", change_type: str = "updated"
    ) -> list[int]:
        """Send a change notification to every live subscription on the calendar; the
        statuses the receivers answered with."""
        with self.lock:
            calendar = self.calendars[calendar_id]
            if not event_id:
                newest = max(self.events_in(calendar_id), key=lambda e: e.last_seq, default=None)
                event_id = newest.id if newest else ""
            targets = [
                s
                for s in self._live_subscriptions()
                if s.mailbox_id == calendar.mailbox_id and s.calendar_id in ("", calendar_id)
            ]
            event = self.events.get(event_id)
            etag = _change_key(event.id, event.seq) if event else ""
        statuses = []
        for subscription in targets:
            resource = f"Users/{subscription.mailbox_id}/Events/{event_id}"
            notification = {
                **self._notification_head(subscription),
                "changeType": change_type,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": f'W/"{etag}"',
                    "id": event_id,
                },
            }
            statuses.append(self._post_json(subscription.notification_url, notification)[0])
        return statuses

    def lifecycle(self, subscription_id: str, event: str) -> int:
        """Send a lifecycle notification (reauthorizationRequired, subscriptionRemoved,
        missed); a removed subscription is gone afterwards."""
        with self.lock:
            subscription = self.subscriptions[subscription_id]
            if event == "subscriptionRemoved":
                del self.subscriptions[subscription_id]
        notification = {**self._notification_head(subscription), "lifecycleEvent": event}
        url = subscription.lifecycle_url or subscription.notification_url
        return self._post_json(url, notification)[0]

    def _notification_head(self, subscription: FakeSubscription) -> dict[str, Any]:
        return {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": _offset(subscription.expires_at),
            "clientState": subscription.client_state or None,
            "tenantId": self.mailboxes[subscription.mailbox_id].tenant_id,
        }

    def _post_json(self, url: str, notification: dict[str, Any]) -> tuple[int, str, bytes]:
        body = json.dumps({"value": [notification]}).encode()
        self.deliveries.append((url, body))
        return self.deliver(url, {"Content-Type": "application/json; charset=utf-8"}, body)

    # -- HTTP -----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request; `headers` have lower-case names."""
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.strip("/").split("/") if s]
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        record = RecordedRequest(method, parts.path, query, headers, body)
        with self.lock:
            self.requests_log.append(record)
        if segments[:1] == ["v1.0"]:
            answer = self._graph(method, segments[1:], query, headers, body)
        else:
            answer = self._identity(method, segments, query, headers, body)
        record.status, record.answer = answer[0], answer[2]
        return answer

    # -- Graph ----------------------------------------------------------------------------

    def _graph(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> Response:
        with self.lock:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            grant = self._access.get(token) if scheme.lower() == "bearer" else None
            if grant is None or grant.expires_at <= dt.datetime.now(dt.UTC):
                what = "the token is expired" if grant else "the token is not valid"
                return _unauthorized(f"Access token validation failure: {what}.")
            target = self.mailboxes.get(grant.mailbox_id)
            if segments[:1] == ["users"] and len(segments) > 1:
                target = self._mailbox_named(segments[1]) or target
            if target is not None:
                target.active += 1
                target.max_concurrent = max(target.max_concurrent, target.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                if self._faults:
                    fault = self._faults.pop(0)
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    return _error(fault.status, fault.code, "Injected by the test.", extra)
            if segments == ["subscriptions"] and method == "POST":
                # Outside the lock: the validation request may take seconds.
                return self._subscribe(grant, _json_body(body))
            with self.lock:
                return self._route(method, segments, query, headers, body, grant)
        finally:
            if target is not None:
                with self.lock:
                    target.active -= 1

    def _route(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        grant: Grant,
    ) -> Response:
        if segments[:1] == ["subscriptions"]:
            return self._subscription(method, segments[1:], _json_body(body), grant)
        if segments[:1] == ["me"]:
            if grant.app_only:
                return _error(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            mailbox: FakeMailbox | None = self.mailboxes[grant.mailbox_id]
            rest = segments[1:]
        elif segments[:1] == ["users"] and len(segments) > 1:
            mailbox, rest = self._mailbox_named(segments[1]), segments[2:]
            # An app sees its own tenant's users only; the others do not exist for it.
            if mailbox is None or (grant.app_only and not self._reaches(grant, mailbox)):
                return _error(
                    404, "ErrorInvalidUser", f"The requested user '{segments[1]}' is invalid."
                )
            if not self._reaches(grant, mailbox):
                return _denied()
        else:
            return _error(
                400,
                "BadRequest",
                f"Resource not found for the segment '{segments[0] if segments else ''}'.",
            )
        assert mailbox is not None
        # /calendar and /calendarView are the default calendar's.
        if rest[:1] == ["calendar"]:
            rest = ["calendars", mailbox.default_calendar_id, *rest[1:]]
        elif rest[:1] == ["calendarView"]:
            rest = ["calendars", mailbox.default_calendar_id, *rest]
        tz = _prefer(headers, "outlook.timezone") or "UTC"
        if rest == []:
            if method != "GET":
                return _error(405, "Request_BadRequest", "Method not allowed.")
            if not grant.allows(USER_SCOPES):
                return _error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            return _ok(_select(self._user_json(mailbox), query))
        if not grant.allows(READ_SCOPES):
            return _denied()
        writing = method in ("POST", "PATCH", "DELETE")
        if writing and not grant.allows(WRITE_SCOPES):
            return _denied()
        match rest:
            case ["calendars"] if method == "GET":
                return self._calendar_list(mailbox, query)
            case ["calendars", calendar_id, *more]:
                calendar = self.calendars.get(calendar_id)
                if calendar is None or calendar.mailbox_id != mailbox.id:
                    return _not_found()
                return self._calendar_route(
                    method, more, query, headers, body, mailbox, calendar, tz
                )
            case ["events", event_id]:
                return self._event_route(method, event_id, body, mailbox, tz)
        return _error(400, "BadRequest", "This fake does not know the request.")

    def _calendar_route(
        self,
        method: str,
        more: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        mailbox: FakeMailbox,
        calendar: FakeCalendar,
        tz: str,
    ) -> Response:
        match more, method:
            case [], "GET":
                return _ok(_select(self._calendar_json(calendar), query))
            case ["calendarView", "delta"], "GET":
                return self._delta(mailbox, calendar, query, headers, tz)
            case ["events"], "POST":
                return self._create_event(mailbox, calendar, _json_body(body), tz)
            case ["events"], "GET":
                return self._event_list(calendar, query, tz)
        return _error(400, "BadRequest", "This fake does not know the request.")

    def _user_json(self, mailbox: FakeMailbox) -> dict[str, Any]:
        given, _, surname = mailbox.display_name.partition(" ")
        return {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#users/$entity",
            "businessPhones": [],
            "displayName": mailbox.display_name,
            "givenName": given,
            "jobTitle": None,
            # Personal accounts have no Exchange `mail`; their address is the UPN.
            "mail": None if mailbox.personal else mailbox.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-GB",
            "surname": surname or None,
            "userPrincipalName": mailbox.user_principal_name,
            "id": mailbox.id,
        }

    def _calendar_json(self, calendar: FakeCalendar) -> dict[str, Any]:
        owner = self.mailboxes[calendar.mailbox_id]
        return {
            "id": calendar.id,
            "name": calendar.name,
            "color": "auto",
            "hexColor": calendar.hex_color,
            "isDefaultCalendar": calendar.is_default,
            "changeKey": base64.b64encode(calendar.id.encode()).decode()[-16:],
            "canShare": calendar.can_edit,
            "canViewPrivateItems": calendar.can_edit,
            "canEdit": calendar.can_edit,
            "allowedOnlineMeetingProviders": calendar.allowed_providers,
            "defaultOnlineMeetingProvider": calendar.default_provider,
            "isTallyingResponses": calendar.is_default,
            "isRemovable": not calendar.is_default,
            "owner": {"name": owner.display_name, "address": owner.mail},
        }

    def _calendar_list(self, mailbox: FakeMailbox, query: dict[str, str]) -> Response:
        calendars = [c for c in self.calendars.values() if c.mailbox_id == mailbox.id]
        top = int(query.get("$top") or self.default_page_size)
        skip = int(query.get("$skip") or 0)
        page: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#users('{mailbox.id}')/calendars",
            "value": [_select(self._calendar_json(c), query) for c in calendars[skip : skip + top]],
        }
        if skip + top < len(calendars):
            rest = {k: v for k, v in query.items() if k != "$skip"}
            rest["$skip"] = str(skip + top)
            page["@odata.nextLink"] = (
                f"{self.base_url}/v1.0/users/{mailbox.id}/calendars?{urlencode(rest)}"
            )
        return _ok(page)

    # -- events -----------------------------------------------------------------------

    def _instances(
        self, event: FakeEvent, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[Shown]:
        """What a calendarView between start and end shows of `event` (everything
        without bounds); cancelled occurrences are not shown."""
        if not event.weekly:
            shown = [Shown(event.id, None, event.start, event.end, event.seq)]
        else:
            shown = []
            for original in _originals(event):
                moved = event.exceptions.get(original)
                if moved is None:
                    duration = event.end - event.start
                    item = Shown(
                        _occurrence_id(event, original),
                        original,
                        original,
                        original + duration,
                        event.seq,
                    )
                elif not moved.cancelled:
                    seq = max(event.seq, moved.seq)
                    item = Shown(
                        _occurrence_id(event, original), original, moved.start, moved.end, seq
                    )
                else:
                    continue
                shown.append(item)
        if start is None or end is None:
            return shown
        return [item for item in shown if item.start < end and item.end > start]

    def _last_changes(self, event: FakeEvent) -> dict[str, int]:
        """When each id a calendarView ever showed of `event` last changed (cancelled
        occurrences and the deletion of the event included)."""
        deleted = event.last_seq if event.deleted else 0
        if not event.weekly:
            return {event.id: event.last_seq}
        changes = {}
        for original in _originals(event):
            moved = event.exceptions.get(original)
            seq = max(event.seq, moved.seq if moved else 0, deleted)
            changes[_occurrence_id(event, original)] = seq
        return changes

    def _event_json(
        self, event: FakeEvent, tz: str, instance: Shown | None = None
    ) -> dict[str, Any]:
        """The event as Graph shows it: a series master without `instance`."""
        item_id, original, start, end, seq = instance or Shown(
            event.id, None, event.start, event.end, event.seq
        )
        if event.weekly:
            kind = "seriesMaster" if instance is None else "occurrence"
            if original is not None and original in event.exceptions:
                kind = "exception"
        else:
            kind = "singleInstance"
        organizer = self.mailboxes[self.calendars[event.calendar_id].mailbox_id]
        change_key = _change_key(item_id, seq)
        data: dict[str, Any] = {
            "@odata.etag": f'W/"{change_key}"',
            "id": item_id,
            "createdDateTime": _offset(event.created),
            "lastModifiedDateTime": _offset(dt.datetime.now(dt.UTC)),
            "changeKey": change_key,
            "categories": [],
            "originalStartTimeZone": "UTC",
            "originalEndTimeZone": "UTC",
            "iCalUId": hashlib.sha1(item_id.encode()).hexdigest().upper(),  # noqa: S324 - an id
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "hasAttachments": False,
            "subject": event.subject,
            "bodyPreview": event.body[:255],
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": event.is_all_day,
            "isCancelled": event.is_cancelled,
            "isOrganizer": event.response == "organizer",
            "responseRequested": True,
            "seriesMasterId": event.id if event.weekly and instance is not None else None,
            "showAs": event.show_as,
            "type": kind,
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(item_id)}",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": bool(event.join_url),
            "onlineMeetingProvider": event.online_provider,
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "responseStatus": {"response": event.response, "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "text", "content": event.body},
            "start": _render(start, event.is_all_day, tz),
            "end": _render(end, event.is_all_day, tz),
            "location": {"displayName": event.location, "locationType": "default"},
            "locations": [{"displayName": event.location}] if event.location else [],
            "recurrence": _recurrence(event) if event.weekly and instance is None else None,
            "attendees": [
                {
                    "type": "required",
                    "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                    "emailAddress": {"name": a.split("@")[0], "address": a},
                }
                for a in event.attendees
            ],
            "organizer": {
                "emailAddress": {"name": organizer.display_name, "address": event.organizer}
            },
            "onlineMeeting": {"joinUrl": event.join_url} if event.join_url else None,
        }
        if original is not None:
            data["originalStart"] = _offset(original)
        if event.transaction_id:  # returned only when an app set it
            data["transactionId"] = event.transaction_id
        return data

    def _event_list(self, calendar: FakeCalendar, query: dict[str, str], tz: str) -> Response:
        events = self.events_in(calendar.id)
        if wanted := query.get("$filter"):
            match = re.fullmatch(
                r"singleValueExtendedProperties/any\((\w+): \1/id eq '(.+?)' "
                r"and \1/value eq '(.*)'\)",
                wanted,
                flags=re.IGNORECASE,
            )
            if match is None:
                return _error(
                    400,
                    "ErrorInvalidUrlQueryFilter",
                    "This fake filters by extended property only.",
                )
            key, value = match.group(2), match.group(3).replace("''", "'")
            events = [e for e in events if e.extended.get(key.lower()) == value]
        top = int(query.get("$top") or self.default_page_size)
        return _ok({"value": [_select(self._event_json(e, tz), query) for e in events[:top]]})

    def _create_event(
        self, mailbox: FakeMailbox, calendar: FakeCalendar, data: dict[str, Any], tz: str
    ) -> Response:
        if not calendar.can_edit:
            return _denied()
        try:
            start, end = _parse_when(data["start"]), _parse_when(data["end"])
        except (KeyError, TypeError, ValueError):
            return _error(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. Start and end are required.",
            )
        fingerprint = (data.get("subject"), start, end)
        transaction = str(data.get("transactionId") or "")
        if transaction and (mailbox.id, transaction) in self.transactions:
            event_id, first = self.transactions[mailbox.id, transaction]
            existing = self.events.get(event_id)
            if existing is not None and first == fingerprint:
                return _ok(self._event_json(existing, tz), 201)
            return _error(
                400,
                "ErrorDuplicateTransactionId",
                "Your request can't be completed. The TransactionId specified in the request "
                "has already been used to create a different event.",
            )
        event = FakeEvent(
            id=_graph_id("AAMkEvt"),
            calendar_id=calendar.id,
            subject="",
            start=start,
            end=end,
            organizer=mailbox.mail,
            response="organizer",
            transaction_id=transaction,
        )
        problem = self._apply(event, calendar, data)
        if problem:
            return problem
        self.events[event.id] = event
        if transaction:
            self.transactions[mailbox.id, transaction] = (event.id, fingerprint)
        self._touch(event)
        return _ok(self._event_json(event, tz), 201)

    def _apply(
        self, event: FakeEvent, calendar: FakeCalendar, data: dict[str, Any]
    ) -> Response | None:
        """Apply the writable fields of an event body; an error answer if one is wrong."""
        if "transactionId" in data and data["transactionId"] != event.transaction_id:
            return _error(400, "ErrorInvalidRequest", "The transactionId cannot be changed.")
        if "showAs" in data and data["showAs"] not in SHOW_AS:
            return _error(400, "RequestBodyRead", f"Cannot convert '{data['showAs']}' to showAs.")
        for key in ("start", "end"):
            if key in data:
                try:
                    setattr(event, key, _parse_when(data[key]))
                except (KeyError, TypeError, ValueError):
                    return _error(400, "ErrorInvalidRequest", f"The {key} is not valid.")
        event.subject = str(data.get("subject", event.subject) or "")
        event.body = str((data.get("body") or {}).get("content", event.body) or "")
        event.location = str((data.get("location") or {}).get("displayName", event.location) or "")
        event.show_as = str(data.get("showAs", event.show_as))
        event.is_all_day = bool(data.get("isAllDay", event.is_all_day))
        for prop in data.get("singleValueExtendedProperties") or []:
            event.extended[str(prop["id"]).lower()] = str(prop["value"])
        if data.get("isOnlineMeeting") and not event.join_url:
            # Once made, a meeting stays: later changes to these fields are ignored.
            provider = str(data.get("onlineMeetingProvider") or calendar.default_provider)
            if provider not in calendar.allowed_providers:
                return _error(
                    400,
                    "ErrorInvalidRequest",
                    f"The online meeting provider '{provider}' is not allowed.",
                )
            event.online_provider = provider
            event.join_url = _join_url(provider)
        return None

    def _event_route(
        self, method: str, event_id: str, body: bytes, mailbox: FakeMailbox, tz: str
    ) -> Response:
        # Ids are URL-safe base64 (with "-" and "_"); an occurrence adds ".<original start>".
        master_id, _, stamp = event_id.partition(".")
        event = self.events.get(master_id)
        calendar = self.calendars[event.calendar_id] if event else None
        if event is None or calendar is None or calendar.mailbox_id != mailbox.id:
            return _not_found()
        original = _from_stamp(stamp) if stamp else None
        instance = None
        if original is not None:
            instance = next((i for i in self._instances(event) if i[0] == event_id), None)
            if instance is None:
                return _not_found()
        if method == "GET":
            return _ok(self._event_json(event, tz, instance))
        if not calendar.can_edit:
            return _denied()
        if method == "DELETE":
            self.delete_event(event.id, occurrence=original)
            return 204, {}, b""
        if method == "PATCH":
            data = _json_body(body)
            if original is not None:
                try:
                    start, end = _parse_when(data["start"]), _parse_when(data["end"])
                except (KeyError, TypeError, ValueError):
                    return _error(400, "ErrorInvalidRequest", "Start and end are required.")
                self.move_event(event.id, start=start, end=end, occurrence=original)
                moved = next(i for i in self._instances(event) if i.id == event_id)
                return _ok(self._event_json(event, tz, moved))
            problem = self._apply(event, calendar, data)
            if problem:
                return problem
            self._touch(event)
            return _ok(self._event_json(event, tz))
        return _error(405, "ErrorInvalidRequest", "Method not allowed.")

    # -- delta ------------------------------------------------------------------------

    def _delta(
        self,
        mailbox: FakeMailbox,
        calendar: FakeCalendar,
        query: dict[str, str],
        headers: dict[str, str],
        tz: str,
    ) -> Response:
        token = query.get("$deltatoken") or query.get("$skiptoken")
        if token is not None:
            found = self._rounds.get(token)
            if found is None or found.calendar_id != calendar.id:
                return _error(410, "syncStateNotFound", "The sync state generation is not valid.")
            round_ = found
            if "$deltatoken" in query:
                # A new round: what changed since the last one.
                changes = self._changes(calendar, found.start, found.end, found.seq, tz)
                round_ = DeltaRound(
                    mailbox.id, calendar.id, found.start, found.end, self.seq, changes
                )
        else:
            if unsupported := [p for p in DELTA_UNSUPPORTED if p in query]:
                return _error(
                    400,
                    "ErrorInvalidUrlQuery",
                    "The following parameters are not supported with change tracking over the "
                    f"'CalendarView' resource: '{', '.join(unsupported)}'.",
                )
            try:
                start = _parse_instant(query["startDateTime"])
                end = _parse_instant(query["endDateTime"])
            except (KeyError, ValueError):
                return _error(
                    400,
                    "ErrorInvalidParameter",
                    "This request requires a time window specified by the query string "
                    "parameters StartDateTime and EndDateTime.",
                )
            changes = self._changes(calendar, start, end, 0, tz)
            round_ = DeltaRound(mailbox.id, calendar.id, start, end, self.seq, changes)
        wanted = int(_prefer(headers, "odata.maxpagesize") or self.default_page_size)
        size = min(wanted, self.max_page_size)
        page, rest = round_.remaining[:size], round_.remaining[size:]
        # Every token stays valid (a client may repeat a request): each names its own state.
        fresh = secrets.token_urlsafe(18)
        self._rounds[fresh] = dataclasses.replace(round_, remaining=rest)
        link = (
            f"{self.base_url}/v1.0/users/{mailbox.id}/calendars/"
            f"{quote(calendar.id, safe='')}/calendarView/delta"
        )
        key = "@odata.nextLink" if rest else "@odata.deltaLink"
        parameter = "$skiptoken" if rest else "$deltatoken"
        answer = {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#Collection(event)",
            key: f"{link}?{parameter}={fresh}",
            "value": page,
        }
        return _ok(answer, extra={"Preference-Applied": f"odata.maxpagesize={size}"})

    def _changes(
        self, calendar: FakeCalendar, start: dt.datetime, end: dt.datetime, since: int, tz: str
    ) -> list[dict[str, Any]]:
        """The items of a delta round: since 0, every event shown in the window; else
        what changed since, with `@removed` for ids no longer shown (deleted, or moved
        out of the window: Graph reports those as removed too)."""
        items: list[dict[str, Any]] = []
        candidates = [*self.events_in(calendar.id)]
        if since:
            candidates += [e for e in self.tombstones if e.calendar_id == calendar.id]
        for event in candidates:
            if event.last_seq <= since:
                continue
            shown = {} if event.deleted else {i.id: i for i in self._instances(event, start, end)}
            items += [self._event_json(event, tz, i) for i in shown.values() if i.seq > since]
            if since:
                items += [
                    {
                        "@odata.type": "#microsoft.graph.event",
                        "id": gone,
                        "@removed": {"reason": "deleted"},
                    }
                    for gone, seq in sorted(self._last_changes(event).items())
                    if gone not in shown and seq > since
                ]
        return items

    # -- subscriptions ------------------------------------------------------------------

    def _live_subscriptions(self) -> list[FakeSubscription]:
        now = dt.datetime.now(dt.UTC)
        return [s for s in self.subscriptions.values() if s.expires_at > now]

    def _expiry_problem(self, value: Any) -> tuple[dt.datetime | None, Response | None]:
        try:
            expires = _parse_instant(str(value))
        except ValueError:
            return None, _error(400, "InvalidRequest", "expirationDateTime is not valid.")
        now = dt.datetime.now(dt.UTC)
        if expires <= now:
            return None, _error(
                400, "InvalidRequest", "Subscription expiration must be in the future."
            )
        if expires > now + dt.timedelta(minutes=self.max_subscription_minutes):
            return None, _error(
                400,
                "InvalidRequest",
                f"Subscription expiration can only be {self.max_subscription_minutes} minutes "
                "in the future.",
            )
        return expires, None

    def _subscribe(self, grant: Grant, data: dict[str, Any]) -> Response:
        with self.lock:
            expires, problem = self._expiry_problem(data.get("expirationDateTime"))
            if problem:
                return problem
            resource = str(data.get("resource") or "").strip("/")
            match = re.fullmatch(
                r"(?:me|users/([^/]+))/(?:calendars/([^/]+)/)?events", resource, re.I
            )
            if match is None:
                return _error(400, "ExtensionError", f"Resource '{resource}' is not supported.")
            named = self._mailbox_named(unquote(match.group(1))) if match.group(1) else None
            mailbox = named if grant.app_only else self.mailboxes[grant.mailbox_id]
            if mailbox is None or (match.group(1) and named is not mailbox):
                return _error(403, "ExtensionError", "Access is denied to the resource.")
            if not self._reaches(grant, mailbox):
                return _error(403, "ExtensionError", "Access is denied to the resource.")
            calendar_id = unquote(match.group(2) or "")
            if calendar_id and self.calendars.get(calendar_id, None) is None:
                return _error(404, "ExtensionError", "The calendar was not found.")
            if not grant.allows(READ_SCOPES):
                return _error(
                    403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden]"
                )
            client_state = str(data.get("clientState") or "")
            if len(client_state) > 128:
                return _error(400, "InvalidRequest", "clientState is longer than 128 characters.")
            urls = [
                str(data.get("notificationUrl") or ""),
                str(data.get("lifecycleNotificationUrl") or ""),
            ]
            if not urls[0] or any(
                u and self.require_https and not u.startswith("https://") for u in urls
            ):
                return _error(400, "InvalidRequest", "The notification URL must use HTTPS.")
        for url in dict.fromkeys(u for u in urls if u):
            if not self._validated(url):
                return _error(
                    400,
                    "ValidationError",
                    "Subscription validation request failed. Response must exactly match "
                    "validationToken query parameter.",
                )
        subscription = FakeSubscription(
            id=str(uuid.uuid4()),
            mailbox_id=mailbox.id,
            resource=resource,
            calendar_id=calendar_id,
            change_type=str(data.get("changeType") or ""),
            notification_url=urls[0],
            lifecycle_url=urls[1],
            client_state=client_state,
            expires_at=expires or dt.datetime.now(dt.UTC),
        )
        with self.lock:
            self.subscriptions[subscription.id] = subscription
        return _ok(self._subscription_json(subscription), 201)

    def _validated(self, url: str) -> bool:
        """The handshake: Graph POSTs a token and wants it back, as text, within 10 s."""
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token)}"
        self.deliveries.append((target, b""))
        try:
            status, content_type, body = self.deliver(
                target, {"Content-Type": "text/plain; charset=utf-8"}, b""
            )
        except requests.RequestException:
            return False
        return status == 200 and content_type.startswith("text/plain") and body.decode() == token

    def _subscription(
        self, method: str, rest: list[str], data: dict[str, Any], grant: Grant
    ) -> Response:
        found = self.subscriptions.get(rest[0]) if len(rest) == 1 else None
        if (
            found is None
            or found not in self._live_subscriptions()
            or not self._reaches(grant, self.mailboxes[found.mailbox_id])
        ):
            return _error(404, "ResourceNotFound", "The object was not found.")
        if method == "GET":
            return _ok(self._subscription_json(found))
        if method == "DELETE":
            del self.subscriptions[found.id]
            return 204, {}, b""
        if method == "PATCH":
            expires, problem = self._expiry_problem(data.get("expirationDateTime"))
            if problem or expires is None:
                return problem or _error(400, "InvalidRequest", "expirationDateTime is required.")
            found.expires_at = expires
            return _ok(self._subscription_json(found))
        return _error(405, "InvalidRequest", "Method not allowed.")

    def _reaches(self, grant: Grant, mailbox: FakeMailbox) -> bool:
        """A person's token reaches their own mailbox; an app's, its tenant's work ones."""
        if grant.app_only:
            return not mailbox.personal and mailbox.tenant_id == grant.tenant_id
        return mailbox.id == grant.mailbox_id

    def _subscription_json(self, subscription: FakeSubscription) -> dict[str, Any]:
        return {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": subscription.id,
            "resource": subscription.resource,
            "applicationId": self.client_id,
            "changeType": subscription.change_type,
            "clientState": subscription.client_state or None,
            "notificationUrl": subscription.notification_url,
            "lifecycleNotificationUrl": subscription.lifecycle_url or None,
            "expirationDateTime": _offset(subscription.expires_at),
            "creatorId": subscription.mailbox_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "notificationContentType": None,
        }

    # -- identity platform ------------------------------------------------------------

    def _identity(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> Response:
        with self.lock:
            match segments, method:
                case [tenant, "oauth2", "v2.0", "authorize"], "GET":
                    return self._authorize(tenant, query)
                case [tenant, "oauth2", "v2.0", "authorize", "consent"], "POST":
                    return self._consent(tenant, dict(parse_qsl(body.decode())))
                case [tenant, "oauth2", "v2.0", "token"], "POST":
                    form = dict(parse_qsl(body.decode()))
                    if form.get("grant_type") == "client_credentials":
                        return self._client_credentials(tenant, form, headers)
                    return self._token(form, headers)
                case [tenant, "v2.0", ".well-known", "openid-configuration"], "GET":
                    return self._openid_configuration(tenant)
        return _page(404, "Not found", "<p>This page does not exist.</p>")

    def _tenant_id(self, name: str) -> str | None:
        """A tenant by GUID or by a verified domain of one of its work mailboxes; the
        multi-tenant names stand for themselves."""
        lowered = name.lower()
        if lowered in ("common", "organizations", "consumers"):
            return lowered
        known = {self.tenant_id, *(app.tenant_id for app in self.apps.values())}
        known |= {m.tenant_id for m in self.mailboxes.values() if not m.personal}
        if lowered in known:
            return lowered
        return next(
            (
                m.tenant_id
                for m in self.mailboxes.values()
                if not m.personal and m.mail.rpartition("@")[2].lower() == lowered
            ),
            None,
        )

    def _openid_configuration(self, tenant: str) -> Response:
        """OpenID Connect discovery for a tenant, as login.microsoftonline.com shows it
        (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc)."""
        tenant_id = self._tenant_id(tenant)
        if tenant_id is None:
            return _aad(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )
        multi = tenant_id in ("common", "organizations", "consumers")
        path = tenant if multi else tenant_id
        issuer_tenant = "{tenantid}" if multi else tenant_id
        base = f"{self.base_url}/{path}"
        return _ok(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.base_url}/{issuer_tenant}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "email"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            }
        )

    def _client_credentials(
        self, tenant: str, form: dict[str, str], headers: dict[str, str]
    ) -> Response:
        """An app signing in as itself; the token carries its consented permissions."""
        tenant_id = self._tenant_id(tenant)
        if tenant_id is None:
            return _aad(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        credentials = _client_credentials_of(form, headers)
        if credentials is None:
            return _aad(401, "invalid_client", 7000215, "Invalid client secret provided.")
        client_id, secret = credentials
        app = self.apps.get(client_id)
        if app is None or app.tenant_id != tenant_id:
            return _aad(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            )
        if secret != app.secret:
            return _aad(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{client_id}'.",
            )
        if app.secret_expired:
            return _aad(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit "
                "the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, "
                "or consider using certificate credentials for added security: "
                "https://aka.ms/certCreds.",
            )
        resources = {f"{self.base_url}/.default", "https://graph.microsoft.com/.default"}
        if form.get("scope", "").split() not in ([r] for r in resources):
            return _aad(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        access = f"eyJ0eXAiOiJKV1Qi{secrets.token_urlsafe(24)}"
        self._access[access] = Grant(
            "", frozenset(app.consented), client_id, tenant_id=app.tenant_id
        )
        # No refresh token and no scope in a client credentials answer.
        return _ok(
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access,
            }
        )

    def _tenant_allows(self, tenant: str, mailbox: FakeMailbox) -> bool:
        domain = mailbox.mail.rpartition("@")[2].lower()
        return {
            "common": True,
            "organizations": not mailbox.personal,
            "consumers": mailbox.personal,
        }.get(tenant.lower(), tenant.lower() in (mailbox.tenant_id, domain))

    def _authorize(self, tenant: str, query: dict[str, str]) -> Response:
        if query.get("client_id") != self.client_id:
            return _page(
                400, "Sign in", "<p>AADSTS700016: Application not found in the directory.</p>"
            )
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri or (self.redirect_uris and redirect_uri not in self.redirect_uris):
            return _page(400, "Sign in", "<p>AADSTS50011: The redirect URI does not match.</p>")
        if query.get("response_type") != "code":
            return _page(400, "Sign in", "<p>AADSTS900144: response_type must be 'code'.</p>")
        who = query.get("login_hint") or self.signed_in
        mailbox = self._mailbox_named(who) if who else next(iter(self.mailboxes.values()), None)
        if mailbox is None:
            return _page(400, "Sign in", "<p>AADSTS50034: The user account does not exist.</p>")
        if not self._tenant_allows(tenant, mailbox):
            return _page(
                400,
                "Sign in",
                f"<p>AADSTS50020: User account '{html.escape(mailbox.mail)}' does not exist in "
                f"tenant '{html.escape(tenant)}'.</p>",
            )
        scopes = frozenset(_scope(s) for s in query.get("scope", "").split())
        request_id = secrets.token_urlsafe(12)
        self._pending[request_id] = Authorization(
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=query.get("state"),
            mailbox_id=mailbox.id,
            tenant=tenant,
            code_challenge=query.get("code_challenge", ""),
            code_challenge_method=query.get("code_challenge_method", "plain"),
            nonce=query.get("nonce", ""),
        )
        described = ((s, SCOPE_DESCRIPTIONS.get(s.lower(), s)) for s in sorted(scopes))
        items = "".join(
            f'<li data-scope="{html.escape(s)}">{html.escape(text)}</li>' for s, text in described
        )
        # Consent is all or nothing: accept every permission listed, or none.
        return _page(
            200,
            "Permissions requested",
            f"<h1>Permissions requested</h1><p>{html.escape(mailbox.mail)}</p>"
            f"<p>This app would like to:</p><ul>{items}</ul>"
            f'<form method="post" action="/{quote(tenant)}/oauth2/v2.0/authorize/consent">'
            f'<input type="hidden" name="request" value="{request_id}">'
            '<button name="decision" value="accept">Accept</button>'
            '<button name="decision" value="cancel">Cancel</button></form>',
        )

    def _consent(self, tenant: str, form: dict[str, str]) -> Response:
        pending = self._pending.pop(form.get("request", ""), None)
        if pending is None or pending.tenant != tenant:
            return _page(400, "Sign in", "<p>AADSTS90014: The request has expired.</p>")
        answer: dict[str, str]
        if form.get("decision") == "accept":
            code = f"M.C5{secrets.token_urlsafe(24)}"
            self._codes[code] = pending
            answer = {"code": code}
        else:
            answer = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            }
        if pending.state is not None:
            answer["state"] = pending.state
        joiner = "&" if "?" in pending.redirect_uri else "?"
        return 302, {"Location": f"{pending.redirect_uri}{joiner}{urlencode(answer)}"}, b""

    def _token(self, form: dict[str, str], headers: dict[str, str]) -> Response:
        credentials = _client_credentials_of(form, headers)
        if credentials is None:
            return _aad(401, "invalid_client", 7000215, "Invalid client secret provided.")
        client_id, secret = credentials
        if client_id != self.client_id:
            return _aad(401, "invalid_client", 700016, "Application not found in the directory.")
        if secret != self.client_secret:
            return _aad(401, "invalid_client", 7000215, "Invalid client secret provided.")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            pending = self._codes.pop(form.get("code", ""), None)
            if pending is None:
                return _aad(
                    400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."
                )
            if form.get("redirect_uri") != pending.redirect_uri:
                return _aad(400, "invalid_grant", 50148, "The redirect_uri does not match.")
            if pending.code_challenge and not _pkce_ok(pending, form.get("code_verifier", "")):
                return _aad(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge.",
                )
            grant = Grant(pending.mailbox_id, pending.scopes, client_id)
            return _ok(self._issue(grant, nonce=pending.nonce))
        if grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            grant = self._refresh.get(token)
            if grant is None and token in self._revoked:
                return _aad(
                    400,
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked.",
                )
            if grant is None:
                return _aad(
                    400,
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired.",
                )
            wanted = frozenset(_scope(s) for s in form.get("scope", "").split()) or grant.scopes
            if not {s.lower() for s in wanted} <= {s.lower() for s in grant.scopes}:
                return _aad(
                    400, "invalid_grant", 65001, "The user has not consented to the scopes."
                )
            if not self.reuse_rotated_refresh_tokens:
                del self._refresh[token]
            return _ok(self._issue(Grant(grant.mailbox_id, grant.scopes, client_id)))
        return _aad(400, "unsupported_grant_type", 70003, "The grant type is not supported.")

    def _issue(self, grant: Grant, *, nonce: str = "") -> dict[str, Any]:
        """A token answer; a refresh token only with offline_access, an id token only
        with openid. Microsoft sends a new refresh token every time."""
        access = f"EwA{secrets.token_urlsafe(24)}"
        self._access[access] = grant
        lowered = {s.lower() for s in grant.scopes}
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(sorted(grant.scopes)),
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": access,
        }
        if "offline_access" in lowered:
            refresh = f"M.C5{secrets.token_urlsafe(32)}"
            self._refresh[refresh] = Grant(grant.mailbox_id, grant.scopes, grant.client_id)
            answer["refresh_token"] = refresh
        if "openid" in lowered:
            answer["id_token"] = self._id_token(self.mailboxes[grant.mailbox_id], nonce)
        return answer

    def _id_token(self, mailbox: FakeMailbox, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "ver": "2.0",
            "iss": f"https://login.microsoftonline.com/{mailbox.tenant_id}/v2.0",
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": mailbox.tenant_id,
            "oid": mailbox.id,
            "sub": hashlib.sha256(f"{mailbox.id}{self.client_id}".encode()).hexdigest()[:43],
            "name": mailbox.display_name,
            "preferred_username": mailbox.user_principal_name,
            "email": mailbox.mail,
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.client_secret, algorithm="HS256")


# -- answers and small parsers -----------------------------------------------------------


def _ok(data: Any, status: int = 200, extra: dict[str, str] | None = None) -> Response:
    headers = {"Content-Type": "application/json; odata.metadata=minimal", **(extra or {})}
    return status, headers, json.dumps(data).encode()


def _error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Response:
    inner = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4()),
    }
    return _ok({"error": {"code": code, "message": message, "innerError": inner}}, status, extra)


def _denied() -> Response:
    return _error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _not_found() -> Response:
    return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _unauthorized(message: str) -> Response:
    challenge = (
        'Bearer realm="", '
        'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    )
    return _error(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})


def _aad(status: int, error: str, number: int, message: str) -> Response:
    now = dt.datetime.now(dt.UTC)
    trace = str(uuid.uuid4())
    return _ok(
        {
            "error": error,
            "error_description": f"AADSTS{number}: {message} Trace ID: {trace} "
            f"Timestamp: {now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [number],
            "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        },
        status,
    )


def _client_credentials_of(form: dict[str, str], headers: dict[str, str]) -> tuple[str, str] | None:
    """The client id and secret, from the body or HTTP Basic (RFC 6749, 2.3.1: each
    form-urlencoded first); None for a Basic header that cannot be read."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    return client_id, secret


def _page(status: int, title: str, content: str) -> Response:
    document = (
        f"<!doctype html><html><head><title>{title}</title></head><body>{content}</body></html>"
    )
    return status, {"Content-Type": "text/html; charset=utf-8"}, document.encode()


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _select(data: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    wanted = {f.strip().lower() for f in query.get("$select", "").split(",") if f.strip()}
    if not wanted:
        return data
    return {k: v for k, v in data.items() if k.lower() in wanted or k.startswith("@odata.")}


def _prefer(headers: dict[str, str], name: str) -> str:
    """One preference of the Prefer header(s), e.g. outlook.timezone or odata.maxpagesize."""
    found = re.search(
        rf'{re.escape(name)}\s*=\s*(?:"([^"]*)"|([^,\s]+))', headers.get("prefer", "")
    )
    return (found.group(1) or found.group(2)) if found else ""


def _scope(value: str) -> str:
    return value.removeprefix("https://graph.microsoft.com/")


def _pkce_ok(pending: Authorization, verifier: str) -> bool:
    if pending.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        verifier = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return secrets.compare_digest(verifier, pending.code_challenge)


def _graph_id(prefix: str) -> str:
    return f"{prefix}{base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip('=')}AAA="


def _change_key(item_id: str, seq: int) -> str:
    return base64.b64encode(hashlib.sha256(f"{item_id}:{seq}".encode()).digest()[:12]).decode()


def _occurrence_id(event: FakeEvent, original: dt.datetime) -> str:
    return f"{event.id}.{original:%Y%m%dT%H%M%S}"


def _from_stamp(stamp: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _originals(event: FakeEvent) -> list[dt.datetime]:
    return [event.start + WEEK * n for n in range(event.weekly)]


def _recurrence(event: FakeEvent) -> dict[str, Any]:
    return {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [event.start.strftime("%A").lower()],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "numbered",
            "startDate": event.start.date().isoformat(),
            "numberOfOccurrences": event.weekly,
            "recurrenceTimeZone": "UTC",
        },
    }


def _join_url(provider: str) -> str:
    meeting = secrets.token_hex(16)
    if provider == "teamsForBusiness":
        return (
            f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{meeting}%40thread.v2/0"
            "?context=%7b%22Tid%22%3a%22fake%22%7d"
        )
    if provider == "skypeForConsumer":
        return f"https://join.skype.com/{meeting[:12]}"
    return f"https://meet.lync.com/fake/{meeting[:8]}"


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("The fake takes aware datetimes only.")
    return value.astimezone(dt.UTC)


def _zone(name: str) -> dt.tzinfo:
    try:
        return dt.UTC if name == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _render(value: dt.datetime, all_day: bool, tz: str) -> dict[str, str]:
    """A dateTimeTimeZone in the zone asked for; all-day dates are midnight there."""
    local = value if all_day else value.astimezone(_zone(tz))
    text = f"{local:%Y-%m-%dT00:00:00}" if all_day else f"{local:%Y-%m-%dT%H:%M:%S}"
    return {"dateTime": f"{text}.0000000", "timeZone": tz}


def _parse_when(value: dict[str, Any]) -> dt.datetime:
    local = dt.datetime.fromisoformat(str(value["dateTime"]))
    if local.tzinfo is None:
        local = local.replace(tzinfo=_zone(str(value.get("timeZone") or "UTC")))
    return local.astimezone(dt.UTC)


def _parse_instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _offset(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- serving ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            # In this connection's own thread, not in the accepting one.
            self.request.do_handshake()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, out_headers, payload = self.server.fake.handle(
            self.command, self.path, headers, body
        )
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # many parallel clients in the concurrency test
    fake: FakeMicrosoft


@dataclass
class ServedMicrosoft:
    fake: FakeMicrosoft
    port: int
    ca_file: str = ""  # with TLS: the certificate to trust (REQUESTS_CA_BUNDLE)

    @property
    def base_url(self) -> str:
        """Both MICROSOFT_LOGIN_URL and MICROSOFT_GRAPH_URL."""
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.port}"

    def token_url(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/token"


def serve(fake: FakeMicrosoft, *, tls: bool = False) -> Iterator[ServedMicrosoft]:
    """Serve `fake` on a free loopback port for as long as the generator lives; with
    `tls`, over HTTPS with a certificate made for the occasion (msal refuses any
    authority that is not https)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    port = int(server.server_address[1])
    scratch = (
        tempfile.TemporaryDirectory(prefix="fake-microsoft-") if tls else contextlib.nullcontext("")
    )
    with scratch as directory:
        ca_file = ""
        if tls:
            ca_file, key_file = _certificate(directory)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(ca_file, key_file)
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        served = ServedMicrosoft(fake, port, ca_file)
        fake.base_url = served.base_url
        # A short poll interval: shutdown() waits for it, once per test.
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield served
        finally:
            server.shutdown()
            server.server_close()


def _certificate(directory: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-microsoft.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_file, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_file, key_file
