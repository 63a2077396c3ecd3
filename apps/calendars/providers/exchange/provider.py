"""Exchange on-premise through Exchange Web Services, on `exchangelib`.

Three rules shape this module:

- Every request to the server the person typed (or autodiscover found) goes through
  the guarded HTTP adapter (providers/http.py): exchangelib builds its own requests
  sessions, so the protocol classes below build theirs with `GuardedRequestsAdapter`.
- Never lock an account: exchangelib's default retry policy retries a 401 for up to an
  hour, which Active Directory counts as failed logons. `FailFast` gives up at once;
  a server-busy answer is handed to the sync engine with its back-off hint.
- Autodiscover only asks servers in the person's own email domain. Clients that fell
  back to `autodiscover.<tld>` sent credentials to whoever registered that name:
  https://www.guardicore.com/labs/autodiscovering-the-great-leak/

Organisation-wide, credentials with `"impersonate": True` sign in as a service account
(`username`, `password`) and act on the mailbox `email` through Exchange Impersonation
(the ExchangeImpersonation SOAP header, https://learn.microsoft.com/exchange/client-developer/exchange-web-services/impersonation-and-ews-in-exchange).
The admin gives the EWS URL: the service account's password never goes to autodiscover.
The service account needs the ApplicationImpersonation role.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    UTC,
    Account,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDateTime,
    ExtendedProperty,
    FailFast,
)
from exchangelib import errors as ews_errors
from exchangelib.folders import Calendar as EWSCalendar
from exchangelib.folders import Root
from exchangelib.items import SEND_TO_NONE
from exchangelib.properties import ItemId
from exchangelib.protocol import Protocol
from exchangelib.version import EXCHANGE_2013_SP1, Version

from apps.calendars.providers import ical
from apps.calendars.providers.base import (
    AuthError,
    BusyChanges,
    BusyInstance,
    BusyKind,
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
from apps.calendars.providers.exchange.transport import (
    Guard,
    GuardedAutodiscoverProtocol,
    GuardedProtocol,
)
from apps.calendars.providers.http import (
    OutboundPolicy,
    RefusedAddressError,
    Resolver,
    system_resolver,
)

logger = logging.getLogger(__name__)

# A named MAPI property marks the events Convene writes, so a retried create finds the
# first one and sync leaves them out. The GUID is Convene's own property set:
# https://learn.microsoft.com/exchange/client-developer/exchange-web-services/properties-and-extended-properties-in-ews-in-exchange
CONVENE_PROPERTY_SET = "6c2f5e1a-4f0b-4c8e-9d35-0c6e6b1f7a52"


class ConveneUidProperty(ExtendedProperty):
    property_set_id = CONVENE_PROPERTY_SET
    property_name = "ConveneUid"
    property_type = "String"


with suppress(ValueError):  # already registered (module reloaded in a test run)
    CalendarItem.register("convene_uid", ConveneUidProperty)

# LegacyFreeBusyStatus: Free, Tentative, Busy, OOF, WorkingElsewhere, NoData.
# https://learn.microsoft.com/exchange/client-developer/web-service-reference/legacyfreebusystatus
BUSY_KINDS: dict[str, BusyKind] = {
    "Busy": BusyKind.BUSY,
    "Tentative": BusyKind.TENTATIVE,
    "OOF": BusyKind.OUT_OF_OFFICE,
    # NoData: the server does not know; treat as busy rather than offer the time.
    "NoData": BusyKind.BUSY,
}
# Exchange 2013 SP1 or later: pinned rather than guessed, which would cost a request
# per connection. Exchange 2010 left support in 2020.
PINNED_VERSION = Version(build=EXCHANGE_2013_SP1)
VIEW_FIELDS = (
    "uid",
    "start",
    "end",
    "is_all_day",
    "legacy_free_busy_status",
    "type",
    "original_start",
    "convene_uid",
    "_start_timezone",
    "_end_timezone",
)
SYNC_FIELDS = ("uid", "convene_uid")


class ExchangeProvider(CalendarProvider):
    key = "exchange"
    name = "Exchange"
    auth_failure = (
        "Exchange rejected the email address or password. Check them (if your "
        "organisation signs you in as DOMAIN\\user, enter that as the username) and try "
        "again. Convene tried only once, so your account is not at risk of being locked."
    )
    locked_out = (
        "Exchange says this account is locked out, usually after too many wrong "
        "passwords. Wait until it unlocks (or ask your IT department), then reconnect."
    )
    service_auth_failure = (
        "Exchange rejected the service account's username or password. Check them (as "
        "DOMAIN\\user or user@domain) in the integration's settings. Convene tried only "
        "once, so the account is not at risk of being locked."
    )
    impersonation_denied = (
        "Exchange refused to let the service account act for this mailbox: it needs the "
        "ApplicationImpersonation role. In the Exchange Management Shell run "
        "New-ManagementRoleAssignment -Name ConveneImpersonation -Role "
        "ApplicationImpersonation -User <service account> (optionally with "
        "-CustomRecipientWriteScope to limit the mailboxes it may act for)."
    )
    # Where autodiscover may ask: the person's own domain only, never a fallback.
    # https://learn.microsoft.com/exchange/client-developer/exchange-web-services/autodiscover-for-exchange
    AUTODISCOVER_URLS = (
        "https://{domain}/autodiscover/autodiscover.svc",
        "https://autodiscover.{domain}/autodiscover/autodiscover.svc",
    )

    def __init__(
        self,
        credentials: Mapping[str, Any],
        *,
        time_zone: str = "UTC",
        policy: OutboundPolicy | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        super().__init__(credentials, time_zone=time_zone, policy=policy)
        self.email = str(credentials.get("email", "")).strip()
        self.username = str(credentials.get("username") or "").strip() or self.email
        self.server_url = str(credentials.get("server_url") or "").strip()
        # Act on `email` as the service account `username` (Exchange Impersonation).
        self.impersonate = bool(credentials.get("impersonate"))
        self.requests = 0
        self._guard = Guard(self.policy, resolver, self._count)
        self._account: Account | None = None
        self._protocols: list[Any] = []

    def _count(self) -> None:
        self.requests += 1

    # -- plumbing -------------------------------------------------------------------

    def _credentials(self) -> Credentials:
        return Credentials(self.username, str(self.credentials.get("password", "")))

    def _endpoint(self) -> str:
        """The EWS URL: the one typed in (a bare host gets the standard path), or the
        one autodiscover finds in the person's own domain."""
        if self.server_url:
            parts = urlsplit(self.server_url)
            if parts.path in ("", "/"):
                parts = parts._replace(path="/EWS/Exchange.asmx")
            return urlunsplit(parts)
        if self.impersonate:
            # Autodiscover would send the service account's password to servers found
            # from each member's email domain.
            raise ServerError(
                "Enter the Exchange server's EWS URL in the integration's settings "
                "(e.g. https://mail.example.org/EWS/Exchange.asmx)."
            )
        return self._autodiscover()

    def _autodiscover(self) -> str:
        domain = self.email.rpartition("@")[2].lower()
        if not domain:
            raise ServerError("Enter your full email address, e.g. ada@example.org.")
        refused: RefusedAddressError | None = None
        for template in self.AUTODISCOVER_URLS:
            protocol = GuardedAutodiscoverProtocol(
                config=Configuration(
                    service_endpoint=template.format(domain=domain),
                    credentials=self._credentials(),
                    retry_policy=FailFast(),
                )
            )
            protocol.guard = self._guard
            try:
                response = protocol.get_user_settings(user=self.email)
            except RefusedAddressError as error:
                refused = error
                continue
            except ews_errors.UnauthorizedError:
                raise  # one wrong password is enough: never try it on the next host
            except (ews_errors.TransportError, ews_errors.EWSError, *_CONNECTION_ERRORS):
                continue
            finally:
                protocol.close()
            ews_url = response.ews_url or response.user_settings.get("internal_ews_url")
            if getattr(response, "error_code", None) in (None, "NoError") and ews_url:
                return str(ews_url)
        if refused is not None:
            raise ServerError(refused.message)
        raise ServerError(
            f"Convene could not find the Exchange server for {domain} automatically. "
            "Enter the Exchange server URL (ask your IT department, or use the address "
            "of Outlook on the web, e.g. https://mail.example.org) and try again."
        )

    @property
    def account(self) -> Account:
        if self._account is None:
            config = Configuration(
                service_endpoint=self._endpoint(),
                credentials=self._credentials(),
                version=PINNED_VERSION,
                retry_policy=FailFast(),
            )
            account = Account(
                primary_smtp_address=self.email,
                config=config,
                autodiscover=False,
                access_type=IMPERSONATION if self.impersonate else DELEGATE,
                default_timezone=UTC,
            )
            # Account() made (and cached process-wide) a plain Protocol; use one built
            # by the guard instead, outside exchangelib's cache.
            with suppress(KeyError):
                del Protocol[config]
            protocol = type.__call__(GuardedProtocol, config=config)
            protocol.guard = self._guard
            account.protocol = protocol
            self._protocols.append(protocol)
            self._account = account
        return self._account

    def _folder(self, calendar_id: str) -> Any:
        return EWSCalendar(root=Root(account=self.account), id=calendar_id)

    def close(self) -> None:
        for protocol in self._protocols:
            protocol.close()
        self._protocols.clear()
        self._account = None

    @contextmanager
    def _translated(self, *, connecting: bool = False) -> Iterator[None]:
        """Turn exchangelib and network errors into the contract's typed errors."""
        where = self.server_url or "your Exchange server"
        try:
            yield
        except RefusedAddressError as error:
            raise ServerError(error.message) from error
        except ews_errors.UnauthorizedError as error:
            if "locked out" in str(error):
                raise AuthError(self.locked_out) from error
            raise AuthError(
                self.service_auth_failure if self.impersonate else self.auth_failure
            ) from error
        except ews_errors.ErrorServerBusy as error:
            raise TransientError(
                "Exchange is busy and asked Convene to wait before trying again.",
                retry_after=error.back_off,
            ) from error
        except _IMPERSONATION_DENIED as error:
            raise PermissionError(self.impersonation_denied) from error
        except (ews_errors.ErrorAccessDenied, ews_errors.ErrorNonExistentMailbox) as error:
            if self.impersonate and isinstance(error, ews_errors.ErrorNonExistentMailbox):
                raise PermissionError(
                    f"Exchange has no mailbox for {self.email}. Check the address: it must "
                    "be the person's primary email address on the Exchange server."
                ) from error
            if _IMPERSONATION_TEXT in str(error):
                raise PermissionError(self.impersonation_denied) from error
            raise PermissionError(
                "Exchange signed you in but refused access to this mailbox's calendar. "
                "Check that the email address is your own mailbox."
            ) from error
        except _TLS_ERRORS as error:
            raise ServerError(
                "The Exchange server's security certificate is not valid for this "
                "address, so Convene will not send your password to it."
            ) from error
        except _CONNECTION_ERRORS as error:
            if connecting:
                raise ServerError(
                    f"Convene could not reach {where}. Check the server URL, or try "
                    "again later if the server is down."
                ) from error
            raise TransientError("The Exchange server could not be reached.") from error
        except (ews_errors.RedirectError, ews_errors.CASError, ews_errors.TransportError) as error:
            # exchangelib wraps TLS and connection errors met while tasting the
            # server's auth types in a TransportError (as __context__, not always
            # __cause__); the rest ("no auth type offered", unparseable answers) mean
            # that whatever answered does not speak EWS.
            causes = list(_causes(error))
            if any(isinstance(cause, _TLS_ERRORS) for cause in causes):
                raise ServerError(
                    "The Exchange server's security certificate is not valid for this "
                    "address, so Convene will not send your password to it."
                ) from error
            if any(isinstance(cause, _CONNECTION_ERRORS) for cause in causes):
                if connecting:
                    raise ServerError(
                        f"Convene could not reach {where}. Check the server URL, or try "
                        "again later if the server is down."
                    ) from error
                raise TransientError("The Exchange server could not be reached.") from error
            if connecting:
                raise ServerError(
                    f"{where} did not answer like an Exchange Web Services (EWS) endpoint. "
                    "Check the server URL; it usually ends in /EWS/Exchange.asmx."
                ) from error
            raise TransientError("The Exchange server answered with an error.") from error
        except ews_errors.EWSError as error:
            if _IMPERSONATION_TEXT in str(error):
                raise PermissionError(self.impersonation_denied) from error
            raise TransientError(
                f"Exchange answered with an error ({type(error).__name__})."
            ) from error

    # -- the contract ---------------------------------------------------------------

    def test_connection(self) -> Identity:
        if not self.email:
            raise ServerError("Enter your email address.")
        with self._translated(connecting=True):
            self.account.calendar  # noqa: B018 - a GetFolder that proves the sign-in
        return Identity(display=self.email, external_id=self.email.lower())

    def list_calendars(self) -> list[RemoteCalendar]:
        with self._translated(connecting=True):
            default = self.account.calendar
            result = [
                RemoteCalendar(
                    external_id=default.id, name=default.name or "Calendar", primary=True
                )
            ]
            for folder in self.account.root.walk():
                if isinstance(folder, EWSCalendar) and folder.id != default.id:
                    result.append(
                        RemoteCalendar(external_id=folder.id, name=folder.name or "Calendar")
                    )
        return result

    def sync_busy(
        self, calendar_id: str, window: Window, state: Mapping[str, Any] | None
    ) -> BusyChanges:
        self.requests = 0
        folder = self._folder(calendar_id)
        token = str(state.get("sync_state") or "") if state else ""
        with self._translated():
            changes = None
            if token:
                try:
                    changes = self._sync_incremental(folder, window, token)
                except ews_errors.ErrorInvalidSyncStateData:
                    changes = None
            if changes is None:
                changes = self._sync_full(folder, window)
        changes.requests = self.requests
        return changes

    def _sync_full(self, folder: Any, window: Window) -> BusyChanges:
        # SyncFolderItems from no state lists every item (and yields the state that
        # makes the next sync cheap): https://learn.microsoft.com/exchange/client-developer/exchange-web-services/how-to-synchronize-items-by-using-ews-in-exchange
        ids_by_uid: dict[str, str] = {}
        versions: dict[str, str] = {}
        for _change, item in folder.sync_items(sync_state=None, only_fields=SYNC_FIELDS):
            ids_by_uid[item.uid or item.id] = item.id
            versions[item.id] = item.changekey or ""
        changes = BusyChanges(full=True, versions=versions)
        changes.instances = self._busy(folder, window, ids_by_uid, only=None)
        changes.state = {"sync_state": folder.item_sync_state}
        return changes

    def _sync_incremental(self, folder: Any, window: Window, token: str) -> BusyChanges:
        ids_by_uid: dict[str, str] = {}
        changes = BusyChanges(full=False)
        for change, item in folder.sync_items(sync_state=token, only_fields=SYNC_FIELDS):
            if change == "delete":
                changes.deleted.add(item.id)
            elif change in ("create", "update"):
                ids_by_uid[item.uid or item.id] = item.id
                changes.changed.add(item.id)
        if changes.changed:
            changes.instances = self._busy(folder, window, ids_by_uid, only=changes.changed)
        changes.state = {"sync_state": folder.item_sync_state}
        return changes

    def _busy(
        self, folder: Any, window: Window, ids_by_uid: dict[str, str], only: set[str] | None
    ) -> list[BusyInstance]:
        """Busy occurrences in the window from a CalendarView, which the server
        expands (recurrences with their exceptions). An occurrence has its own ItemId,
        so it is mapped to its item through the iCalendar UID they share."""
        zone = ZoneInfo(self.time_zone)
        start = EWSDateTime.from_datetime(window.start.astimezone(dt.UTC)).astimezone(UTC)
        end = EWSDateTime.from_datetime(window.end.astimezone(dt.UTC)).astimezone(UTC)
        result: list[BusyInstance] = []
        for occurrence in folder.view(start=start, end=end).only(*VIEW_FIELDS):
            kind = BUSY_KINDS.get(str(occurrence.legacy_free_busy_status or "Busy"))
            if kind is None:  # Free, WorkingElsewhere
                continue
            if occurrence.convene_uid or ical.is_convene_uid(str(occurrence.uid or "")):
                continue  # Convene's own appointment blocks its time already
            event_id = ids_by_uid.get(str(occurrence.uid or ""), occurrence.id)
            if only is not None and event_id not in only:
                continue
            begins, ends = _utc_span(occurrence, zone)
            original = occurrence.original_start
            result.append(
                BusyInstance(
                    event_id=event_id,
                    instance_start=_as_utc(original) if original else begins,
                    start=begins,
                    end=ends,
                    all_day=bool(occurrence.is_all_day),
                    kind=kind,
                )
            )
        return result

    def upsert_event(
        self, calendar_id: str, event: EventPayload, ref: EventRef | None = None
    ) -> EventRef:
        folder = self._folder(calendar_id)
        fields = {
            "subject": event.title,
            "body": "\n\n".join(p for p in (event.description, event.join_url) if p),
            "location": event.location or event.join_url,
            "start": EWSDateTime.from_datetime(event.start.astimezone(dt.UTC)).astimezone(UTC),
            "end": EWSDateTime.from_datetime(event.end.astimezone(dt.UTC)).astimezone(UTC),
            "legacy_free_busy_status": "Busy" if event.busy else "Free",
        }
        with self._translated():
            existing: Any = None
            if ref is not None:
                existing = ItemId(id=ref.external_id, changekey=ref.etag or None)
            else:
                # A retry after a lost answer: the first attempt's item is found by its
                # property, so it is updated rather than duplicated.
                found = list(folder.filter(convene_uid=event.uid).only("id", "changekey")[:1])
                if found:
                    existing = found[0]
            if existing is not None:
                item = CalendarItem(
                    account=self.account,
                    folder=folder,
                    id=existing.id,
                    changekey=existing.changekey,
                    **fields,
                )
                try:
                    # Convene's version wins over edits made outside Convene.
                    item.save(
                        update_fields=list(fields),
                        conflict_resolution="AlwaysOverwrite",
                        send_meeting_invitations=SEND_TO_NONE,
                    )
                    return EventRef(external_id=item.id, etag=item.changekey or "")
                except ews_errors.ErrorItemNotFound:
                    if ref is None:
                        raise
                    return self.upsert_event(calendar_id, event, None)
            item = CalendarItem(
                account=self.account, folder=folder, uid=event.uid, convene_uid=event.uid, **fields
            )
            item.save(send_meeting_invitations=SEND_TO_NONE)
            return EventRef(external_id=item.id, etag=item.changekey or "")

    def delete_event(self, calendar_id: str, ref: EventRef) -> None:
        with self._translated():
            (result,) = self.account.bulk_delete(
                ids=[ItemId(id=ref.external_id)],
                delete_type="MoveToDeletedItems",
                send_meeting_cancellations=SEND_TO_NONE,
                affected_task_occurrences="AllOccurrences",
            )
            if isinstance(result, ews_errors.ErrorItemNotFound):
                return  # already gone: success
            if isinstance(result, Exception):
                raise result


_TLS_ERRORS: tuple[type[BaseException], ...] = (requests.exceptions.SSLError,)
# https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode
_IMPERSONATION_DENIED: tuple[type[BaseException], ...] = (
    ews_errors.ErrorImpersonateUserDenied,
    ews_errors.ErrorImpersonationDenied,
)
# What ErrorImpersonateUserDenied says ("The account does not have permission to
# impersonate the requested user."), should a server send it under another code.
_IMPERSONATION_TEXT = "permission to impersonate"
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionResetError,
    TimeoutError,
)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(value.timestamp(), tz=dt.UTC)


def _utc_span(occurrence: Any, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    if isinstance(occurrence.start, dt.datetime):
        return _as_utc(occurrence.start), _as_utc(occurrence.end)
    # All-day: exchangelib hands back dates and an *inclusive* end date (it subtracts
    # the day EWS adds). The dates are the owner's: midnight in their zone.
    first = dt.datetime.combine(occurrence.start, dt.time(), tzinfo=zone)
    last = dt.datetime.combine(occurrence.end + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return first.astimezone(dt.UTC), last.astimezone(dt.UTC)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The exceptions behind `error`, nearest first (explicit or implicit chaining)."""
    seen: set[int] = set()
    current = error.__cause__ or error.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
