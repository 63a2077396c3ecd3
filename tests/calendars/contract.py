"""The provider contract suite: every calendar provider passes these same tests.

A provider's test module subclasses `ProviderContract` and supplies three fixtures:
`provider` (a connected provider), `calendar_id` (an empty, writable calendar), and
`remote` (a `RemoteEditor` that changes that calendar the way another app would).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from apps.calendars.providers.base import (
    BusyChanges,
    BusyKind,
    CalendarProvider,
    EventPayload,
    EventRef,
    Window,
)


class RemoteEditor(Protocol):
    """Edits the provider's calendar as another calendar app would (not through
    Convene). `event` is the provider-neutral description of a busy event."""

    def add(self, *, start: dt.datetime, end: dt.datetime, busy: bool = True) -> str: ...

    def move(self, handle: str, *, start: dt.datetime, end: dt.datetime) -> None: ...

    def remove(self, handle: str) -> None: ...

    def count_convene_events(self) -> int: ...


def window_ahead() -> Window:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return Window(start=now - dt.timedelta(days=1), end=now + dt.timedelta(days=60))


def day_at(days: int, hour: int) -> dt.datetime:
    base = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + dt.timedelta(days=days, hours=hour)


def _spans(changes: BusyChanges) -> set[tuple[dt.datetime, dt.datetime]]:
    return {(i.start, i.end) for i in changes.instances}


class ProviderContract:
    def broken_state(self, state: dict[str, object]) -> dict[str, object]:
        """A state the provider will refuse (an expired token, say)."""
        return {
            key: f"{value}-expired-{uuid.uuid4().hex}" if isinstance(value, str) else value
            for key, value in state.items()
        }

    def test_connection_names_the_account(
        self, provider: CalendarProvider, calendar_id: str
    ) -> None:
        identity = provider.test_connection()
        assert identity.display

    def test_lists_the_calendar(self, provider: CalendarProvider, calendar_id: str) -> None:
        calendars = provider.list_calendars()
        assert calendar_id in {c.external_id for c in calendars}
        assert all(c.name for c in calendars)

    def test_first_sync_is_full_and_returns_state(
        self, provider: CalendarProvider, calendar_id: str, remote: RemoteEditor
    ) -> None:
        remote.add(start=day_at(2, 9), end=day_at(2, 10))
        changes = provider.sync_busy(calendar_id, window_ahead(), None)
        assert changes.full
        assert _spans(changes) == {(day_at(2, 9), day_at(2, 10))}
        assert changes.instances[0].kind == BusyKind.BUSY
        assert changes.state

    def test_full_sync_after_a_deletion_has_only_what_exists(
        self, provider: CalendarProvider, calendar_id: str, remote: RemoteEditor
    ) -> None:
        remote.remove(remote.add(start=day_at(2, 11), end=day_at(2, 12)))
        remote.add(start=day_at(2, 13), end=day_at(2, 14))
        changes = provider.sync_busy(calendar_id, window_ahead(), None)
        assert _spans(changes) == {(day_at(2, 13), day_at(2, 14))}
        # The state must not remember the deleted event either: an incremental sync
        # from it reports nothing.
        quiet = provider.sync_busy(calendar_id, window_ahead(), changes.state)
        assert not quiet.changed
        assert not quiet.deleted

    def test_free_events_are_not_busy(
        self, provider: CalendarProvider, calendar_id: str, remote: RemoteEditor
    ) -> None:
        remote.add(start=day_at(3, 9), end=day_at(3, 10), busy=False)
        assert provider.sync_busy(calendar_id, window_ahead(), None).instances == []

    def test_incremental_sync_sees_add_move_and_delete(
        self, provider: CalendarProvider, calendar_id: str, remote: RemoteEditor
    ) -> None:
        window = window_ahead()
        state = provider.sync_busy(calendar_id, window, None).state
        nothing = provider.sync_busy(calendar_id, window, state)
        assert not nothing.full
        assert nothing.instances == []
        assert not nothing.changed
        assert not nothing.deleted

        handle = remote.add(start=day_at(4, 9), end=day_at(4, 10))
        added = provider.sync_busy(calendar_id, window, nothing.state)
        assert not added.full
        assert _spans(added) == {(day_at(4, 9), day_at(4, 10))}
        (event_id,) = added.changed

        remote.move(handle, start=day_at(5, 14), end=day_at(5, 15))
        moved = provider.sync_busy(calendar_id, window, added.state)
        assert moved.changed == {event_id}
        assert _spans(moved) == {(day_at(5, 14), day_at(5, 15))}

        remote.remove(handle)
        removed = provider.sync_busy(calendar_id, window, moved.state)
        assert event_id in removed.deleted
        assert removed.instances == []

    def test_a_broken_state_leads_to_a_full_sync_not_an_error(
        self, provider: CalendarProvider, calendar_id: str, remote: RemoteEditor
    ) -> None:
        remote.add(start=day_at(6, 9), end=day_at(6, 10))
        state = provider.sync_busy(calendar_id, window_ahead(), None).state
        changes = provider.sync_busy(calendar_id, window_ahead(), self.broken_state(state))
        assert changes.full
        assert _spans(changes) == {(day_at(6, 9), day_at(6, 10))}

    def test_written_events_are_idempotent_and_not_busy(
        self, provider: CalendarProvider, calendar_id: str, remote: RemoteEditor
    ) -> None:
        event = EventPayload(
            uid=f"contract-{uuid.uuid4().hex}@convene.test",
            title="Career advice",
            start=day_at(7, 9),
            end=day_at(7, 10),
            description="Booked in Convene",
        )
        first = provider.upsert_event(calendar_id, event)
        # A retry that never learnt of the first write must not duplicate the event.
        again = provider.upsert_event(calendar_id, event)
        assert again.external_id == first.external_id
        assert remote.count_convene_events() == 1
        # Convene's own events already block their time as appointments.
        assert provider.sync_busy(calendar_id, window_ahead(), None).instances == []

        moved = EventPayload(**{**event.__dict__, "start": day_at(8, 9), "end": day_at(8, 10)})
        updated = provider.upsert_event(calendar_id, moved, again)
        assert updated.external_id == first.external_id
        assert remote.count_convene_events() == 1

        provider.delete_event(calendar_id, updated)
        assert remote.count_convene_events() == 0
        # Deleting what is already gone is success.
        provider.delete_event(calendar_id, EventRef(updated.external_id, updated.etag))
