"""CalDAV (RFC 4791) on the `caldav` library: any CalDAV server, and iCloud.

Every request goes through the guarded HTTP client (providers/http.py). Busy time is
pulled incrementally with RFC 6578 sync-collection where the server supports it, with
an etag comparison where it does not; recurrences are expanded locally by
providers/ical.py, bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import niquests
from caldav.calendarobjectresource import CalendarObjectResource
from caldav.collection import Calendar as DAVCalendar
from caldav.collection import Principal, SynchronizableCalendarObjectCollection
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.url import URL
from django.conf import settings

from apps.calendars.providers import ical
from apps.calendars.providers.base import (
    AuthError,
    BadDataError,
    BusyChanges,
    CalendarProvider,
    EventPayload,
    EventRef,
    Identity,
    PermissionError,
    RemoteCalendar,
    ServerError,
    TransientError,
    Window,
)
from apps.calendars.providers.http import (
    OutboundPolicy,
    RefusedAddressError,
    guarded_davclient,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

# multiget asks for this many resources per REPORT: big enough that a 2,000-event
# calendar is a handful of requests, small enough to keep responses in memory.
MULTIGET_BATCH = 500
SYNC_TOKEN_PRECONDITION = "{DAV:}valid-sync-token"  # noqa: S105 - an XML element name


class CalDAVProvider(CalendarProvider):
    key = "caldav"
    name = "CalDAV"
    # What the person is told when the server refuses the credentials.
    auth_failure = (
        "The server rejected the username or password. Check them (if your provider "
        "offers app passwords, use one) and try again."
    )

    def __init__(
        self,
        credentials: Mapping[str, Any],
        *,
        time_zone: str = "UTC",
        policy: OutboundPolicy | None = None,
    ) -> None:
        super().__init__(credentials, time_zone=time_zone, policy=policy)
        self.url = self.server_url(credentials)
        self._client: DAVClient | None = None
        self._principal: Principal | None = None
        self.requests = 0

    def server_url(self, credentials: Mapping[str, Any]) -> str:
        url = str(credentials.get("server_url") or "").strip()
        if not url:
            raise ServerError("Enter the address of your CalDAV server.")
        return url

    # -- plumbing -------------------------------------------------------------------

    @property
    def client(self) -> DAVClient:
        if self._client is None:
            try:
                self._client = guarded_davclient(
                    self.url,
                    policy=self.policy,
                    username=str(self.credentials.get("username", "")),
                    password=str(self.credentials.get("password", "")),
                    # Basic up front saves the 401 round trip on every new client; every
                    # server we know of (iCloud, Fastmail, Nextcloud, Radicale) takes it.
                    auth_type="basic",
                )
            except RefusedAddressError as error:
                raise ServerError(error.message) from error
            self._client.session.hooks["response"].append(self._count)
        return self._client

    def _count(self, response: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return response

    @contextmanager
    def _translated(self, *, connecting: bool = False) -> Iterator[None]:
        """Turn library and network errors into the contract's typed errors."""
        try:
            yield
        except RefusedAddressError as error:
            raise ServerError(error.message) from error
        except dav_error.AuthorizationError as error:
            if getattr(error, "status", None) == 403 or "403" in str(error.reason or ""):
                raise PermissionError(
                    "The server refused access to this calendar (403). Check that the "
                    "account may read it."
                ) from error
            raise AuthError(self.auth_failure) from error
        except dav_error.NotFoundError as error:
            raise ServerError(
                f"{self.url} is not a CalDAV address: the server answered “not found”. "
                "Check the address your provider gives for CalDAV."
            ) from error
        except dav_error.RateLimitError as error:
            raise TransientError("The server asks us to slow down.", retry_after=60) from error
        except niquests.exceptions.SSLError as error:
            raise ServerError(
                "The server's security certificate is not valid for this address, so "
                "Convene will not send your password to it."
            ) from error
        except (niquests.exceptions.ConnectionError, niquests.exceptions.Timeout) as error:
            if connecting:
                raise ServerError(
                    f"Convene could not reach {self.url}. Check the address, or try again "
                    "later if the server is down."
                ) from error
            raise TransientError("The calendar server could not be reached.") from error
        except dav_error.DAVError as error:
            status = getattr(error, "status", None) or 0
            if connecting and status < 500:
                raise ServerError(
                    f"{self.url} did not answer like a CalDAV server ({error.reason}). "
                    "Check the address."
                ) from error
            raise TransientError(
                f"The calendar server answered with an error ({status})."
            ) from error

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            self._principal = _sync(self.client.get_principal())
        return self._principal

    def _calendar(self, calendar_id: str) -> DAVCalendar:
        return DAVCalendar(client=self.client, url=calendar_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()
            self._client = None

    # -- the contract ---------------------------------------------------------------

    def test_connection(self) -> Identity:
        with self._translated(connecting=True):
            calendars = _sync(self.principal.get_calendars())
        if not calendars:
            raise ServerError(
                "Signed in, but this account has no calendars. Create one in your "
                "calendar app, then connect again."
            )
        return Identity(
            display=str(self.credentials.get("username", "")),
            external_id=str(self.principal.url),
        )

    def list_calendars(self) -> list[RemoteCalendar]:
        result: list[RemoteCalendar] = []
        with self._translated():
            for calendar in _sync(self.principal.get_calendars()):
                components = _sync(calendar.get_supported_components())
                if components and "VEVENT" not in components:
                    continue  # a task list or journal, not a calendar of events
                result.append(
                    RemoteCalendar(
                        external_id=str(calendar.url),
                        name=str(calendar.get_display_name() or calendar.id or calendar.url),
                    )
                )
        return result

    def sync_busy(
        self, calendar_id: str, window: Window, state: Mapping[str, Any] | None
    ) -> BusyChanges:
        self.requests = 0
        calendar = self._calendar(calendar_id)
        with self._translated():
            if state and state.get("sync_token"):
                changes = self._sync_incremental(calendar, window, str(state["sync_token"]))
            elif state and state.get("etags") is not None:
                changes = self._sync_by_etags(calendar, window, dict(state["etags"]))
            else:
                changes = None
            if changes is None:
                changes = self._sync_full(calendar, window)
        changes.requests = self.requests
        return changes

    def _sync_full(self, calendar: DAVCalendar, window: Window) -> BusyChanges:
        listing = _sync_listing(calendar, sync_token=None, load_objects=False)
        token = str(listing.sync_token or "")
        etags = _present(listing)
        changes = BusyChanges(full=True, versions=etags)
        self._load(calendar, list(etags), window, changes)
        # caldav falls back to a plain listing for servers without sync-collection and
        # calls its token "fake-...": remember etags instead and compare them next time.
        changes.state = {"etags": etags} if token.startswith("fake-") else {"sync_token": token}
        return changes

    def _sync_incremental(
        self, calendar: DAVCalendar, window: Window, token: str
    ) -> BusyChanges | None:
        try:
            result = _sync_listing(
                calendar, sync_token=token, load_objects=False, disable_fallback=True
            )
        except (dav_error.AuthorizationError, dav_error.ReportError) as error:
            # An expired or unknown token: Radicale answers 403, Xandikos 412, both with
            # the DAV:valid-sync-token precondition (RFC 6578 section 3.2).
            if SYNC_TOKEN_PRECONDITION in (getattr(error, "preconditions", None) or []):
                return None
            raise
        deleted = {str(url) for url in result.deleted_urls}
        changed = [str(obj.url) for obj in result if str(obj.url) not in deleted]
        changes = BusyChanges(full=False, changed=set(changed), deleted=deleted)
        self._load(calendar, changed, window, changes)
        changes.state = {"sync_token": str(result.sync_token)}
        return changes

    def _sync_by_etags(
        self, calendar: DAVCalendar, window: Window, known: dict[str, str]
    ) -> BusyChanges:
        listing = _sync_listing(calendar, sync_token=None, load_objects=False)
        current = _present(listing)
        changed = [url for url, etag in current.items() if known.get(url) != etag]
        changes = BusyChanges(full=False, changed=set(changed), deleted=set(known) - set(current))
        self._load(calendar, changed, window, changes)
        changes.state = {"etags": current}
        return changes

    def _load(
        self, calendar: DAVCalendar, urls: list[str], window: Window, changes: BusyChanges
    ) -> None:
        """Fetch the resources in batches and add their busy occurrences."""
        zone = ZoneInfo(self.time_zone)
        for offset in range(0, len(urls), MULTIGET_BATCH):
            batch = [URL.objectify(url) for url in urls[offset : offset + MULTIGET_BATCH]]
            loaded: list[CalendarObjectResource] = _sync(calendar.multiget(batch))
            for obj in loaded:
                href = str(obj.url)
                if not obj.data:
                    continue
                try:
                    changes.instances.extend(
                        ical.busy_instances(obj.data, event_id=href, window=window, zone=zone)
                    )
                except BadDataError as problem:
                    changes.skipped.append(problem)

    def upsert_event(
        self, calendar_id: str, event: EventPayload, ref: EventRef | None = None
    ) -> EventRef:
        href = ref.external_id if ref else urljoin(calendar_id, quote(event.uid, safe="") + ".ics")
        body = ical.event_to_ical(event)
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        # Conditional first (create-only, or the version we wrote): a 412 means the
        # resource exists already (a retried create) or was edited outside Convene.
        # Either way Convene's version wins, as the design says, so write it again.
        condition = {"If-Match": ref.etag} if ref and ref.etag else {"If-None-Match": "*"}
        with self._translated():
            response = self.client.put(href, body, {**headers, **condition})
            if response.status == 412:
                response = self.client.put(href, body, headers)
        self._raise_for_write(response.status, "write the event")
        return EventRef(external_id=href, etag=str(response.headers.get("ETag", "")))

    def delete_event(self, calendar_id: str, ref: EventRef) -> None:
        with self._translated():
            response = self.client.delete(ref.external_id)
        if response.status == 404:
            return  # already gone: success
        self._raise_for_write(response.status, "delete the event")

    def _raise_for_write(self, status: int, what: str) -> None:
        if status < 300:
            return
        if status in (401,):
            raise AuthError(self.auth_failure)
        if status in (403, 405):
            raise PermissionError(f"The server does not let Convene {what} in this calendar.")
        if status == 404:
            raise ServerError("The calendar no longer exists on the server.")
        raise TransientError(f"The server could not {what} ({status}).")


def _sync(value: T | Coroutine[Any, Any, T]) -> T:
    """caldav types its methods as "a value, or a coroutine for the async client";
    this provider only ever uses the synchronous DAVClient."""
    return cast("T", value)


def _sync_listing(calendar: DAVCalendar, **kwargs: Any) -> SynchronizableCalendarObjectCollection:
    return _sync(calendar.get_objects_by_sync_token(**kwargs))


def _present(listing: SynchronizableCalendarObjectCollection) -> dict[str, str]:
    """href -> etag of the resources that exist. Even without a token, Radicale's
    sync-collection answer lists resources deleted earlier (with 404): skip those."""
    deleted = {str(url) for url in listing.deleted_urls}
    return {str(obj.url): str(obj.etag or "") for obj in listing if str(obj.url) not in deleted}


class ICloudProvider(CalDAVProvider):
    key = "icloud"
    name = "iCloud"
    auth_failure = (
        "iCloud rejected the Apple ID or password. iCloud needs an app-specific "
        "password, not your Apple ID password: create one at appleid.apple.com "
        "(Sign-In and Security → App-Specific Passwords) and try again."
    )

    def server_url(self, credentials: Mapping[str, Any]) -> str:
        # Fixed (ICLOUD_CALDAV_URL), so tests and air-gapped installs can point it
        # elsewhere; the person never types it.
        return str(settings.ICLOUD_CALDAV_URL)
