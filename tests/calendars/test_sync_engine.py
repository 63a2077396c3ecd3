"""The sync engine: reconciling, incremental changes, failures, locks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.calendars.models import BusyBlock, CalendarAccount, SyncRun
from apps.calendars.providers import PROVIDERS
from apps.calendars.providers.base import (
    AuthError,
    BadDataError,
    BusyChanges,
    BusyInstance,
    BusyKind,
    TransientError,
)
from apps.calendars.sync import calendar_account_sync
from tests.calendars.scripted import ScriptedProvider
from tests.factories import CalendarFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)


def busy(event_id: str, days: int, hours: int = 1, kind: BusyKind = BusyKind.BUSY) -> BusyInstance:
    start = NOW + dt.timedelta(days=days)
    return BusyInstance(event_id, start, start, start + dt.timedelta(hours=hours), kind=kind)


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedProvider]:
    monkeypatch.setitem(PROVIDERS, "caldav", ScriptedProvider)
    ScriptedProvider.answers = []
    ScriptedProvider.calls = []
    return ScriptedProvider


def _blocks(calendar_id: int) -> set[tuple[str, dt.datetime]]:
    return set(
        BusyBlock.objects.filter(calendar_id=calendar_id).values_list("external_event_id", "start")
    )


def test_full_sync_reconciles_instead_of_wiping(scripted: type[ScriptedProvider]) -> None:
    calendar = CalendarFactory()
    scripted.answers = [
        BusyChanges(full=True, instances=[busy("a", 1), busy("b", 2)], state={"t": "1"}),
        BusyChanges(full=True, instances=[busy("b", 2), busy("c", 3)], state={"t": "2"}),
    ]
    calendar_account_sync(account=calendar.account)
    kept = BusyBlock.objects.get(calendar=calendar, external_event_id="b").pk
    calendar_account_sync(account=calendar.account, full=True)
    assert {e for e, _ in _blocks(calendar.pk)} == {"b", "c"}
    # "b" was updated in place, not deleted and re-created.
    assert BusyBlock.objects.get(calendar=calendar, external_event_id="b").pk == kept
    assert scripted.calls == [None, None]  # a full sync passes no state


def test_incremental_sync_replaces_changed_events_and_drops_deleted(
    scripted: type[ScriptedProvider],
) -> None:
    calendar = CalendarFactory()
    scripted.answers = [
        BusyChanges(
            full=True, instances=[busy("a", 1), busy("b", 2), busy("r", 3)], state={"t": "1"}
        ),
        BusyChanges(
            full=False,
            instances=[busy("a", 5)],
            changed={"a", "r"},  # "r" changed into something free: no instances left
            deleted={"b"},
            state={"t": "2"},
        ),
    ]
    calendar_account_sync(account=calendar.account)
    calendar_account_sync(account=calendar.account)
    assert _blocks(calendar.pk) == {("a", NOW + dt.timedelta(days=5))}
    assert scripted.calls[1] == {"t": "1"}
    calendar.refresh_from_db()
    assert calendar.sync_state == {"t": "2"}


def test_blocks_outside_the_window_are_not_kept(scripted: type[ScriptedProvider]) -> None:
    calendar = CalendarFactory()
    scripted.answers = [
        BusyChanges(full=True, instances=[busy("old", -3), busy("far", 900), busy("ok", 1)])
    ]
    calendar_account_sync(account=calendar.account)
    assert {e for e, _ in _blocks(calendar.pk)} == {"ok"}


def test_only_calendars_checked_for_conflicts_are_synced(scripted: type[ScriptedProvider]) -> None:
    calendar = CalendarFactory()
    CalendarFactory(account=calendar.account, check_conflicts=False, is_primary=False)
    scripted.answers = [BusyChanges(full=True, instances=[busy("a", 1)])]
    runs = calendar_account_sync(account=calendar.account)
    assert [run.calendar_id for run in runs] == [calendar.pk]


def test_a_malformed_event_is_skipped_and_counted(scripted: type[ScriptedProvider]) -> None:
    calendar = CalendarFactory()
    scripted.answers = [
        BusyChanges(
            full=True,
            instances=[busy("good", 1)],
            skipped=[BadDataError("DTEND is before DTSTART", item="/cal/bad.ics")],
        )
    ]
    (run,) = calendar_account_sync(account=calendar.account)
    assert run.outcome == SyncRun.Outcome.OK
    assert run.skipped == 1
    assert "/cal/bad.ics" in run.error
    assert {e for e, _ in _blocks(calendar.pk)} == {"good"}
    calendar.account.refresh_from_db()
    assert calendar.account.status == CalendarAccount.Status.ACTIVE


def test_transient_failure_keeps_busy_blocks_and_is_raised_for_retry(
    scripted: type[ScriptedProvider],
) -> None:
    calendar = CalendarFactory()
    scripted.answers = [
        BusyChanges(full=True, instances=[busy("a", 1)], state={"t": "1"}),
        TransientError("The calendar server could not be reached.", retry_after=30),
    ]
    calendar_account_sync(account=calendar.account)
    with pytest.raises(TransientError):
        calendar_account_sync(account=calendar.account)
    account = CalendarAccount.objects.get(pk=calendar.account_id)
    assert account.status == CalendarAccount.Status.ERROR
    assert "try again" in account.status_detail
    assert account.consecutive_failures == 1
    assert {e for e, _ in _blocks(calendar.pk)} == {"a"}  # last known busy time kept
    assert SyncRun.objects.filter(outcome=SyncRun.Outcome.FAILED).count() == 1


def test_auth_failure_disconnects_and_emails_the_owner_once(
    scripted: type[ScriptedProvider], django_capture_on_commit_callbacks: object
) -> None:
    calendar = CalendarFactory()
    scripted.answers = [
        AuthError("The server rejected the password."),
        AuthError("The server rejected the password."),
    ]
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        calendar_account_sync(account=calendar.account)
    account = CalendarAccount.objects.get(pk=calendar.account_id)
    assert account.status == CalendarAccount.Status.DISCONNECTED
    assert account.status_detail == "The server rejected the password."
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Action required: your CalDAV calendar is no longer connected"
    assert f"/settings/calendars/{account.pk}/reconnect/" in message.body
    # A disconnected account is not synced again, and nobody is emailed twice.
    account.status = CalendarAccount.Status.ERROR
    account.save()
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        calendar_account_sync(account=account)
    assert len(mail.outbox) == 1


def test_a_calendar_already_syncing_is_skipped(scripted: type[ScriptedProvider]) -> None:
    calendar = CalendarFactory()
    cache.add(f"calendars:sync-lock:{calendar.pk}", "locked", 60)
    (run,) = calendar_account_sync(account=calendar.account)
    assert run.outcome == SyncRun.Outcome.SKIPPED
    assert scripted.calls == []


def test_busy_blocks_never_hold_event_details() -> None:
    names = {field.name for field in BusyBlock._meta.get_fields()}
    assert not names & {"title", "summary", "description", "location", "attendees"}


def test_sync_query_count_does_not_grow_with_events(scripted: type[ScriptedProvider]) -> None:
    def counts(events: int) -> tuple[int, int, int]:
        """Queries of a first sync, a full resync moving every block, and a quiet sync."""
        calendar = CalendarFactory()
        scripted.answers = [
            BusyChanges(full=True, instances=[busy(f"e{i}", 1 + i % 50) for i in range(events)]),
            BusyChanges(full=True, instances=[busy(f"e{i}", 2) for i in range(events)]),
            BusyChanges(full=False, state={"t": "x"}),
        ]
        measured = []
        for full in (True, True, False):
            with CaptureQueriesContext(connection) as queries:
                calendar_account_sync(account=calendar.account, full=full)
            measured.append(len(queries))
        return measured[0], measured[1], measured[2]

    assert counts(10) == counts(400)
