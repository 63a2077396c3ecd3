"""Microsoft 365 and Outlook.com calendars through Microsoft Graph v1.0.

What Microsoft's documentation says, and this module relies on:

- Busy time comes from a delta round on one calendar's calendarView
  (https://learn.microsoft.com/graph/delta-query-events,
  https://learn.microsoft.com/graph/api/event-delta): the first round lists every event
  in the window, the deltaLink then yields only what changed. The window is encoded in
  the token, so a window that outgrows the round's means a new round. Delta on a
  calendarView takes no `$select` or `$filter`: subjects, bodies and attendees arrive
  whether wanted or not, and the JSON decoder here keeps only `_KEPT`. `@removed` marks
  deleted events, and also events that changed outside the window. An expired token is
  a 410 Gone, or a 4xx with the code syncStateNotFound or resyncRequired.
- Scopes (https://learn.microsoft.com/graph/permissions-reference): see `SCOPES`. Delta,
  event creation and subscriptions all list delegated permissions for personal
  Microsoft accounts, so Outlook.com calendars work like Microsoft 365 ones through the
  `common` tenant; getSchedule (free/busy) does not, one more reason to read the
  calendarView. Calendars.ReadBasic would do for reading, but no scope narrower than
  Calendars.ReadWrite lets an app write events.
- Writes: `transactionId` exists "for the server to avoid redundant POST operations in
  case of client retries" (https://learn.microsoft.com/graph/api/resources/event). The
  answer to a repeat is not documented; one reused for a different event is refused
  with ErrorDuplicateTransactionId (https://github.com/alcionai/corso/issues/2490), and
  then Convene finds its event through its extended property and updates it. The
  transactionId cannot change later and is returned only to the app that set it, which
  is how sync recognises Convene's events.
- Teams links: `isOnlineMeeting` with an `onlineMeetingProvider` the calendar allows
  (`allowedOnlineMeetingProviders`); once made, a meeting stays on the event.
- Subscriptions (https://learn.microsoft.com/graph/api/resources/subscription): for
  Outlook events the documentation long gave 4230 minutes (under 3 days) as the most,
  later versions 10080 (under 7 days). Convene asks for 4230, valid under both, and
  keeps the expiry Graph answers with.
- Throttling (https://learn.microsoft.com/graph/throttling-limits): per app and mailbox,
  10,000 requests in 10 minutes and 4 at a time; the limiter passed in keeps to 4.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

from apps.calendars.providers.base import (
    BadDataError,
    BusyChanges,
    BusyInstance,
    BusyKind,
    EventPayload,
    EventRef,
    Identity,
    RemoteCalendar,
    ServerError,
    TransientError,
    Window,
)
from apps.calendars.providers.exchange import CONVENE_PROPERTY_SET
from apps.calendars.providers.microsoft_app import GRAPH_APP_PERMISSIONS
from apps.calendars.providers.oauth import (
    OAuthProvider,
    PushSubscription,
)

# The delegated permissions Convene asks for, and what each lets it do.
SCOPES: dict[str, str] = {
    "offline_access": "Keep your calendar in sync while you are not using Convene.",
    "User.Read": "See which Microsoft account you connected (its email address).",
    "Calendars.ReadWrite": (
        "List your calendars, see when you are busy (never what the events are), and "
        "add, move and remove the events of appointments booked through Convene."
    ),
}
# The named property Convene's events carry: the Exchange provider's, so an event
# written over EWS is recognised over Graph in the same mailbox and vice versa.
UID_PROPERTY = f"String {{{CONVENE_PROPERTY_SET}}} Name ConveneUid"
TRANSACTION_PREFIX = "convene-"
# A delta round is fixed to its window. Each new round is a full sync, so a round
# reaches this far beyond the window asked for: the window slides a little every day,
# and a new round starts once a week rather than on every sync.
ROUND_SLACK = dt.timedelta(days=7)
PAGE_SIZE = 200
SUBSCRIPTION_LIFETIME = dt.timedelta(minutes=4230)
MAX_CLIENT_STATE = 128
PREFER_UTC = 'outlook.timezone="UTC"'
RESYNC_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}
# showAs: free, tentative, busy, oof, workingElsewhere, unknown. Free and working
# elsewhere leave the time bookable; unknown is taken as busy rather than offered.
BUSY_KINDS: dict[str, BusyKind] = {
    "busy": BusyKind.BUSY,
    "unknown": BusyKind.BUSY,
    "tentative": BusyKind.TENTATIVE,
    "oof": BusyKind.OUT_OF_OFFICE,
}
# Every key of a delta page the parser needs; the decoder drops all others (subject,
# body, bodyPreview, location, attendees, organizer, ...) as it reads them.
_KEPT = frozenset(
    [
        "value",
        "@odata.nextLink",
        "@odata.deltaLink",
        "@removed",
        "id",
        "changeKey",
        "@odata.etag",
        "type",
        "transactionId",
        "isCancelled",
        "isAllDay",
        "showAs",
        "responseStatus",
        "response",
        "start",
        "end",
        "dateTime",
        "timeZone",
        "originalStart",
    ]
)


class _SyncStateLostError(Exception):
    """Graph no longer knows the delta token: a new round is needed."""


class MicrosoftProvider(OAuthProvider):
    key = "microsoft"
    name = "Microsoft 365 / Outlook.com"
    conferencing_name = "Microsoft Teams"
    mailbox_concurrency = 4  # Graph's limit per app and mailbox
    scopes = SCOPES

    def configure(self) -> None:
        self.api = f"{settings.MICROSOFT_GRAPH_URL.rstrip('/')}/v1.0"
        named = str(self.credentials.get("mailbox") or "").strip()
        # Whose mailbox every path starts with: the signed-in person's, or the one
        # named (app-only access to an organisation's mailboxes).
        self.mailbox = f"/users/{quote(named, safe='@')}" if named else "/me"

    def limiter_key(self) -> str:
        mailbox = self.credentials.get("mailbox") or self.credentials.get("identity") or ""
        return f"{self.key}:{str(mailbox).lower()}"

    def permission_message(self, response: requests.Response) -> str:
        """A 403 (ErrorAccessDenied, Authorization_RequestDenied) says only "denied";
        what was asked for says which permission is missing."""
        request = response.request
        path = urlsplit(request.url or "").path
        if self.mailbox != "/me":
            # App-only (providers/microsoft_app.py): the organisation's app lacks an
            # application permission, or an administrator never consented to it.
            level = str(self.credentials.get("access") or "calendar")
            wanted = GRAPH_APP_PERMISSIONS.get(level, GRAPH_APP_PERMISSIONS["calendar"])
            return (
                f"Microsoft refused Convene access to the mailbox {self.credentials['mailbox']}. "
                "An administrator of the Microsoft 365 organisation must grant admin "
                f"consent to Convene's app for the application permissions {', '.join(wanted)} "
                "(and check any application access policy that limits its mailboxes)."
            )
        if path.endswith("/me"):
            return (
                "Microsoft did not let Convene see which account this is (the permission "
                "to sign you in and read your profile). Reconnect and accept every "
                "permission Convene asks for."
            )
        if request.method != "GET" and "/events" in path:
            return (
                "Microsoft refused to change events in this calendar; it is probably "
                "shared with you to view only. Choose a calendar of your own for "
                "Convene's events."
            )
        return (
            "Microsoft did not let Convene use your calendars (the permission to have "
            "full access to your calendars). Reconnect and accept every permission "
            "Convene asks for; a work account's administrator may have to allow it."
        )

    # -- plumbing -------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.api}{self.mailbox}{path}"

    def _calendar(self, calendar_id: str) -> str:
        return self._url(f"/calendars/{quote(calendar_id, safe='')}")

    def _get(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return _json(self.request("GET", url, params=params, headers={"Prefer": PREFER_UTC}))

    def _collection(self, url: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following `@odata.nextLink`."""
        page = self._get(url, params)
        while True:
            yield from page.get("value", [])
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self._get(self._checked(link))

    def _checked(self, link: str) -> str:
        # The bearer token goes with every request: follow links to Graph only.
        if not link.startswith(f"{self.api}/"):
            raise ServerError("Microsoft Graph answered with a link to somewhere else.")
        return link

    # -- the contract ---------------------------------------------------------------

    def test_connection(self) -> Identity:
        me = self._get(self._url(""), {"$select": "id,mail,userPrincipalName"})
        # A token may sign in without the calendar permission (a work account's
        # administrator can withhold it): find out now, not at the first sync.
        self._get(self._url("/calendars"), {"$top": "1", "$select": "id"})
        # Outlook.com accounts often have no `mail`; their sign-in name is the address.
        display = me.get("mail") or me.get("userPrincipalName")
        if not display:
            raise ServerError("Microsoft did not say which account this is.")
        return Identity(display=str(display), external_id=str(me.get("id", "")))

    def list_calendars(self) -> list[RemoteCalendar]:
        params = {"$select": "id,name,isDefaultCalendar,canEdit,hexColor"}
        calendars = [
            RemoteCalendar(
                external_id=str(item["id"]),
                name=str(item.get("name") or "Calendar"),
                primary=bool(item.get("isDefaultCalendar")),
                read_only=not item.get("canEdit", True),
                color=str(item.get("hexColor") or ""),
            )
            for item in self._collection(self._url("/calendars"), params)
        ]
        return sorted(calendars, key=lambda calendar: not calendar.primary)

    def sync_busy(
        self, calendar_id: str, window: Window, state: Mapping[str, Any] | None
    ) -> BusyChanges:
        self.requests = 0
        changes = None
        stored = _stored_round(state, window)
        # A stored link goes to Graph only: the bearer token is sent with it.
        if stored is not None and stored[0].startswith(f"{self.api}/"):
            link, bounds = stored
            try:
                changes = self._round(link, None, bounds=bounds, full=False)
            except _SyncStateLostError:
                changes = None
        if changes is None:
            start, end = _iso(window.start), _iso(window.end + ROUND_SLACK)
            url = f"{self._calendar(calendar_id)}/calendarView/delta"
            params = {"startDateTime": start, "endDateTime": end}
            try:
                changes = self._round(url, params, bounds=(start, end), full=True)
            except _SyncStateLostError as error:
                raise TransientError("Microsoft lost track of this calendar's changes.") from error
        changes.requests = self.requests
        return changes

    def _round(
        self,
        url: str,
        params: Mapping[str, str] | None,
        *,
        bounds: tuple[str, str],
        full: bool,
    ) -> BusyChanges:
        """One delta round, page by page, to its deltaLink. `bounds` is the round's
        window, which the state keeps next to the link."""
        changes = BusyChanges(full=full, versions={} if full else None)
        latest: dict[str, BusyInstance | None] = {}
        removed: set[str] = set()
        headers = {"Prefer": f"{PREFER_UTC}, odata.maxpagesize={PAGE_SIZE}"}
        while True:
            response = self.request(
                "GET", url, params=params, headers=headers, ok=(200, 400, 404, 410)
            )
            if response.status_code != 200:
                # Expiry is a 410, or a "40X-series" error with one of these codes.
                if response.status_code == 410 or _error_code(response).lower() in RESYNC_CODES:
                    raise _SyncStateLostError
                raise ServerError(
                    f"Microsoft refused to list this calendar's events ({_error_code(response)})."
                )
            page = _json(response, object_pairs_hook=_kept)
            for item in page.get("value", []):
                self._take(item, changes, latest, removed)
            next_link = page.get("@odata.nextLink")
            if not next_link:
                break
            url, params = self._checked(str(next_link)), None
        delta_link = page.get("@odata.deltaLink")
        if not delta_link:
            raise ServerError("Microsoft Graph ended a delta round without a deltaLink.")
        changes.instances = [instance for instance in latest.values() if instance]
        if not full:
            changes.changed, changes.deleted = set(latest), removed
        changes.state = {
            "delta_link": self._checked(str(delta_link)),
            "start": bounds[0],
            "end": bounds[1],
        }
        return changes

    def _take(
        self,
        item: Mapping[str, Any],
        changes: BusyChanges,
        latest: dict[str, BusyInstance | None],
        removed: set[str],
    ) -> None:
        """Fold one delta item into the round: later items about an id win."""
        event_id = item.get("id")
        if not isinstance(event_id, str) or not event_id:
            changes.skipped.append(BadDataError("Microsoft sent an event without an id."))
            return
        if "@removed" in item:
            removed.add(event_id)
            latest.pop(event_id, None)
            return
        if item.get("type") == "seriesMaster":
            return  # its occurrences and exceptions come as items of their own
        try:
            instance = self._busy(event_id, item)
        except BadDataError as error:
            changes.skipped.append(error)
            return
        removed.discard(event_id)
        latest[event_id] = instance
        if changes.versions is not None:
            changes.versions[event_id] = str(item.get("changeKey") or item.get("@odata.etag") or "")

    def _busy(self, event_id: str, item: Mapping[str, Any]) -> BusyInstance | None:
        if str(item.get("transactionId") or "").startswith(TRANSACTION_PREFIX):
            return None  # Convene's own appointment blocks its time already
        status = item.get("responseStatus") or {}
        if item.get("isCancelled") or status.get("response") == "declined":
            return None
        kind = BUSY_KINDS.get(str(item.get("showAs") or "busy"))
        if kind is None:
            return None
        all_day = bool(item.get("isAllDay"))
        try:
            start, end = _when(item["start"]), _when(item["end"])
            if all_day:
                # All-day events come as midnight to midnight in the zone asked for:
                # their dates are the owner's, so they begin at the owner's midnight.
                zone = ZoneInfo(self.time_zone)
                start = dt.datetime.combine(start.date(), dt.time(), tzinfo=zone)
                end = dt.datetime.combine(end.date(), dt.time(), tzinfo=zone)
            start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
            original = item.get("originalStart")
            instance_start = _instant(str(original)) if original else start
        except (KeyError, TypeError, ValueError) as error:
            raise BadDataError(
                "Microsoft sent an event with unreadable times.", item=event_id
            ) from error
        if end <= start:
            raise BadDataError("Microsoft sent an event that ends before it starts.", item=event_id)
        return BusyInstance(
            event_id=event_id,
            instance_start=instance_start,
            start=start,
            end=end,
            all_day=all_day,
            kind=kind,
        )

    def upsert_event(
        self, calendar_id: str, event: EventPayload, ref: EventRef | None = None
    ) -> EventRef:
        body = _event_body(event)
        if event.conferencing and not event.join_url and not (ref and ref.join_url):
            body.update(self._meeting(calendar_id))
        if ref is None:
            return self._create(calendar_id, event, body)
        response = self.request(
            "PATCH",
            self._url(f"/events/{quote(ref.external_id, safe='')}"),
            json=body,
            headers={"Prefer": PREFER_UTC},
            ok=(200, 404),
        )
        if response.status_code == 404:
            # Deleted outside Convene: write it again, under a new transactionId (the
            # old one belongs to the deleted event).
            return self._create(calendar_id, event, body, generation=ref.external_id)
        return _event_ref(_json(response), ref.join_url)

    def _create(
        self, calendar_id: str, event: EventPayload, body: dict[str, Any], generation: str = ""
    ) -> EventRef:
        body = {
            **body,
            "transactionId": _transaction_id(event.uid, generation),
            "singleValueExtendedProperties": [{"id": UID_PROPERTY, "value": event.uid}],
        }
        response = self.request(
            "POST",
            f"{self._calendar(calendar_id)}/events",
            json=body,
            headers={"Prefer": PREFER_UTC},
            ok=(200, 201, 400),
        )
        if response.status_code != 400:
            return _event_ref(_json(response))
        if _error_code(response) != "ErrorDuplicateTransactionId":
            raise ServerError(f"Microsoft refused the event ({_error_code(response)}).")
        # A retry whose content changed since the first attempt, whose answer was lost.
        existing = self._find(calendar_id, event.uid)
        if existing:
            return self.upsert_event(calendar_id, event, EventRef(existing))
        if generation:
            raise ServerError("Microsoft refused to create the event again.")
        # The event made under this transactionId was deleted since.
        return self._create(calendar_id, event, body, generation=body["transactionId"])

    def _find(self, calendar_id: str, uid: str) -> str:
        """The id of Convene's event `uid` in the calendar, or ""."""
        value = uid.replace("'", "''")
        params = {
            "$filter": (
                f"singleValueExtendedProperties/any(ep: ep/id eq '{UID_PROPERTY}' "
                f"and ep/value eq '{value}')"
            ),
            "$select": "id",
            "$top": "1",
        }
        found = self._get(f"{self._calendar(calendar_id)}/events", params).get("value", [])
        return str(found[0]["id"]) if found else ""

    def _meeting(self, calendar_id: str) -> dict[str, Any]:
        """Ask for the calendar's own online meeting: its default provider if it has one,
        else Teams if it allows it, else whatever it allows; nothing if it allows none."""
        calendar = self._get(
            self._calendar(calendar_id),
            {"$select": "allowedOnlineMeetingProviders,defaultOnlineMeetingProvider"},
        )
        allowed = [
            str(name)
            for name in calendar.get("allowedOnlineMeetingProviders") or []
            if name not in ("unknown", "none")
        ]
        default = calendar.get("defaultOnlineMeetingProvider")
        if not allowed:
            return {}
        chosen = default if default in allowed else "teamsForBusiness"
        return {
            "isOnlineMeeting": True,
            "onlineMeetingProvider": chosen if chosen in allowed else allowed[0],
        }

    def delete_event(self, calendar_id: str, ref: EventRef) -> None:
        self.request(
            "DELETE", self._url(f"/events/{quote(ref.external_id, safe='')}"), ok=(204, 404)
        )

    # -- push -----------------------------------------------------------------------

    def watch(self, calendar_id: str, *, address: str, token: str) -> PushSubscription:
        if len(token) > MAX_CLIENT_STATE:
            raise ValueError(f"Graph takes a clientState of at most {MAX_CLIENT_STATE} characters.")
        resource = f"{self.mailbox.lstrip('/')}/calendars/{calendar_id}/events"
        response = self.request(
            "POST",
            f"{self.api}/subscriptions",
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": address,
                "lifecycleNotificationUrl": address,
                "resource": resource,
                "expirationDateTime": _iso(dt.datetime.now(dt.UTC) + SUBSCRIPTION_LIFETIME),
                "clientState": token,
            },
            ok=(201, 400),
        )
        if response.status_code == 400:
            # Most often the validation request to `address` failed.
            raise ServerError(
                "Microsoft refused real-time updates for this calendar "
                f"({_error_code(response)}: {_error_message(response)})."
            )
        return _subscription(_json(response), resource)

    def renew(
        self, calendar_id: str, subscription: PushSubscription, *, address: str, token: str
    ) -> PushSubscription:
        response = self.request(
            "PATCH",
            f"{self.api}/subscriptions/{quote(subscription.channel_id, safe='')}",
            json={"expirationDateTime": _iso(dt.datetime.now(dt.UTC) + SUBSCRIPTION_LIFETIME)},
            ok=(200, 404),
        )
        if response.status_code == 404:
            # Expired or removed (Graph drops subscriptions it could not deliver to).
            return self.watch(calendar_id, address=address, token=token)
        return _subscription(_json(response), subscription.resource_id)

    def unwatch(self, subscription: PushSubscription) -> None:
        self.request(
            "DELETE",
            f"{self.api}/subscriptions/{quote(subscription.channel_id, safe='')}",
            ok=(204, 404),
        )


# -- helpers --------------------------------------------------------------------------


def _kept(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in pairs if key in _KEPT}


def _json(response: requests.Response, **options: Any) -> dict[str, Any]:
    try:
        data = response.json(**options)
    except ValueError as error:
        raise TransientError("Microsoft Graph sent an unreadable answer.") from error
    if not isinstance(data, dict):
        raise TransientError("Microsoft Graph sent an unreadable answer.")
    return data


def _error(response: requests.Response) -> Mapping[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _error_code(response: requests.Response) -> str:
    return str(_error(response).get("code") or response.status_code)


def _error_message(response: requests.Response) -> str:
    return str(_error(response).get("message") or "")


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> dt.datetime:
    """A DateTimeOffset ("2024-05-01T09:00:00Z", up to 7 fractional digits)."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no offset.")
    return value.astimezone(dt.UTC)


def _when(value: Mapping[str, Any]) -> dt.datetime:
    """A dateTimeTimeZone: a local time and the zone it is in (UTC, as asked for)."""
    local = dt.datetime.fromisoformat(str(value["dateTime"]))
    zone = str(value.get("timeZone") or "UTC")
    if local.tzinfo is not None:
        return local
    # ZoneInfo raises a KeyError (ZoneInfoNotFoundError) for a Windows zone name.
    return local.replace(tzinfo=dt.UTC if zone == "UTC" else ZoneInfo(zone))


def _stored_round(
    state: Mapping[str, Any] | None, window: Window
) -> tuple[str, tuple[str, str]] | None:
    """The stored deltaLink and its round's window, if that still covers `window`."""
    if not state or not state.get("delta_link"):
        return None
    try:
        start, end = str(state["start"]), str(state["end"])
        if _instant(start) > window.start or _instant(end) < window.end:
            return None
    except (KeyError, ValueError):
        return None
    return str(state["delta_link"]), (start, end)


def _transaction_id(uid: str, generation: str = "") -> str:
    """Deterministic per event (and per re-creation after a deletion), so a retried
    create carries the same one."""
    digest = hashlib.sha256(f"{uid}\n{generation}".encode()).hexdigest()
    return f"{TRANSACTION_PREFIX}{digest[:40]}"


def _event_body(event: EventPayload) -> dict[str, Any]:
    description = event.description
    if event.join_url and event.join_url not in description:
        description = "\n\n".join(part for part in (description, event.join_url) if part)
    return {
        "subject": event.title,
        "body": {"contentType": "text", "content": description},
        "location": {"displayName": event.location or event.join_url},
        "start": {"dateTime": _local_utc(event.start), "timeZone": "UTC"},
        "end": {"dateTime": _local_utc(event.end), "timeZone": "UTC"},
        "showAs": "busy" if event.busy else "free",
    }


def _local_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _event_ref(data: Mapping[str, Any], join_url: str = "") -> EventRef:
    meeting = data.get("onlineMeeting") or {}
    return EventRef(
        external_id=str(data["id"]),
        etag=str(data.get("changeKey") or ""),
        join_url=str(meeting.get("joinUrl") or join_url),
    )


def _subscription(data: Mapping[str, Any], resource: str) -> PushSubscription:
    try:
        return PushSubscription(
            channel_id=str(data["id"]),
            resource_id=str(data.get("resource") or resource),
            expires_at=_instant(str(data["expirationDateTime"])),
        )
    except (KeyError, ValueError) as error:
        raise TransientError("Microsoft Graph sent an unreadable subscription.") from error
