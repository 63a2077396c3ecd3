"""A stateful fake of Google Calendar API v3 and Google's OAuth 2.0 endpoints, served
over real HTTP on 127.0.0.1.

Built from Google's own pages:

- Calendar API reference, https://developers.google.com/workspace/calendar/api/v3/reference
  (calendarList.list, events.list/get/insert/update/patch/delete/watch, channels.stop;
  the Authorization section of each method says which scopes it takes).
- Incremental sync, https://developers.google.com/workspace/calendar/api/guides/sync:
  `nextSyncToken` only on the last page, deletions as `status: "cancelled"`, 410 for a
  token that expired, 400 for a sync token combined with `timeMin` and friends.
- Recurring events, https://developers.google.com/workspace/calendar/api/guides/recurringevents:
  with `singleEvents=true` every instance is an event `{masterId}_{start}` with
  `recurringEventId` and `originalStartTime`; a moved or cancelled instance is stored as
  an exception of its own.
- Partial responses, https://developers.google.com/workspace/calendar/api/guides/performance:
  the `fields` parameter (comma lists, `a/b` paths, `items(a,b(c))` sub-selections).
- Errors, https://developers.google.com/workspace/calendar/api/guides/errors: the JSON
  shape, 403 `rateLimitExceeded`/`insufficientPermissions`/`requiredAccessLevel`,
  409 `duplicate`, 410 `fullSyncRequired`, 429; and the 410 "Resource has been
  deleted" Google answers for an event deleted twice.
- Push, https://developers.google.com/workspace/calendar/api/guides/push: channels
  with an HTTPS address, a week's lifetime, `X-Goog-*` headers and an empty body.
- Meet links, https://developers.google.com/workspace/calendar/api/guides/create-events#conferencing:
  `conferenceData.createRequest` honoured only with `conferenceDataVersion=1`.
- OAuth 2.0 for web server apps, https://developers.google.com/identity/protocols/oauth2/web-server:
  the authorization endpoint with granular consent (every scope a box to untick), the
  token endpoint (authorization code with PKCE, refresh token, `invalid_grant`,
  `invalid_client`), `/tokeninfo`, `/revoke`, and the userinfo endpoint.
- OAuth 2.0 for server to server applications, https://developers.google.com/identity/protocols/oauth2/service-account:
  service account keys (the JSON Google hands out), the JWT bearer grant (RFC 7523) with
  an RS256 assertion whose `kid` is the key id and whose claims are `iss` (the service
  account), `scope`, `aud` (always https://oauth2.googleapis.com/token), `iat`, `exp` (at
  most an hour later) and, for domain-wide delegation, `sub` (the user). The Workspace
  admin's delegation (https://support.google.com/a/answer/162106) is `delegate()`; Google
  refuses an assertion asking for a scope outside it with `unauthorized_client`, an
  unknown user with `invalid_grant` "Invalid email or User ID", and a bad signature with
  `invalid_grant` "Invalid JWT Signature.".

Simplifications, on purpose: one OAuth client; a calendar belongs to one user (a
shared calendar is one with another `accessRole` in that user's list); service accounts
act only through domain-wide delegation (no calendars of their own), and a token with
only `calendar.events.freebusy` sees the same event fields as a wider one; one change
counter for all calendars, which sync tokens read per calendar; recurrences are
expanded as dates (all-day) or in `start.timeZone`, from `timeMin`
(or now) up to 730 days on; a master changed or deleted reports every expanded
instance, not only the affected ones; `events.get` knows stored events, not generated
instances; with `singleEvents=false` a series is filtered by its first instance; PATCH
merges top-level fields only; no "sync" message when a channel opens; `id_token`s are
signed with HS256 (allauth does not check the signature of a token it fetched itself).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import itertools
import json
import re
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dateutil.rrule import rrulestr

AUTH = "https://www.googleapis.com/auth/"
SIGN_IN_SCOPES = {"openid", "email", "profile", f"{AUTH}userinfo.email", f"{AUTH}userinfo.profile"}
CALENDAR_LIST_SCOPES = {
    f"{AUTH}calendar.calendarlist.readonly",
    f"{AUTH}calendar.calendarlist",
    f"{AUTH}calendar.readonly",
    f"{AUTH}calendar",
}
# Scopes that reach every calendar in the list, and those for calendars the user owns.
READ_ANY = {
    f"{AUTH}calendar",
    f"{AUTH}calendar.readonly",
    f"{AUTH}calendar.events",
    f"{AUTH}calendar.events.readonly",
}
READ_OWNED = {f"{AUTH}calendar.events.owned", f"{AUTH}calendar.events.owned.readonly"}
# Availability on every calendar in the list: events.list, get and watch take it.
FREE_BUSY = {f"{AUTH}calendar.events.freebusy"}
WRITE_ANY = {f"{AUTH}calendar", f"{AUTH}calendar.events"}
WRITE_OWNED = {f"{AUTH}calendar.events.owned"}
BASE32HEX_ID = re.compile(r"[a-v0-9]{5,1024}")
SYNC_TOKEN_CONFLICTS = (
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "orderBy",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)
WRITABLE = (
    "summary",
    "description",
    "location",
    "start",
    "end",
    "transparency",
    "eventType",
    "attendees",
    "recurrence",
    "extendedProperties",
    "visibility",
    "colorId",
    "reminders",
)
EXPANSION_CAP = dt.timedelta(days=730)
CHANNEL_TTL = dt.timedelta(days=7)
TOKEN_LIFETIME = 3599
ISSUER = "https://accounts.google.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The `aud` of every service account assertion, whatever URL the token request goes to.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300

Answer = tuple[int, dict[str, str], bytes]


class LoggedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter


class GoogleError(Exception):
    """An API error answer, in Google's JSON shape."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain
        self.headers = headers or {}

    def answer(self) -> Answer:
        body = {
            "error": {
                "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}],
                "code": self.status,
                "message": self.message,
            }
        }
        return _json(self.status, body, self.headers)


@dataclass
class FakeEvent:
    resource: dict[str, Any]  # the stored Google event, as events.get returns it
    seq: int = 0  # the change that touched it last

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"


@dataclass
class FakeCalendar:
    id: str
    summary: str
    access_role: str = "owner"
    primary: bool = False
    color: str = "#039be5"
    summary_override: str = ""
    time_zone: str = "UTC"
    events: dict[str, FakeEvent] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return hashlib.sha1(self.id.encode()).hexdigest()[:20]  # noqa: S324 - an id, not security


@dataclass
class FakeUser:
    email: str
    sub: str
    calendars: dict[str, FakeCalendar] = field(default_factory=dict)

    @property
    def primary(self) -> FakeCalendar:
        return next(c for c in self.calendars.values() if c.primary)


@dataclass
class Grant:
    """One consent: what a user let the client do, and its refresh token."""

    email: str
    scopes: frozenset[str]
    refresh_token: str = ""
    revoked: bool = False
    client_id: str = ""  # a service account's; empty: the OAuth client's


@dataclass
class ServiceAccount:
    """A service account and its one key (the public half, to check assertions)."""

    client_email: str
    client_id: str
    key_id: str
    public_key: rsa.RSAPublicKey


@dataclass
class AccessToken:
    token: str
    grant: Grant
    expires_at: dt.datetime


@dataclass
class AuthCode:
    email: str
    redirect_uri: str
    scopes: frozenset[str]
    offline: bool
    code_challenge: str = ""
    used: bool = False


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    email: str
    address: str
    token: str
    expires_at: dt.datetime
    messages: int = 0


@dataclass
class SyncPoint:
    """What a sync token stands for: the calendar as of one change."""

    calendar_id: str
    seq: int
    time_min: dt.datetime | None
    single_events: bool


@dataclass
class Listing:
    """A list answer being paged through: a snapshot taken at its first page."""

    key: tuple[str, str]  # (user, what was listed), so a page token works only there
    items: list[dict[str, Any]]
    extra: dict[str, Any]
    size: int  # items per page
    sync_token: str = ""


@dataclass
class Fault:
    status: int
    retry_after: float | None
    reason: str | None


def _post(url: str, headers: dict[str, str], body: bytes) -> int:
    return requests.post(url, headers=headers, data=body, timeout=5).status_code


class FakeGoogle:
    """Google's calendars and sign-in for any number of users, one OAuth client."""

    def __init__(
        self,
        *,
        client_id: str = "convene-test.apps.googleusercontent.com",
        client_secret: str = "fake-google-secret",  # noqa: S107 - a test client
        page_size: int = 50,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size
        self.empty_first_page = False  # every list starts with an empty page
        self.rotate_refresh_tokens = False
        self.refreshes = 0
        self.users: dict[str, FakeUser] = {}
        self.channels: dict[str, Channel] = {}
        self.stopped_channels: list[str] = []
        self.requests_log: list[LoggedRequest] = []
        # How push notifications leave: tests may swap in their own.
        self.deliver: Callable[[str, dict[str, str], bytes], int] = _post
        self.deliveries: list[tuple[str, dict[str, str], int]] = []
        self.base_url = ""  # set once served
        self.signing_key = "fake-google-id-token-signing-key-for-tests"
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.seq = 0
        self._faults: list[Fault] = []
        self._tokens: dict[str, AccessToken] = {}
        self._refresh: dict[str, Grant] = {}
        self._codes: dict[str, AuthCode] = {}
        self._sync_points: dict[str, SyncPoint] = {}
        self._pages: dict[str, tuple[Listing, int]] = {}
        self.service_accounts: dict[str, ServiceAccount] = {}  # by client_email
        self.delegations: dict[str, frozenset[str]] = {}  # client id -> scopes allowed
        self.assertions: list[dict[str, Any]] = []  # every JWT whose signature held

    # -- state, for tests -------------------------------------------------------------

    def add_user(self, email: str, *, sub: str = "") -> FakeUser:
        with self.lock:
            user = FakeUser(email=email, sub=sub or str(10**20 + len(self.users)))
            self.users[email] = user
            self.add_calendar(user, email, calendar_id=email, primary=True)
            return user

    def add_calendar(
        self,
        user: FakeUser,
        summary: str,
        *,
        calendar_id: str = "",
        access_role: str = "owner",
        primary: bool = False,
        color: str = "#039be5",
        summary_override: str = "",
        time_zone: str = "UTC",
    ) -> FakeCalendar:
        with self.lock:
            calendar = FakeCalendar(
                id=calendar_id or f"{secrets.token_hex(13)}@group.calendar.google.com",
                summary=summary,
                access_role=access_role,
                primary=primary,
                color=color,
                summary_override=summary_override,
                time_zone=time_zone,
            )
            user.calendars[calendar.id] = calendar
            return calendar

    def add_event(
        self,
        calendar: FakeCalendar,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        summary: str = "Elsewhere",
        event_id: str = "",
        **fields: Any,
    ) -> FakeEvent:
        """Another app adds an event. `fields` are event resource fields (`transparency`,
        `eventType`, `attendees`, `recurrence`, `extendedProperties`, `description`...)."""
        with self.lock:
            resource = self._new_resource(
                calendar,
                event_id or _random_id(),
                {"summary": summary, "start": _when(start), "end": _when(end), **fields},
            )
            return self._store(calendar, resource)

    def move_event(
        self,
        calendar: FakeCalendar,
        event_id: str,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        original_start: dt.datetime | dt.date | None = None,
    ) -> FakeEvent:
        """Move an event, or with `original_start` one instance of a recurring one."""
        with self.lock:
            resource = (
                self._exception(calendar, event_id, original_start)
                if original_start is not None
                else dict(calendar.events[event_id].resource)
            )
            resource.update(start=_when(start), end=_when(end), status="confirmed")
            return self._store(calendar, resource)

    def delete_event(
        self,
        calendar: FakeCalendar,
        event_id: str,
        *,
        original_start: dt.datetime | dt.date | None = None,
    ) -> None:
        """Delete an event (and all of its instances), or with `original_start` one
        instance of a recurring event."""
        with self.lock:
            if original_start is not None:
                resource = self._exception(calendar, event_id, original_start)
                self._store(calendar, {**resource, "status": "cancelled"})
            else:
                self._cancel(calendar, calendar.events[event_id])

    def add_service_account(
        self, client_email: str, *, project_id: str = "convene-test"
    ) -> dict[str, str]:
        """A service account with a new RSA key; returns the key file Google would
        download (IAM & Admin > Service accounts > Keys > Add key > JSON), its token_uri
        this fake's."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self.lock:
            account = ServiceAccount(
                client_email=client_email,
                client_id=str(10**20 + 5000 + len(self.service_accounts)),
                key_id=secrets.token_hex(20),
                public_key=key.public_key(),
            )
            self.service_accounts[client_email] = account
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": account.key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": account.client_id,
            "auth_uri": f"{self.base_url}/o/oauth2/auth",
            "token_uri": f"{self.base_url}/token",
            "auth_provider_x509_cert_url": f"{self.base_url}/oauth2/v1/certs",
            "client_x509_cert_url": (
                f"{self.base_url}/robot/v1/metadata/x509/{quote(client_email, safe='')}"
            ),
            "universe_domain": "googleapis.com",
        }

    def delegate(self, client_id: str, scopes: set[str] | tuple[str, ...]) -> None:
        """The Workspace admin's domain-wide delegation for a service account's client
        id (Admin console > Security > API controls > Domain-wide delegation): it
        replaces the scopes allowed before, as editing the entry does."""
        with self.lock:
            self.delegations[client_id] = frozenset(scopes)

    def expire_sync_tokens(self) -> None:
        with self.lock:
            self._sync_points.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            for access in self._tokens.values():
                access.expires_at = past

    def revoke_user(self, email: str) -> None:
        with self.lock:
            for access in self._tokens.values():
                if access.grant.email == email:
                    access.grant.revoked = True

    def issue_token(self, email: str, scopes: set[str] | frozenset[str]) -> str:
        """An access token (with a refresh token behind it) as if `email` had consented
        to `scopes`; for tests of the provider without the consent screen."""
        with self.lock:
            grant = Grant(email=email, scopes=frozenset(scopes), refresh_token=_secret("1//"))
            self._refresh[grant.refresh_token] = grant
            return self._issue(grant).token

    def refresh_token_of(self, access_token: str) -> str:
        with self.lock:
            return self._tokens[access_token].grant.refresh_token

    def fail_next(
        self,
        status: int,
        retry_after: float | None = None,
        reason: str | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next `count` Calendar API requests with `status` (429, 403 with a
        rate-limit `reason`, 5xx), with a Retry-After header when given."""
        with self.lock:
            self._faults.extend(Fault(status, retry_after, reason) for _ in range(count))

    def notify(self, calendar_id: str, *, state: str = "exists") -> list[int]:
        """Tell every live channel on the calendar that it changed, as Google does:
        headers only, empty body. Returns the status each address answered."""
        now = dt.datetime.now(dt.UTC)
        with self.lock:
            outgoing = []
            for channel in self.channels.values():
                if channel.calendar_id != calendar_id or channel.expires_at <= now:
                    continue
                channel.messages += 1
                headers = {
                    "X-Goog-Channel-ID": channel.id,
                    "X-Goog-Channel-Expiration": _http_date(channel.expires_at),
                    "X-Goog-Resource-ID": channel.resource_id,
                    "X-Goog-Resource-URI": self._resource_uri(calendar_id),
                    "X-Goog-Resource-State": state,
                    "X-Goog-Message-Number": str(channel.messages),
                    "Content-Length": "0",
                }
                if channel.token:
                    headers["X-Goog-Channel-Token"] = channel.token
                outgoing.append((channel.address, headers))
        # Outside the lock: the receiver may well call back into this fake.
        statuses = [self.deliver(address, headers, b"") for address, headers in outgoing]
        with self.lock:
            self.deliveries.extend(
                (address, headers, status)
                for (address, headers), status in zip(outgoing, statuses, strict=True)
            )
        return statuses

    # -- HTTP -----------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.lock:
            self.requests_log.append(LoggedRequest(method, parts.path, query))
            try:
                if parts.path.startswith("/calendar/v3/"):
                    return self._api(method, parts.path, query, headers, body)
                return self._oauth(method, parts.path, query, headers, body)
            except GoogleError as error:
                return error.answer()

    # -- Calendar API ---------------------------------------------------------------

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        if self._faults:
            raise self._fault(self._faults.pop(0))
        access = self._bearer(headers)
        user, scopes = self.users[access.grant.email], access.grant.scopes
        segments = [unquote(s) for s in path.removeprefix("/calendar/v3/").split("/")]
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            raise GoogleError(400, "parseError", "Parse Error") from None
        result: dict[str, Any] | None
        match (method, segments):
            case ("GET", ["users", "me", "calendarList"]):
                if not scopes & CALENDAR_LIST_SCOPES:
                    raise _insufficient()
                result = self._calendar_list(user, query)
            case ("GET", ["calendars", calendar_id, "events"]):
                calendar = self._readable(user, scopes, calendar_id)
                result = self._events_list(user, calendar, query)
            case ("POST", ["calendars", calendar_id, "events"]):
                calendar = self._writable(user, scopes, calendar_id)
                result = self._insert(calendar, query, payload)
            case ("POST", ["calendars", calendar_id, "events", "watch"]):
                calendar = self._readable(user, scopes, calendar_id)
                result = self._watch(user, calendar, payload)
            case ("GET", ["calendars", calendar_id, "events", event_id]):
                result = self._event(self._readable(user, scopes, calendar_id), event_id).resource
            case ("PUT" | "PATCH", ["calendars", calendar_id, "events", event_id]):
                calendar = self._writable(user, scopes, calendar_id)
                result = self._update(calendar, event_id, query, payload, patch=method == "PATCH")
            case ("DELETE", ["calendars", calendar_id, "events", event_id]):
                calendar = self._writable(user, scopes, calendar_id)
                event = self._event(calendar, event_id)
                if event.cancelled:
                    raise GoogleError(410, "deleted", "Resource has been deleted")
                self._cancel(calendar, event)
                result = None
            case ("POST", ["channels", "stop"]):
                if not scopes & (READ_ANY | READ_OWNED):
                    raise _insufficient()
                self._stop(user, payload)
                result = None
            case _:
                raise GoogleError(404, "notFound", "Not Found")
        if result is None:
            return 204, {}, b""
        if query.get("fields"):
            result = select_fields(result, parse_fields(query["fields"]))
        return _json(200, result)

    def _fault(self, fault: Fault) -> GoogleError:
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        if fault.status >= 500:
            return GoogleError(fault.status, fault.reason or "backendError", "Backend Error")
        return GoogleError(
            fault.status,
            fault.reason or "rateLimitExceeded",
            "Rate Limit Exceeded",
            domain="usageLimits",
            headers=headers,
        )

    def _bearer(self, headers: dict[str, str]) -> AccessToken:
        authorization = headers.get("Authorization", "")
        access = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if (
            not authorization.startswith("Bearer ")
            or access is None
            or access.grant.revoked
            or access.expires_at <= dt.datetime.now(dt.UTC)
        ):
            raise GoogleError(
                401,
                "authError",
                "Invalid Credentials",
                headers={"WWW-Authenticate": f'Bearer realm="{ISSUER}/", error="invalid_token"'},
            )
        return access

    def _lookup(self, user: FakeUser, calendar_id: str) -> FakeCalendar:
        calendar = user.primary if calendar_id == "primary" else user.calendars.get(calendar_id)
        if calendar is None:
            raise GoogleError(404, "notFound", "Not Found")
        return calendar

    def _readable(self, user: FakeUser, scopes: frozenset[str], calendar_id: str) -> FakeCalendar:
        calendar = self._lookup(user, calendar_id)
        if not (
            scopes & (READ_ANY | FREE_BUSY)
            or (scopes & READ_OWNED and calendar.access_role == "owner")
        ):
            raise _insufficient()
        return calendar

    def _writable(self, user: FakeUser, scopes: frozenset[str], calendar_id: str) -> FakeCalendar:
        calendar = self._lookup(user, calendar_id)
        if calendar.access_role not in ("owner", "writer"):
            raise GoogleError(
                403, "requiredAccessLevel", "You need to have writer access to this calendar."
            )
        if not (scopes & WRITE_ANY or (scopes & WRITE_OWNED and calendar.access_role == "owner")):
            raise _insufficient()
        return calendar

    def _event(self, calendar: FakeCalendar, event_id: str) -> FakeEvent:
        event = calendar.events.get(event_id)
        if event is None:
            raise GoogleError(404, "notFound", "Not Found")
        return event

    # -- lists and paging -------------------------------------------------------------

    def _calendar_list(self, user: FakeUser, query: dict[str, str]) -> dict[str, Any]:
        if "pageToken" in query:
            return self._page(user, "calendarList", query)
        items = []
        for calendar in user.calendars.values():
            entry = {
                "kind": "calendar#calendarListEntry",
                "etag": f'"{calendar.resource_id}"',
                "id": calendar.id,
                "summary": calendar.summary,
                "timeZone": calendar.time_zone,
                "backgroundColor": calendar.color,
                "foregroundColor": "#000000",
                "selected": True,
                "accessRole": calendar.access_role,
                "defaultReminders": [],
            }
            if calendar.summary_override:
                entry["summaryOverride"] = calendar.summary_override
            if calendar.primary:
                entry["primary"] = True
            items.append(entry)
        size = min(self.page_size, _max_results(query, 250))
        listing = Listing(
            (user.email, "calendarList"), items, {"kind": "calendar#calendarList"}, size
        )
        return self._first_page(listing)

    def _events_list(
        self, user: FakeUser, calendar: FakeCalendar, query: dict[str, str]
    ) -> dict[str, Any]:
        key = f"events:{calendar.id}"
        if "pageToken" in query:
            return self._page(user, key, query)
        single_events = query.get("singleEvents") == "true"
        sync_token = query.get("syncToken")
        if sync_token:
            if conflicts := [name for name in SYNC_TOKEN_CONFLICTS if name in query]:
                raise GoogleError(
                    400,
                    "invalid",
                    f"Sync token cannot be combined with {', '.join(conflicts)}.",
                )
            point = self._sync_points.get(sync_token)
            if point is None or point.calendar_id != calendar.id:
                raise GoogleError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            time_min = point.time_min
            items = self._changed_since(calendar, point.seq, time_min, single_events)
        else:
            time_min = _query_time(query, "timeMin")
            time_max = _query_time(query, "timeMax")
            items = self._current(
                calendar, time_min, time_max, single_events, query.get("showDeleted") == "true"
            )
        token = _secret("CP")
        self._sync_points[token] = SyncPoint(calendar.id, self.seq, time_min, single_events)
        extra = {
            "kind": "calendar#events",
            "etag": f'"{self.seq}"',
            "summary": calendar.summary,
            "updated": _rfc3339(dt.datetime.now(dt.UTC)),
            "timeZone": calendar.time_zone,
            "accessRole": calendar.access_role,
            "defaultReminders": [],
        }
        size = min(self.page_size, _max_results(query, 2500))
        listing = Listing((user.email, key), items, extra, size, sync_token=token)
        return self._first_page(listing)

    def _first_page(self, listing: Listing) -> dict[str, Any]:
        if self.empty_first_page:
            return {**listing.extra, "items": [], "nextPageToken": self._page_token(listing, 0)}
        return self._page_at(listing, 0)

    def _page(self, user: FakeUser, what: str, query: dict[str, str]) -> dict[str, Any]:
        stored = self._pages.get(query["pageToken"])
        if stored is None or stored[0].key != (user.email, what):
            raise GoogleError(400, "invalid", "Invalid page token value.")
        return self._page_at(*stored)

    def _page_at(self, listing: Listing, offset: int) -> dict[str, Any]:
        end = offset + listing.size
        page = {**listing.extra, "items": listing.items[offset:end]}
        if end < len(listing.items):
            page["nextPageToken"] = self._page_token(listing, end)
        elif listing.sync_token:
            page["nextSyncToken"] = listing.sync_token
        return page

    def _page_token(self, listing: Listing, offset: int) -> str:
        token = _secret("EkQK")
        self._pages[token] = (listing, offset)
        return token

    def _current(
        self,
        calendar: FakeCalendar,
        time_min: dt.datetime | None,
        time_max: dt.datetime | None,
        single_events: bool,
        show_deleted: bool,
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for event in list(calendar.events.values()):
            resource = event.resource
            if single_events and resource.get("recurrence"):
                if not event.cancelled:
                    found.extend(self._instances(calendar, event, time_min))
                continue
            if single_events and resource.get("recurringEventId"):
                continue  # an exception: its master's expansion brings it
            found.append(resource)
        return [
            item
            for item in found
            if (show_deleted or item.get("status") != "cancelled")
            and _overlaps(item, calendar.time_zone, time_min, time_max)
        ]

    def _changed_since(
        self, calendar: FakeCalendar, seq: int, time_min: dt.datetime | None, single_events: bool
    ) -> list[dict[str, Any]]:
        changed: dict[str, dict[str, Any]] = {}
        for event in calendar.events.values():
            if event.seq <= seq:
                continue
            if single_events and event.resource.get("recurrence"):
                for instance in self._instances(calendar, event, time_min):
                    gone = event.cancelled or instance.get("status") == "cancelled"
                    changed[instance["id"]] = _tombstone(instance) if gone else instance
                continue
            changed[event.id] = _tombstone(event.resource) if event.cancelled else event.resource
        return list(changed.values())

    # -- recurrences ------------------------------------------------------------------

    def _instances(
        self, calendar: FakeCalendar, master: FakeEvent, since: dt.datetime | None
    ) -> list[dict[str, Any]]:
        """The master's instances from `since` (or now) up to the expansion cap, each
        replaced by its exception where one is stored."""
        resource = master.resource
        first, duration, zone = _series_start(resource)
        origin = since or dt.datetime.now(dt.UTC)
        if zone is None:  # all-day: naive dates in the calendar's zone
            origin = origin.astimezone(ZoneInfo(calendar.time_zone)).replace(tzinfo=None)
        rules = rrulestr("\n".join(resource["recurrence"]), dtstart=first, forceset=True)
        instances = []
        for occurrence in rules.between(origin - duration, origin + EXPANSION_CAP, inc=True):
            generated = _instance(resource, occurrence, duration, zone)
            stored = calendar.events.get(generated["id"])
            instances.append(stored.resource if stored else generated)
        return instances

    def _exception(
        self, calendar: FakeCalendar, master_id: str, original_start: dt.datetime | dt.date
    ) -> dict[str, Any]:
        """The stored exception of one instance, or a new one made from the master."""
        master = calendar.events[master_id].resource
        _, duration, zone = _series_start(master)
        if zone is None:
            occurrence = dt.datetime.combine(_as_date(original_start), dt.time())
        else:
            occurrence = _as_datetime(original_start).astimezone(zone)
        generated = _instance(master, occurrence, duration, zone)
        stored = calendar.events.get(generated["id"])
        return dict(stored.resource) if stored else generated

    # -- writes -----------------------------------------------------------------------

    def _new_resource(
        self, calendar: FakeCalendar, event_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        now = _rfc3339(dt.datetime.now(dt.UTC))
        resource = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "creator": {"email": calendar.id, "self": True},
            "organizer": {"email": calendar.id, "self": True},
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "eventType": "default",
            "reminders": {"useDefault": True},
        }
        resource.update({k: v for k, v in fields.items() if v not in ("", None)})
        return resource

    def _store(self, calendar: FakeCalendar, resource: dict[str, Any]) -> FakeEvent:
        self.seq = next(self._seq)
        resource["etag"] = f'"{3_000_000_000_000_000 + self.seq}"'
        resource["updated"] = _rfc3339(dt.datetime.now(dt.UTC))
        event = FakeEvent(resource=resource, seq=self.seq)
        calendar.events[event.id] = event
        return event

    def _cancel(self, calendar: FakeCalendar, event: FakeEvent) -> None:
        for other in list(calendar.events.values()):
            if other.resource.get("recurringEventId") == event.id and not other.cancelled:
                self._store(calendar, {**other.resource, "status": "cancelled"})
        self._store(calendar, {**event.resource, "status": "cancelled"})

    def _insert(
        self, calendar: FakeCalendar, query: dict[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        event_id = str(body.get("id") or _random_id())
        if not BASE32HEX_ID.fullmatch(event_id):
            raise GoogleError(400, "invalid", "Invalid resource id value.")
        if event_id in calendar.events:
            raise GoogleError(409, "duplicate", "The requested identifier already exists.")
        if "start" not in body or "end" not in body:
            raise GoogleError(400, "required", "Missing time.")
        resource = self._new_resource(
            calendar, event_id, {name: body[name] for name in WRITABLE if name in body}
        )
        resource["status"] = body.get("status", "confirmed")
        self._conference(resource, body, query, previous=None)
        return self._store(calendar, resource).resource

    def _update(
        self,
        calendar: FakeCalendar,
        event_id: str,
        query: dict[str, str],
        body: dict[str, Any],
        *,
        patch: bool,
    ) -> dict[str, Any]:
        previous = self._event(calendar, event_id).resource
        if patch:
            resource = dict(previous)
        else:
            kept = ("kind", "id", "htmlLink", "created", "creator", "organizer", "iCalUID")
            resource = {name: previous[name] for name in kept if name in previous}
            for name in ("recurringEventId", "originalStartTime"):
                if name in previous:
                    resource[name] = previous[name]
        resource.update({name: body[name] for name in WRITABLE if name in body})
        resource["status"] = body.get("status", previous["status"] if patch else "confirmed")
        resource["sequence"] = int(previous.get("sequence", 0)) + 1
        self._conference(resource, body, query, previous=previous, patch=patch)
        return self._store(calendar, resource).resource

    def _conference(
        self,
        resource: dict[str, Any],
        body: dict[str, Any],
        query: dict[str, str],
        *,
        previous: dict[str, Any] | None,
        patch: bool = False,
    ) -> None:
        """conferenceData as Google treats it: ignored unless conferenceDataVersion=1;
        a createRequest seen before (same requestId) keeps the conference it made."""
        before = {
            k: previous[k] for k in ("conferenceData", "hangoutLink") if k in (previous or {})
        }
        resource.pop("conferenceData", None)
        resource.pop("hangoutLink", None)
        wanted = body.get("conferenceData")
        if query.get("conferenceDataVersion") != "1" or (wanted is None and patch):
            resource.update(before)
            return
        if wanted is None:
            return  # a full update without conferenceData removes it
        create = wanted.get("createRequest")
        if create is None:
            resource["conferenceData"] = wanted
            return
        earlier = before.get("conferenceData", {}).get("createRequest", {})
        if earlier.get("requestId") == create.get("requestId"):
            resource.update(before)
            return
        if create.get("conferenceSolutionKey", {}).get("type") != "hangoutsMeet":
            raise GoogleError(400, "invalid", "Invalid conference type value.")
        code = "-".join(
            "".join(secrets.choice(string.ascii_lowercase) for _ in range(n)) for n in (3, 4, 3)
        )
        link = f"https://meet.google.com/{code}"
        resource["hangoutLink"] = link
        resource["conferenceData"] = {
            "createRequest": {**create, "status": {"statusCode": "success"}},
            "entryPoints": [
                {"entryPointType": "video", "uri": link, "label": link.removeprefix("https://")}
            ],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": code,
        }

    # -- push channels ----------------------------------------------------------------

    def _watch(
        self, user: FakeUser, calendar: FakeCalendar, body: dict[str, Any]
    ) -> dict[str, Any]:
        address = str(body.get("address", ""))
        if body.get("type") not in ("web_hook", "webhook"):
            raise GoogleError(400, "invalid", "Invalid channel type.")
        if not address.startswith("https://"):
            raise GoogleError(
                400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}"
            )
        channel_id = str(body.get("id", ""))
        if not channel_id or channel_id in self.channels:
            raise GoogleError(400, "channelIdNotUnique", "Channel id not unique.")
        ttl = body.get("params", {}).get("ttl")
        lifetime = dt.timedelta(seconds=int(ttl)) if ttl else CHANNEL_TTL
        channel = Channel(
            id=channel_id,
            resource_id=calendar.resource_id,
            calendar_id=calendar.id,
            email=user.email,
            address=address,
            token=str(body.get("token", "")),
            expires_at=dt.datetime.now(dt.UTC).replace(microsecond=0) + lifetime,
        )
        self.channels[channel.id] = channel
        answer = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": self._resource_uri(calendar.id),
            "expiration": str(int(channel.expires_at.timestamp() * 1000)),
        }
        if channel.token:
            answer["token"] = channel.token
        return answer

    def _stop(self, user: FakeUser, body: dict[str, Any]) -> None:
        channel = self.channels.get(str(body.get("id", "")))
        if (
            channel is None
            or channel.resource_id != body.get("resourceId")
            or channel.email != user.email
        ):
            raise GoogleError(404, "notFound", f"Channel '{body.get('id')}' not found.")
        del self.channels[channel.id]
        self.stopped_channels.append(channel.id)

    def _resource_uri(self, calendar_id: str) -> str:
        return (
            f"{self.base_url}/calendar/v3/calendars/{quote(calendar_id, safe='')}/events?alt=json"
        )

    # -- OAuth 2.0 ----------------------------------------------------------------------

    def _oauth(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        match (method, path):
            case ("GET", "/o/oauth2/v2/auth"):
                return self._authorize(query)
            case ("POST", "/o/oauth2/v2/auth/consent"):
                return self._consent(parse_qs(body.decode(), keep_blank_values=True))
            case ("POST", "/token"):
                return self._token(form, headers)
            case ("GET" | "POST", "/tokeninfo"):
                return self._tokeninfo(query.get("access_token") or form.get("access_token", ""))
            case ("POST", "/revoke"):
                return self._revoke(query.get("token") or form.get("token", ""))
            case ("GET", "/oauth2/v2/userinfo"):
                access = self._bearer(headers)
                user = self.users[access.grant.email]
                return _json(200, {"id": user.sub, "email": user.email, "verified_email": True})
        return 404, {"Content-Type": "text/plain"}, b"Not Found"

    def _authorize(self, query: dict[str, str]) -> Answer:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {"Content-Type": "text/html"}, b"<h1>Error 400: invalid_request</h1>"
        requested = query.get("scope", "").split()
        email = query.get("login_hint") or next(iter(self.users), "")
        hidden = {
            name: query.get(name, "")
            for name in (
                "client_id",
                "redirect_uri",
                "state",
                "access_type",
                "code_challenge",
                "code_challenge_method",
            )
        }
        hidden["requested"] = " ".join(requested)
        inputs = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
            for name, value in hidden.items()
        )
        boxes = "".join(
            f'<li><label><input type="checkbox" name="scope" value="{html.escape(scope)}" '
            f"checked> {html.escape(scope)}</label></li>"
            for scope in requested
            if scope not in SIGN_IN_SCOPES
        )
        page = (
            "<!doctype html><title>Sign in - Google Accounts</title>"
            f'<form method="post" action="/o/oauth2/v2/auth/consent">{inputs}'
            f'<label>Account <input name="email" value="{html.escape(email)}"></label>'
            f"<p>Convene wants to access your Google Account</p><ul>{boxes}</ul>"
            '<button type="submit" name="action" value="cancel">Cancel</button>'
            '<button type="submit" name="action" value="allow">Allow</button></form>'
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()

    def _consent(self, form: dict[str, list[str]]) -> Answer:
        def one(name: str) -> str:
            return form.get(name, [""])[-1]

        redirect_uri = one("redirect_uri")
        separator = "&" if "?" in redirect_uri else "?"
        if one("action") != "allow":
            query = urlencode({"error": "access_denied", "state": one("state")})
            return 302, {"Location": f"{redirect_uri}{separator}{query}"}, b""
        if one("email") not in self.users:
            return 400, {"Content-Type": "text/plain"}, b"Couldn't find your Google Account"
        ticked = set(form.get("scope", []))
        granted = frozenset(
            scope for scope in one("requested").split() if scope in SIGN_IN_SCOPES | ticked
        )
        code = _secret("4/0A")
        self._codes[code] = AuthCode(
            email=one("email"),
            redirect_uri=redirect_uri,
            scopes=granted,
            offline=one("access_type") == "offline",
            code_challenge=one("code_challenge"),
        )
        query = urlencode({"state": one("state"), "code": code, "scope": " ".join(sorted(granted))})
        return 302, {"Location": f"{redirect_uri}{separator}{query}"}, b""

    def _token(self, form: dict[str, str], headers: dict[str, str]) -> Answer:
        if form.get("grant_type") == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""))
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != self.client_id or secret != self.client_secret:
            return _json(
                401,
                {"error": "invalid_client", "error_description": "The OAuth client was not found."},
            )
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            grant = self._refresh.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return _invalid_grant("Token has been expired or revoked.")
            self.refreshes += 1
            answer = self._token_answer(self._issue(grant))
            if self.rotate_refresh_tokens:
                del self._refresh[grant.refresh_token]
                grant.refresh_token = _secret("1//")
                self._refresh[grant.refresh_token] = grant
                answer["refresh_token"] = grant.refresh_token
            return _json(200, answer)
        return _json(400, {"error": "unsupported_grant_type"})

    def _jwt_bearer(self, assertion: str) -> Answer:
        """A service account's signed assertion for a token acting as its `sub`."""
        try:
            header = jwt.get_unverified_header(assertion)
            claimed = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return _json(400, {"error": "invalid_request", "error_description": "Invalid JWT."})
        account = self.service_accounts.get(str(claimed.get("iss", "")))
        if account is None:
            return _invalid_grant("Invalid grant: account not found")
        try:
            if header.get("alg") != "RS256" or header.get("kid") != account.key_id:
                raise jwt.InvalidSignatureError(header.get("kid"))
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=TOKEN_AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp"], "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            return _invalid_grant("Invalid JWT Signature.")
        except jwt.InvalidAudienceError:
            return _invalid_grant("Invalid JWT: Failed audience check.")
        except jwt.InvalidTokenError as error:
            return _invalid_grant(f"Invalid JWT: {error}")
        self.assertions.append(claims)
        now = int(dt.datetime.now(dt.UTC).timestamp())
        issued, expires = int(claims["iat"]), int(claims["exp"])
        if not (
            issued - CLOCK_SKEW <= now < expires + CLOCK_SKEW
            and 0 < expires - issued <= MAX_ASSERTION_LIFETIME
        ):
            return _invalid_grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim."
            )
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return _json(
                400,
                {
                    "error": "invalid_scope",
                    "error_description": "Invalid OAuth scope or ID token audience provided.",
                },
            )
        if "sub" not in claims:
            return _json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "This fake issues service account tokens only "
                    "through domain-wide delegation (a JWT with `sub`).",
                },
            )
        if not scopes <= self.delegations.get(account.client_id, frozenset()):
            # 401, as Google answers it (a logged answer in
            # https://github.com/hlavki/g-suite-identity-sync/issues/7).
            return _json(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes "
                    "requested.",
                },
            )
        if claims["sub"] not in self.users:
            return _invalid_grant("Invalid email or User ID")
        grant = Grant(email=str(claims["sub"]), scopes=scopes, client_id=account.client_id)
        access = self._issue(grant)
        return _json(
            200,
            {"access_token": access.token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"},
        )

    def _exchange_code(self, form: dict[str, str]) -> Answer:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or code.redirect_uri != form.get("redirect_uri"):
            return _invalid_grant("Malformed auth code.")
        if code.code_challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.code_challenge:
                return _invalid_grant("Invalid code verifier.")
        code.used = True
        grant = Grant(email=code.email, scopes=code.scopes)
        if code.offline:
            grant.refresh_token = _secret("1//")
            self._refresh[grant.refresh_token] = grant
        answer = self._token_answer(self._issue(grant))
        if grant.refresh_token:
            answer["refresh_token"] = grant.refresh_token
        if "openid" in grant.scopes:
            user = self.users[grant.email]
            now = int(dt.datetime.now(dt.UTC).timestamp())
            claims = {
                "iss": ISSUER,
                "azp": self.client_id,
                "aud": self.client_id,
                "sub": user.sub,
                "email": user.email,
                "email_verified": True,
                "iat": now,
                "exp": now + TOKEN_LIFETIME,
            }
            answer["id_token"] = jwt.encode(claims, self.signing_key, algorithm="HS256")
        return _json(200, answer)

    def _issue(self, grant: Grant) -> AccessToken:
        access = AccessToken(
            token=_secret("ya29."),
            grant=grant,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=TOKEN_LIFETIME),
        )
        self._tokens[access.token] = access
        return access

    def _token_answer(self, access: AccessToken) -> dict[str, Any]:
        return {
            "access_token": access.token,
            "expires_in": TOKEN_LIFETIME,
            "scope": " ".join(sorted(access.grant.scopes)),
            "token_type": "Bearer",
        }

    def _tokeninfo(self, token: str) -> Answer:
        access = self._tokens.get(token)
        now = dt.datetime.now(dt.UTC)
        if access is None or access.grant.revoked or access.expires_at <= now:
            return _json(400, {"error": "invalid_token", "error_description": "Invalid Value"})
        user = self.users[access.grant.email]
        client_id = access.grant.client_id or self.client_id
        return _json(
            200,
            {
                "azp": client_id,
                "aud": client_id,
                "sub": user.sub,
                "scope": " ".join(sorted(access.grant.scopes)),
                "exp": str(int(access.expires_at.timestamp())),
                "expires_in": str(int((access.expires_at - now).total_seconds())),
                "email": user.email,
                "email_verified": "true",
                "access_type": "offline" if access.grant.refresh_token else "online",
            },
        )

    def _revoke(self, token: str) -> Answer:
        access = self._tokens.get(token)
        grant = access.grant if access else self._refresh.get(token)
        if grant is None or grant.revoked:
            return _json(
                400, {"error": "invalid_token", "error_description": "Token expired or revoked"}
            )
        grant.revoked = True
        return _json(200, {})


# -- the `fields` parameter ------------------------------------------------------------


def parse_fields(text: str) -> dict[str, Any]:
    """`a,b/c,d(e,f(g))` -> {"a": {}, "b": {"c": {}}, "d": {"e": {}, "f": {"g": {}}}};
    an empty dict means "the whole value"."""
    tree, rest = _parse_selection(text.replace(" ", ""))
    if rest:
        raise GoogleError(400, "invalidParameter", f"Invalid field selection {text}")
    return tree


def _parse_selection(text: str) -> tuple[dict[str, Any], str]:
    tree: dict[str, Any] = {}
    while text:
        match = re.match(r"[A-Za-z0-9_*]+(?:/[A-Za-z0-9_*]+)*", text)
        if match is None:
            raise GoogleError(400, "invalidParameter", f"Invalid field selection {text}")
        node = tree
        for name in match.group().split("/"):
            node = node.setdefault(name, {})
        text = text[match.end() :]
        if text.startswith("("):
            inner, text = _parse_selection(text[1:])
            if not text.startswith(")"):
                raise GoogleError(400, "invalidParameter", "Unbalanced parentheses in fields.")
            node.update(inner)
            text = text[1:]
        if text.startswith(")"):
            break
        text = text.removeprefix(",")
    return tree, text


def select_fields(value: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [select_fields(item, tree) for item in value]
    if isinstance(value, dict):
        if "*" in tree:
            return {k: select_fields(v, tree["*"]) for k, v in value.items()}
        return {k: select_fields(value[k], sub) for k, sub in tree.items() if k in value}
    return value


# -- helpers ---------------------------------------------------------------------------


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
        json.dumps(body).encode(),
    )


def _insufficient() -> GoogleError:
    return GoogleError(
        403, "insufficientPermissions", "Request had insufficient authentication scopes."
    )


def _invalid_grant(description: str) -> Answer:
    return _json(400, {"error": "invalid_grant", "error_description": description})


def _secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def _random_id() -> str:
    return base64.b32hexencode(secrets.token_bytes(15)).decode().lower()


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_date(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _when(value: dt.datetime | dt.date) -> dict[str, str]:
    if isinstance(value, dt.datetime):
        return {"dateTime": value.isoformat(), "timeZone": str(value.tzinfo or "UTC")}
    return {"date": value.isoformat()}


def _as_date(value: dt.datetime | dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _as_datetime(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def _zone(value: dict[str, Any]) -> ZoneInfo:
    try:
        return ZoneInfo(str(value.get("timeZone") or "UTC"))
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _series_start(
    master: dict[str, Any],
) -> tuple[dt.datetime, dt.timedelta, ZoneInfo | None]:
    """The first start of a series, its duration, and its zone (None: all-day, whose
    starts are naive midnights)."""
    start, end = master["start"], master["end"]
    if "date" in start:
        first = dt.datetime.combine(dt.date.fromisoformat(start["date"]), dt.time())
        return first, dt.date.fromisoformat(end["date"]) - first.date(), None
    zone = _zone(start)
    first = dt.datetime.fromisoformat(start["dateTime"]).astimezone(zone)
    return first, dt.datetime.fromisoformat(end["dateTime"]) - first, zone


def _instance(
    master: dict[str, Any], occurrence: dt.datetime, duration: dt.timedelta, zone: ZoneInfo | None
) -> dict[str, Any]:
    instance = {k: v for k, v in master.items() if k != "recurrence"}
    if zone is None:
        stamp = occurrence.strftime("%Y%m%d")
        start = {"date": occurrence.date().isoformat()}
        end = {"date": (occurrence.date() + duration).isoformat()}
    else:
        stamp = occurrence.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        start = {"dateTime": occurrence.isoformat(), "timeZone": str(zone)}
        end = {"dateTime": (occurrence + duration).isoformat(), "timeZone": str(zone)}
    instance.update(
        id=f"{master['id']}_{stamp}",
        recurringEventId=master["id"],
        originalStartTime=dict(start),
        start=start,
        end=end,
    )
    return instance


def _tombstone(resource: dict[str, Any]) -> dict[str, Any]:
    keep = ("kind", "etag", "id", "recurringEventId", "originalStartTime")
    return {**{k: resource[k] for k in keep if k in resource}, "status": "cancelled"}


def _moment(value: dict[str, Any], zone: str) -> dt.datetime:
    if "dateTime" in value:
        return dt.datetime.fromisoformat(value["dateTime"]).astimezone(dt.UTC)
    day = dt.date.fromisoformat(value["date"])
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


def _overlaps(
    item: dict[str, Any], zone: str, time_min: dt.datetime | None, time_max: dt.datetime | None
) -> bool:
    """timeMin bounds an event's end, timeMax its start (both exclusive)."""
    if "start" not in item or "end" not in item:
        return True
    if time_min is not None and _moment(item["end"], zone) <= time_min:
        return False
    return time_max is None or _moment(item["start"], zone) < time_max


def _query_time(query: dict[str, str], name: str) -> dt.datetime | None:
    if name not in query:
        return None
    try:
        moment = dt.datetime.fromisoformat(query[name])
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise GoogleError(400, "badRequest", f"Bad Request: {name}")
    return moment


def _max_results(query: dict[str, str], largest: int) -> int:
    try:
        value = int(query.get("maxResults", largest))
    except ValueError:
        value = 0
    if not 1 <= value <= largest:
        raise GoogleError(400, "invalid", "Invalid value for maxResults.")
    return value


# -- serving ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.google.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    google: FakeGoogle


@dataclass
class ServedGoogle:
    google: FakeGoogle
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve(google: FakeGoogle) -> Iterator[ServedGoogle]:
    """Serve `google` on a free loopback port for as long as the generator lives; every
    endpoint (API, OAuth, userinfo) hangs off the one base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.google = google
    port = int(server.server_address[1])
    google.base_url = f"http://127.0.0.1:{port}"
    # A short poll interval: shutdown() waits for it at the end of every test.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield ServedGoogle(google, port)
    finally:
        server.shutdown()
        server.server_close()
