from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from apps.calendars.crypto import decrypt_json
from apps.calendars.models import CalendarAccount
from apps.calendars.schedules import ensure_sync_schedules
from apps.calendars.tasks import sync_all_full_task, sync_due_task
from tests.conftest import Personas
from tests.factories import CalendarFactory, UserFactory

pytestmark = pytest.mark.django_db


def _raw_credentials(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("select credentials from calendars_calendaraccount where id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_rotating_keys_reencrypts_under_the_new_key(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    account = CalendarFactory(account__credentials={"password": "s3cret"}).account
    before = _raw_credentials(account.pk)
    settings.ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 calendar account" in out.getvalue()
    after = _raw_credentials(account.pk)
    assert after != before
    settings.ENCRYPTION_KEYS = [new]  # the old key can now go
    assert decrypt_json(after) == {"password": "s3cret"}
    assert CalendarAccount.objects.get(pk=account.pk).credentials == {"password": "s3cret"}


def test_beat_schedules_are_created_once_and_admin_edits_kept() -> None:
    ensure_sync_schedules()
    task = PeriodicTask.objects.get(task="calendars.sync_due")
    assert task.interval.every == 5
    task.enabled = False
    task.save()
    ensure_sync_schedules()
    assert PeriodicTask.objects.filter(task="calendars.sync_due").count() == 1
    assert not PeriodicTask.objects.get(task="calendars.sync_due").enabled
    assert PeriodicTask.objects.filter(task="calendars.sync_all_full").count() == 1


def test_due_sync_queues_one_task_per_connected_account(monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "apps.calendars.tasks.sync_account_task.delay", lambda **kwargs: queued.append(kwargs)
    )
    active = CalendarFactory().account
    gone = CalendarFactory(account__status=CalendarAccount.Status.DISCONNECTED).account
    assert sync_due_task() == 1
    assert queued == [{"account_id": active.pk}]
    queued.clear()
    assert sync_all_full_task() == 1
    assert queued[0]["full"] is True
    assert gone.pk not in {q["account_id"] for q in queued}


def test_admin_lists_accounts_without_credentials(client: Client) -> None:
    calendar = CalendarFactory(account__credentials={"password": "hunter2-xyz"})
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:calendars_calendaraccount_changelist"))
    assert listing.status_code == 200
    page = client.get(reverse("admin:calendars_calendaraccount_change", args=[calendar.account_id]))
    assert page.status_code == 200
    assert b"hunter2-xyz" not in listing.content + page.content
    for name in ("calendar", "busyblock", "syncrun"):
        assert client.get(reverse(f"admin:calendars_{name}_changelist")).status_code == 200


def test_admin_sync_now_action_queues_syncs(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "apps.calendars.admin.sync_account_task.delay", lambda **kwargs: queued.append(kwargs)
    )
    calendar = CalendarFactory()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:calendars_calendaraccount_changelist"),
        {"action": "sync_now", "_selected_action": [calendar.account_id]},
    )
    assert response.status_code == 302
    assert queued == [{"account_id": calendar.account_id, "full": False, "trigger": "manual"}]


def test_org_admin_sees_only_their_peoples_accounts(client: Client, personas: Personas) -> None:
    ours = CalendarFactory(account__owner=personas.participant).account
    theirs = CalendarFactory(account__owner=personas.outsider).account
    client.force_login(personas.org_admin)
    response = client.get(reverse("admin:calendars_calendaraccount_changelist"))
    assert [a.pk for a in response.context["cl"].result_list] == [ours.pk]
    page = client.get(reverse("admin:calendars_calendaraccount_change", args=[theirs.pk]))
    assert page.status_code == 302


def test_participants_cannot_reach_calendar_admin(client: Client, personas: Personas) -> None:
    client.force_login(personas.participant)
    response = client.get(reverse("admin:calendars_calendaraccount_changelist"))
    assert response.status_code == 302


def test_only_superusers_manage_the_private_server_allow_list(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.org_admin)
    assert client.get(reverse("admin:calendars_outboundallowrule_changelist")).status_code == 403
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:calendars_outboundallowrule_add"),
        {"value": "10.20.0.0/16", "note": "campus CalDAV"},
    )
    assert response.status_code == 302


def test_allow_list_combines_settings_and_admin_rules(settings: Any) -> None:
    import ipaddress

    from apps.calendars.models import OutboundAllowRule
    from apps.calendars.selectors import outbound_policy

    settings.OUTBOUND_ALLOWED_NETWORKS = ["192.168.10.0/24"]
    OutboundAllowRule.objects.create(value="10.20.0.0/16")
    OutboundAllowRule.objects.create(value="dav.intranet.example.edu")
    policy = outbound_policy()
    assert policy.allows("x", ipaddress.ip_address("192.168.10.7"))
    assert policy.allows("x", ipaddress.ip_address("10.20.3.4"))
    assert policy.allows("dav.intranet.example.edu", ipaddress.ip_address("10.99.0.1"))
    assert not policy.allows("other.example.edu", ipaddress.ip_address("10.99.0.1"))


def test_the_nightly_task_prunes_old_sync_records(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from django.utils import timezone

    from apps.calendars.models import SyncRun

    monkeypatch.setattr("apps.calendars.tasks.sync_account_task.delay", lambda **kwargs: None)
    account = CalendarFactory().account
    old = SyncRun.objects.create(
        account=account, trigger="scheduled", started_at=timezone.now() - dt.timedelta(days=31)
    )
    recent = SyncRun.objects.create(account=account, trigger="scheduled")
    sync_all_full_task()
    assert not SyncRun.objects.filter(pk=old.pk).exists()
    assert SyncRun.objects.filter(pk=recent.pk).exists()


@pytest.mark.parametrize(
    ("public_base_url", "warned"), [("", True), ("https://convene.example.edu", False)]
)
def test_the_admin_says_when_real_time_updates_are_off(
    client: Client, personas: Personas, settings: Any, public_base_url: str, warned: bool
) -> None:
    settings.PUBLIC_BASE_URL = public_base_url
    client.force_login(personas.org_admin)
    for page in ("calendaraccount", "pushchannel"):
        response = client.get(f"/admin/calendars/{page}/")
        assert response.status_code == 200
        assert ("Real-time updates are off" in response.content.decode()) is warned


def test_the_push_renewal_schedule_is_created(db: None) -> None:
    ensure_sync_schedules()
    renewal = PeriodicTask.objects.get(task="calendars.renew_push_channels")
    assert renewal.interval is not None
    assert (renewal.interval.every, renewal.interval.period) == (1, "hours")
