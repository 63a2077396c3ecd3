"""Google Calendar through its REST API v3 (developers.google.com/workspace/calendar/api).

Busy time comes from `events.list` with `singleEvents=true`, so Google expands
recurrences and every instance is its own event id; the first listing of a calendar
is a full sync, later ones pass the `nextSyncToken` it ended with
(developers.google.com/workspace/calendar/api/guides/sync). A `fields` mask keeps
titles, descriptions, locations and attendee addresses from ever being downloaded.

Scopes, checked against the Authorization section of each method's reference page:

- `calendarList.list` takes `calendar.calendarlist.readonly` (or the wider
  `calendar.calendarlist`, `calendar.readonly`, `calendar`).
- `events.list`, `events.get` and `events.watch` take any of `calendar.events.readonly`,
  `calendar.events.owned` (only calendars the person owns), `calendar.events.freebusy`,
  `calendar.readonly` and wider. `events.readonly` is asked for so that calendars shared
  with the person count too; `events.freebusy` is described as availability only,
  while the busy rules below read each event's transparency, type and the person's
  own answer.
- `events.insert`, `update`, `patch` and `delete` take `calendar.events.owned` (or
  `calendar.events`, `calendar.app.created`, `calendar`): Convene writes only to
  calendars the person owns.
- `channels.stop` is listed with `calendar.events.readonly` and the wider read scopes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

from apps.calendars.providers.base import (
    AuthError,
    BadDataError,
    BusyChanges,
    BusyInstance,
    BusyKind,
    EventPayload,
    EventRef,
    Identity,
    PermissionError,
    ProviderError,
    RemoteCalendar,
    ServerError,
    Window,
)
from apps.calendars.providers.oauth import (
    OAuthProvider,
    PushSubscription,
)

logger = logging.getLogger(__name__)

_SCOPE = "https://www.googleapis.com/auth/"
# What Convene asks for when a calendar is connected, and what each lets it do.
REQUIRED_SCOPES: dict[str, str] = {
    f"{_SCOPE}calendar.calendarlist.readonly": "see the list of your calendars",
    f"{_SCOPE}calendar.events.readonly": "see when you are busy (Convene never downloads titles)",
    f"{_SCOPE}calendar.events.owned": "add, change and remove the appointments Convene creates",
}
# What each scope a token may be checked for lets Convene do, for the message naming a
# missing one: the required ones, and the availability-only one of a Workspace service
# account at the free/busy level (providers/workspace.py).
SCOPE_PURPOSES: dict[str, str] = {
    **REQUIRED_SCOPES,
    f"{_SCOPE}calendar.events.freebusy": "see when you are busy",
}
# Wider scopes a person may have granted Convene before, which include a required one.
_WIDER_SCOPES: dict[str, set[str]] = {
    f"{_SCOPE}calendar.calendarlist.readonly": {
        f"{_SCOPE}calendar.calendarlist",
        f"{_SCOPE}calendar.readonly",
        f"{_SCOPE}calendar",
    },
    f"{_SCOPE}calendar.events.readonly": {
        f"{_SCOPE}calendar.events",
        f"{_SCOPE}calendar.readonly",
        f"{_SCOPE}calendar",
    },
    f"{_SCOPE}calendar.events.owned": {f"{_SCOPE}calendar.events", f"{_SCOPE}calendar"},
    f"{_SCOPE}calendar.events.freebusy": {
        f"{_SCOPE}calendar.events.readonly",
        f"{_SCOPE}calendar.events",
        f"{_SCOPE}calendar.readonly",
        f"{_SCOPE}calendar",
    },
}
# Partial response (developers.google.com/workspace/calendar/api/guides/performance):
# only what busy time needs, never summary, description, location or attendee emails.
EVENT_FIELDS = (
    "nextPageToken,nextSyncToken,items(id,etag,status,start,end,transparency,eventType,"
    "recurringEventId,originalStartTime,iCalUID,attendees(self,responseStatus),"
    "extendedProperties/private)"
)
CALENDAR_FIELDS = (
    "nextPageToken,items(id,summary,summaryOverride,primary,accessRole,backgroundColor)"
)
PAGE_SIZE = 2500  # the most events.list returns per page
# `calendar.events.owned` writes only to calendars the person owns: a calendar shared
# with them as "writer" is read-only to Convene.
WRITABLE_ROLE = "owner"
# 403 reasons that mean "slow down", not "not allowed"
# (developers.google.com/workspace/calendar/api/guides/errors).
RATE_LIMIT_REASONS = {
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "dailyLimitExceeded",
}
CHANNEL_LIFETIME = dt.timedelta(days=7)  # Google's default when the answer has none
CONVENE_MARK = "convene"


def missing_scopes(granted: set[str], required: Iterable[str] = REQUIRED_SCOPES) -> list[str]:
    """The required scopes (in asking order) that `granted` neither holds nor covers."""
    return [
        scope
        for scope in required
        if scope not in granted and not _WIDER_SCOPES.get(scope, set()) & granted
    ]


def event_id_for(uid: str) -> str:
    """Convene's id for the event of `uid`: base32hex (Google allows `[a-v0-9]`, 5 to
    1,024 characters), so a retried insert gets 409 instead of making a duplicate."""
    digest = hashlib.sha256(uid.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


class _SyncTokenGoneError(Exception):
    """Google answered 410: the sync token expired, start over."""


class GoogleProvider(OAuthProvider):
    key = "google"
    name = "Google Calendar"
    conferencing_name = "Google Meet"
    scopes: ClassVar[dict[str, str]] = REQUIRED_SCOPES

    def configure(self) -> None:
        self.api = f"{settings.GOOGLE_API_URL}/calendar/v3"
        self.oauth = str(settings.GOOGLE_OAUTH_URL)
        # What test_connection insists on: the scopes a person is asked for, or those a
        # token source asks for itself (a Workspace service account's `scopes`, which
        # at the free/busy level are fewer).
        self.required_scopes: tuple[str, ...] = tuple(
            getattr(self.tokens, "scopes", None) or REQUIRED_SCOPES
        )

    # -- how Google says "slow down" and "not allowed" -----------------------------

    def is_rate_limited(self, response: requests.Response) -> bool:
        if response.status_code == 429:
            return True
        return response.status_code == 403 and bool(_reasons(response) & RATE_LIMIT_REASONS)

    def permission_message(self, response: requests.Response) -> str:
        reasons = _reasons(response)
        if "insufficientPermissions" in reasons:
            return (
                "Google did not give Convene every permission it needs. Connect the "
                "calendar again and leave every box ticked."
            )
        if reasons & {"requiredAccessLevel", "forbidden"}:
            return (
                "This Google calendar is read-only for your account, so Convene cannot "
                "add appointments to it. Choose a calendar you own for appointments."
            )
        return super().permission_message(response)

    # -- the contract ---------------------------------------------------------------

    def test_connection(self) -> Identity:
        """Ask Google's tokeninfo endpoint which scopes the token carries: a box left
        unticked on the consent screen is named here, not found by a failing sync."""
        url = f"{self.oauth}/tokeninfo"
        token = self.tokens.access_token()
        response = self.request("GET", url, ok=(200, 400), params={"access_token": token})
        if response.status_code == 400:  # expired or revoked: once more with a fresh one
            token = self.tokens.access_token(force_refresh=True)
            response = self.request("GET", url, ok=(200, 400), params={"access_token": token})
        if response.status_code == 400:
            raise AuthError(
                "Google no longer accepts Convene's access to your calendar. Reconnect "
                "the calendar to continue."
            )
        info = _json(response)
        missing = missing_scopes(set(str(info.get("scope", "")).split()), self.required_scopes)
        if missing:
            raise PermissionError(
                "Google did not give Convene permission to: "
                + "; ".join(SCOPE_PURPOSES.get(scope, scope) for scope in missing)
                + ". Connect again and leave every box ticked."
            )
        email = str(info.get("email") or self.credentials.get("identity", ""))
        return Identity(display=email, external_id=str(info.get("sub") or email))

    def list_calendars(self) -> list[RemoteCalendar]:
        """The calendar list (calendarList.list), the primary first."""
        calendars: list[RemoteCalendar] = []
        params = {"maxResults": "250", "fields": CALENDAR_FIELDS}
        for page in self._pages(f"{self.api}/users/me/calendarList", params):
            for item in page.get("items", []):
                calendars.append(
                    RemoteCalendar(
                        external_id=str(item["id"]),
                        name=str(item.get("summaryOverride") or item.get("summary") or item["id"]),
                        primary=bool(item.get("primary")),
                        read_only=item.get("accessRole") != WRITABLE_ROLE,
                        color=str(item.get("backgroundColor", "")),
                    )
                )
        return sorted(calendars, key=lambda calendar: not calendar.primary)

    def sync_busy(
        self, calendar_id: str, window: Window, state: Mapping[str, Any] | None
    ) -> BusyChanges:
        """Incremental with the stored sync token while the window ends no later than
        the last sync's; a full sync otherwise, or when Google says the token is gone.

        Events are listed without `timeMax` (a sync token cannot be combined with a time
        range), so the window's end is applied here; once the window rolls past the
        horizon of the last sync, events beyond it were never reported and only a full
        sync finds them.
        """
        self.requests = 0
        token = str((state or {}).get("sync_token") or "")
        horizon = _parse_instant(str((state or {}).get("horizon") or ""))
        changes: BusyChanges | None = None
        if token and horizon is not None and window.end <= horizon:
            with suppress(_SyncTokenGoneError):
                changes = self._sync(calendar_id, window, sync_token=token)
        if changes is None:
            changes = self._sync(calendar_id, window, sync_token="")
        changes.requests = self.requests
        return changes

    def _sync(self, calendar_id: str, window: Window, *, sync_token: str) -> BusyChanges:
        params = {"singleEvents": "true", "maxResults": str(PAGE_SIZE), "fields": EVENT_FIELDS}
        if sync_token:
            params["syncToken"] = sync_token
        else:
            params["timeMin"] = _rfc3339(window.start)
        full = not sync_token
        changes = BusyChanges(full=full, versions={} if full else None)
        next_sync_token = ""
        for page in self._pages(self._events_url(calendar_id), params, gone_ok=not full):
            for item in page.get("items", []):
                self._take(item, window, changes)
            next_sync_token = str(page.get("nextSyncToken") or next_sync_token)
        if not next_sync_token:
            raise ServerError("Google ended the event list without a sync token.")
        changes.state = {"sync_token": next_sync_token, "horizon": window.end.isoformat()}
        return changes

    def _pages(
        self, url: str, params: Mapping[str, str], *, gone_ok: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every page of a list; an empty page can still say there are more."""
        page_token = ""
        while True:
            query = {**params, "pageToken": page_token} if page_token else dict(params)
            response = self.request("GET", url, ok=(200, 410) if gone_ok else (200,), params=query)
            if response.status_code == 410:
                raise _SyncTokenGoneError
            page = _json(response)
            yield page
            page_token = str(page.get("nextPageToken") or "")
            if not page_token:
                return

    def _take(self, item: dict[str, Any], window: Window, changes: BusyChanges) -> None:
        event_id = str(item.get("id", ""))
        if item.get("status") == "cancelled":
            if not changes.full:
                changes.deleted.add(event_id)
            return
        if changes.versions is not None:
            changes.versions[event_id] = str(item.get("etag", ""))
        if not changes.full:
            changes.changed.add(event_id)
        try:
            instance = self._busy_instance(event_id, item)
        except (KeyError, TypeError, ValueError) as error:
            changes.skipped.append(
                BadDataError(f"Google sent an event Convene cannot read ({error}).", item=event_id)
            )
            return
        if instance is not None and instance.end > window.start and instance.start < window.end:
            changes.instances.append(instance)

    def _busy_instance(self, event_id: str, item: Mapping[str, Any]) -> BusyInstance | None:
        """The busy occurrence an event stands for, or None when it leaves the time free.
        Raises KeyError, TypeError or ValueError for an event that cannot be read."""
        start, all_day = self._instant(item["start"])
        end, _ = self._instant(item["end"])
        if end <= start:
            raise ValueError("it ends before it starts")
        original = item.get("originalStartTime")
        instance_start = self._instant(original)[0] if original else start
        private = (item.get("extendedProperties") or {}).get("private") or {}
        if private.get(CONVENE_MARK) == "1":
            return None  # Convene's own appointment: it blocks its time already
        event_type = item.get("eventType", "default")
        if item.get("transparency") == "transparent" or event_type == "workingLocation":
            return None
        kind = BusyKind.OUT_OF_OFFICE if event_type == "outOfOffice" else BusyKind.BUSY
        me: Mapping[str, Any] = next((a for a in item.get("attendees") or [] if a.get("self")), {})
        if me.get("responseStatus") == "declined":
            return None
        if me.get("responseStatus") == "tentative" and kind == BusyKind.BUSY:
            kind = BusyKind.TENTATIVE
        return BusyInstance(
            event_id=event_id,
            instance_start=instance_start,
            start=start,
            end=end,
            all_day=all_day,
            kind=kind,
        )

    def _instant(self, value: Mapping[str, Any]) -> tuple[dt.datetime, bool]:
        """A start or end: `dateTime` (with its offset), or an all-day `date`, which is
        midnight in the owner's zone."""
        if value.get("dateTime"):
            moment = dt.datetime.fromisoformat(str(value["dateTime"]))
            if moment.tzinfo is None:
                raise ValueError("a time without an offset")
            return moment.astimezone(dt.UTC), False
        day = dt.date.fromisoformat(str(value["date"]))
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(self.time_zone))
        return midnight.astimezone(dt.UTC), True

    def upsert_event(
        self, calendar_id: str, event: EventPayload, ref: EventRef | None = None
    ) -> EventRef:
        """Insert under Convene's own id; a 409 means an earlier try got through, so it
        is updated instead. An update of an event that is gone inserts it again."""
        event_id = ref.external_id if ref else event_id_for(event.uid)
        body = self._event_body(event_id, event)
        wants_meet = event.conferencing and not event.join_url
        # Version 1 lets the body ask for a Meet link; with 0 Google ignores the request.
        params = {"conferenceDataVersion": "1" if wants_meet else "0"}
        url = self._events_url(calendar_id)
        event_url = f"{url}/{quote(event_id, safe='')}"
        # PATCH, not PUT, for updates: a full replace would drop a Meet link made earlier.
        response: requests.Response | None = None
        if ref:
            response = self.request(
                "PATCH", event_url, ok=(200, 404, 410), params=params, json=body
            )
        if response is None or response.status_code != 200:
            response = self.request("POST", url, ok=(200, 409), params=params, json=body)
        if response.status_code == 409:
            response = self.request("PATCH", event_url, params=params, json=body)
        written = _json(response)
        return EventRef(
            external_id=str(written.get("id", event_id)),
            etag=str(written.get("etag", "")),
            join_url=event.join_url or _meet_link(written),
        )

    def _event_body(self, event_id: str, event: EventPayload) -> dict[str, Any]:
        join_line = f"Join the meeting: {event.join_url}" if event.join_url else ""
        body: dict[str, Any] = {
            "id": event_id,
            # An event deleted in Google stays as a cancelled tombstone under its id:
            # writing it again brings it back.
            "status": "confirmed",
            "summary": event.title,
            "description": "\n\n".join(part for part in (event.description, join_line) if part),
            "location": event.location,
            "start": {"dateTime": _rfc3339(event.start), "timeZone": "UTC"},
            "end": {"dateTime": _rfc3339(event.end), "timeZone": "UTC"},
            "transparency": "opaque" if event.busy else "transparent",
            "extendedProperties": {"private": {CONVENE_MARK: "1", "conveneUid": event.uid}},
        }
        if event.conferencing and not event.join_url:
            # The same request id on a retry or an update: Google ignores a request it
            # has seen, so an event never gets a second Meet link.
            request_id = hashlib.sha256(f"meet:{event.uid}".encode()).hexdigest()[:32]
            body["conferenceData"] = {
                "createRequest": {
                    "requestId": request_id,
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            }
        return body

    def delete_event(self, calendar_id: str, ref: EventRef) -> None:
        # 410: deleted before; 404: never there or purged. Both are what was wanted.
        self.request(
            "DELETE",
            f"{self._events_url(calendar_id)}/{quote(ref.external_id, safe='')}",
            ok=(200, 204, 404, 410),
        )

    # -- push (developers.google.com/workspace/calendar/api/guides/push) -----------

    def watch(self, calendar_id: str, *, address: str, token: str) -> PushSubscription:
        response = self.request(
            "POST",
            f"{self._events_url(calendar_id)}/watch",
            json={"id": str(uuid.uuid4()), "type": "web_hook", "address": address, "token": token},
        )
        channel = _json(response)
        expiration = channel.get("expiration")
        expires_at = (
            dt.datetime.fromtimestamp(int(expiration) / 1000, tz=dt.UTC)
            if expiration
            else dt.datetime.now(dt.UTC) + CHANNEL_LIFETIME
        )
        return PushSubscription(
            channel_id=str(channel["id"]),
            resource_id=str(channel["resourceId"]),
            expires_at=expires_at,
        )

    def renew(
        self, calendar_id: str, subscription: PushSubscription, *, address: str, token: str
    ) -> PushSubscription:
        """Google never extends a channel: open a new one, then stop the old one."""
        renewed = self.watch(calendar_id, address=address, token=token)
        try:
            self.unwatch(subscription)
        except ProviderError as error:
            # The old channel expires on its own; its notifications are refused because
            # Convene no longer knows its id.
            logger.info("Could not stop Google channel %s: %s", subscription.channel_id, error)
        return renewed

    def unwatch(self, subscription: PushSubscription) -> None:
        self.request(
            "POST",
            f"{self.api}/channels/stop",
            ok=(200, 204, 404),
            json={"id": subscription.channel_id, "resourceId": subscription.resource_id},
        )

    def _events_url(self, calendar_id: str) -> str:
        return f"{self.api}/calendars/{quote(calendar_id, safe='')}/events"


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise ServerError("Google sent an answer Convene cannot read.") from error
    if not isinstance(body, dict):
        raise ServerError("Google sent an answer Convene cannot read.")
    return body


def _reasons(response: requests.Response) -> set[str]:
    """The `reason`s of a Google error answer: {"error": {"errors": [{"reason": ...}]}}."""
    try:
        errors = response.json()["error"]["errors"]
        return {str(error.get("reason", "")) for error in errors}
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def _meet_link(event: Mapping[str, Any]) -> str:
    if event.get("hangoutLink"):
        return str(event["hangoutLink"])
    entry_points = (event.get("conferenceData") or {}).get("entryPoints") or []
    return next(
        (str(e.get("uri", "")) for e in entry_points if e.get("entryPointType") == "video"), ""
    )


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_instant(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
