"""The calendar provider contract: what every provider does, and what crosses the
boundary between a provider and the rest of Convene.

Providers know their vendor's protocol and nothing of Convene's models, views or tasks:
they take plain values in and give these dataclasses back. The sync engine maps them
onto `CalendarAccount`, `Calendar` and `BusyBlock`.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apps.calendars.providers.http import OutboundPolicy

# ---------------------------------------------------------------------------------
# Errors. Each carries a message written for the person who can fix the problem.
# ---------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base class: `message` is safe to show to the account's owner."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthError(ProviderError):
    """Credentials are wrong or revoked: the account is disconnected until the owner
    reconnects. Never retried automatically (retrying a wrong password locks accounts)."""


class PermissionError(ProviderError):
    """Signed in, but a permission (scope, calendar right) Convene needs is missing."""


class ServerError(ProviderError):
    """The server address is wrong, refused by the outbound guard, or not a calendar
    server: the person must fix the address; retrying as-is cannot help."""


class TransientError(ProviderError):
    """Timeouts, 5xx, rate limits: retry later, keeping the last known busy blocks."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BadDataError(ProviderError):
    """One item the provider sent cannot be understood: skip and count it, never fail
    the whole calendar."""

    def __init__(self, message: str, *, item: str = "") -> None:
        super().__init__(message)
        self.item = item


# ---------------------------------------------------------------------------------
# What crosses the boundary.
# ---------------------------------------------------------------------------------


class BusyKind(enum.StrEnum):
    BUSY = "busy"
    TENTATIVE = "tentative"
    OUT_OF_OFFICE = "out_of_office"


@dataclass(frozen=True)
class Window:
    """A half-open UTC time range [start, end)."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Window bounds must be aware datetimes.")
        if self.start >= self.end:
            raise ValueError("A window must start before it ends.")


@dataclass(frozen=True)
class BusyInstance:
    """One busy occurrence. Deliberately without title, description, location or
    attendees: Convene only ever learns *that* someone is busy, never why."""

    event_id: str  # the provider's unit of change (CalDAV href, Google/Graph event id)
    instance_start: dt.datetime  # original start of this occurrence (its RECURRENCE-ID)
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    all_day: bool = False
    kind: BusyKind = BusyKind.BUSY


@dataclass
class BusyChanges:
    """What `sync_busy` found.

    `full=True`: `instances` is the complete busy set of the calendar in the window;
    the engine reconciles (upserts these, deletes every other block of the calendar).
    `full=False`: for each id in `changed`, the instances with that `event_id` replace
    the stored ones (none left means it is no longer busy); ids in `deleted` are gone.
    """

    full: bool
    instances: list[BusyInstance] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    state: dict[str, Any] = field(default_factory=dict)
    skipped: list[BadDataError] = field(default_factory=list)
    requests: int = 0  # HTTP requests made, for benchmarks and the sync record
    # Full syncs only, where the provider can tell: the version (etag) of every item
    # in the calendar by external id. Lets the engine notice that an event Convene
    # wrote was edited or deleted outside Convene, and write Convene's version back.
    versions: dict[str, str] | None = None


@dataclass(frozen=True)
class RemoteCalendar:
    external_id: str
    name: str
    primary: bool = False
    read_only: bool = False
    color: str = ""


@dataclass(frozen=True)
class Identity:
    """Who the connection belongs to, as the provider sees it."""

    display: str  # e.g. the email address or Apple ID
    external_id: str = ""


@dataclass(frozen=True)
class EventPayload:
    """One event Convene writes. `uid` is deterministic per appointment and calendar,
    which makes every write idempotent."""

    uid: str
    title: str
    start: dt.datetime
    end: dt.datetime
    description: str = ""
    location: str = ""
    join_url: str = ""
    busy: bool = True
    # Ask the calendar service for its own video meeting (Google Meet, Teams); the
    # link it makes comes back on the EventRef.
    conferencing: bool = False


@dataclass(frozen=True)
class EventRef:
    """Where a written event lives, so it can be updated or deleted later."""

    external_id: str
    etag: str = ""
    join_url: str = ""  # the video link the service created, if it was asked to


# ---------------------------------------------------------------------------------
# The contract.
# ---------------------------------------------------------------------------------


class CalendarProvider(abc.ABC):
    """One connected account at one calendar service.

    `credentials` is the decrypted secret material (passwords, tokens); providers must
    never log it or put it into an error message.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    supports_push: ClassVar[bool] = False
    # The service creates its own video links for events, and what they are called.
    integrated_conferencing: ClassVar[bool] = False
    conferencing_name: ClassVar[str] = ""

    def __init__(
        self,
        credentials: Mapping[str, Any],
        *,
        time_zone: str = "UTC",
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.credentials = credentials
        # The owner's IANA zone: floating times and all-day dates are theirs.
        self.time_zone = time_zone
        # Which private servers may be reached (user-typed URLs only).
        self.policy = policy if policy is not None else OutboundPolicy()

    @abc.abstractmethod
    def test_connection(self) -> Identity:
        """Check credentials and permissions before anything is saved.

        Raises AuthError, PermissionError or TransientError with an actionable message.
        """

    @abc.abstractmethod
    def list_calendars(self) -> list[RemoteCalendar]:
        """The account's calendars, the primary first."""

    @abc.abstractmethod
    def sync_busy(
        self, calendar_id: str, window: Window, state: Mapping[str, Any] | None
    ) -> BusyChanges:
        """Busy changes since `state` (None or empty: a full sync).

        An expired or invalid `state` leads to a full, reconciling result, never an
        error. Raises AuthError, PermissionError, TransientError.
        """

    @abc.abstractmethod
    def upsert_event(
        self, calendar_id: str, event: EventPayload, ref: EventRef | None = None
    ) -> EventRef:
        """Create or update one Convene event; a retry never creates a duplicate."""

    @abc.abstractmethod
    def delete_event(self, calendar_id: str, ref: EventRef) -> None:
        """Remove one event Convene created; an event already gone is success."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; providers holding a session override this."""
