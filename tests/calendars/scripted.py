"""A provider whose answers a test scripts, for testing the sync engine on its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from apps.calendars.providers.base import (
    BusyChanges,
    CalendarProvider,
    EventPayload,
    EventRef,
    Identity,
    ProviderError,
    RemoteCalendar,
    Window,
)


class ScriptedProvider(CalendarProvider):
    key = "caldav"
    name = "Scripted"
    # Class-level script, set by each test: answers are consumed in order.
    answers: ClassVar[list[BusyChanges | ProviderError]] = []
    calls: ClassVar[list[Mapping[str, Any] | None]] = []
    calendars: ClassVar[list[RemoteCalendar]] = []
    deleted: ClassVar[list[EventRef]] = []

    def test_connection(self) -> Identity:
        return Identity(display=str(self.credentials.get("username", "someone")))

    def list_calendars(self) -> list[RemoteCalendar]:
        return list(self.calendars)

    def sync_busy(
        self, calendar_id: str, window: Window, state: Mapping[str, Any] | None
    ) -> BusyChanges:
        self.calls.append(state)
        answer = self.answers.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def upsert_event(
        self, calendar_id: str, event: EventPayload, ref: EventRef | None = None
    ) -> EventRef:
        return EventRef(external_id=f"{calendar_id}{event.uid}.ics", etag='"1"')

    def delete_event(self, calendar_id: str, ref: EventRef) -> None:
        self.deleted.append(ref)
