"""Outbound webhooks against a real HTTP receiver on 127.0.0.1: signatures checked the
way docs/webhooks.md tells integrators, retries, deduplication, who hears what, and
the admin."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.accounts.models import Organization, Program, Role, User
from apps.appointments.booking import appointment_book
from apps.appointments.models import Appointment
from apps.appointments.services import (
    appointment_edit,
    appointment_transition,
    host_settings_update,
)
from apps.calendars.models import CalendarAccount
from apps.calendars.services import calendar_account_disconnect
from apps.calendars.signals import calendar_account_connected
from apps.calendars.sync import calendar_account_mark_disconnected
from apps.integrations import receivers
from apps.integrations.models import WebhookDelivery, WebhookSubscription
from apps.integrations.schedules import ensure_webhook_schedule
from apps.integrations.tasks import deliver_webhook_task, webhook_sweep_task
from apps.integrations.webhooks import (
    FIRST_BACKOFF,
    MAX_ATTEMPTS,
    webhook_deliver,
    webhook_event_emit,
    webhook_ping,
    webhook_signature_verify,
    webhook_subscription_create,
    webhook_sweep,
)
from apps.mentoring.signals import poll_finalized
from tests.conftest import Personas
from tests.factories import (
    CalendarAccountFactory,
    MembershipFactory,
    ProgramFactory,
    next_weekday_at,
)
from tests.integrations.webhook_receiver import Answer, Received, WebhookReceiver

pytestmark = pytest.mark.django_db

State = WebhookDelivery.State
Event = WebhookSubscription.Event
ALL_EVENTS = list(Event.values)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


# ---------------------------------------------------------------------------------
# Fixtures and helpers.
# ---------------------------------------------------------------------------------


@pytest.fixture
def receiver(settings: Any) -> Iterator[WebhookReceiver]:
    # The receiver is on loopback, which Convene refuses unless an admin allows it.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def docs_verify() -> Callable[..., bool]:
    """The verification function integrators copy from docs/webhooks.md, run as is."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    source = next(block for block in blocks if "def verify_convene_webhook" in block)
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    verify: Callable[..., bool] = namespace["verify_convene_webhook"]
    return verify


def subscribe(
    organization: Organization, url: str, events: list[str] | None = None
) -> tuple[WebhookSubscription, str]:
    return webhook_subscription_create(
        organization=organization, url=url, events=events or ALL_EVENTS, description="test"
    )


def emit(capture: Any, organization: Organization, event_type: str = "appointment.created") -> Any:
    with capture(execute=True):
        return webhook_event_emit(
            organization=organization, event_type=event_type, data={"hello": "world"}
        )


def verifies(secret: str, request: Received, verify: Callable[..., bool]) -> bool:
    return verify(
        secret,
        request.headers["convene-webhook-timestamp"],
        request.body,
        request.headers["convene-webhook-signature"],
    )


# ---------------------------------------------------------------------------------
# Signatures.
# ---------------------------------------------------------------------------------


def test_delivery_is_signed_the_way_the_docs_tell_integrators(
    personas: Personas,
    receiver: WebhookReceiver,
    docs_verify: Callable[..., bool],
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscription, secret = subscribe(personas.organization, receiver.url())
    assert secret.startswith("whsec_")
    assert subscription.secret == {"secret": secret}

    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)

    [request] = receiver.received()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["convene-webhook-id"] == str(delivery.event_id)
    assert abs(int(request.headers["convene-webhook-timestamp"]) - time.time()) < 5
    assert re.fullmatch(r"v1=[0-9a-f]{64}", request.headers["convene-webhook-signature"])
    assert request.json["id"] == str(delivery.event_id)
    assert request.json["type"] == "appointment.created"
    assert request.json["data"] == {"hello": "world"}
    assert request.json["created"].endswith("Z")
    assert verifies(secret, request, docs_verify)
    assert verifies(secret, request, webhook_signature_verify)
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert delivery.attempts == 1
    [attempt] = delivery.tries.all()
    assert attempt.status_code == 200
    assert attempt.error == ""


def test_tampered_body_wrong_secret_or_old_timestamp_fail_verification(
    personas: Personas,
    receiver: WebhookReceiver,
    docs_verify: Callable[..., bool],
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, secret = subscribe(personas.organization, receiver.url())
    emit(django_capture_on_commit_callbacks, personas.organization)
    [request] = receiver.received()
    timestamp = request.headers["convene-webhook-timestamp"]
    signature = request.headers["convene-webhook-signature"]
    tampered = request.body.replace(b'"world"', b'"moon"')
    assert tampered != request.body

    for verify in (docs_verify, webhook_signature_verify):
        assert verify(secret, timestamp, request.body, signature)
        assert not verify(secret, timestamp, tampered, signature)
        assert not verify(secret + "x", timestamp, request.body, signature)
        assert not verify(secret, str(int(timestamp) + 1), request.body, signature)
        assert not verify(secret, "not a number", request.body, signature)
        assert not verify(secret, timestamp, request.body, "")
        # A replay six minutes later is refused; within five minutes it still passes.
        with time_machine.travel(int(timestamp) + 299, tick=False):
            assert verify(secret, timestamp, request.body, signature)
        with time_machine.travel(int(timestamp) + 301, tick=False):
            assert not verify(secret, timestamp, request.body, signature)


# ---------------------------------------------------------------------------------
# Retries and deduplication.
# ---------------------------------------------------------------------------------


def test_failed_delivery_is_retried_with_doubling_backoff_and_the_same_id(
    personas: Personas,
    receiver: WebhookReceiver,
    docs_verify: Callable[..., bool],
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, secret = subscribe(personas.organization, receiver.url())
    receiver.answer(Answer(500, body=b"database down"), Answer(500), Answer(200))

    before = timezone.now()
    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (State.PENDING, 1)
    assert before + FIRST_BACKOFF <= delivery.next_attempt_at <= timezone.now() + FIRST_BACKOFF
    assert delivery.tries.get().error == "HTTP 500: database down"

    # Not due yet: the sweep leaves it alone.
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_sweep() == 0
    assert len(receiver.received()) == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_sweep(now=delivery.next_attempt_at) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (State.PENDING, 2)
    second_wait = delivery.next_attempt_at - delivery.tries.order_by("-at").first().at
    assert abs(second_wait - 2 * FIRST_BACKOFF) < dt.timedelta(seconds=5)

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_sweep(now=delivery.next_attempt_at) == 1
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert [t.status_code for t in delivery.tries.all()] == [500, 500, 200]

    requests = receiver.received()
    assert len(requests) == 3
    assert {r.headers["convene-webhook-id"] for r in requests} == {str(delivery.event_id)}
    assert {r.body for r in requests} == {requests[0].body}
    assert all(verifies(secret, r, docs_verify) for r in requests)

    # Delivered: neither a late task nor the sweep sends it again.
    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert webhook_sweep(now=timezone.now() + dt.timedelta(days=1)) == 0
    assert len(receiver.received()) == 3


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [
        (429, lambda: "600"),
        (503, lambda: email.utils.format_datetime(timezone.now() + dt.timedelta(seconds=600))),
    ],
)
def test_retry_after_is_honoured(
    personas: Personas,
    receiver: WebhookReceiver,
    django_capture_on_commit_callbacks: Any,
    status: int,
    retry_after: Callable[[], str],
) -> None:
    subscribe(personas.organization, receiver.url())
    receiver.answer(Answer(status, headers={"Retry-After": retry_after()}))
    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)
    delivery.refresh_from_db()
    assert delivery.state == State.PENDING
    wait = delivery.next_attempt_at - timezone.now()
    assert dt.timedelta(seconds=590) < wait <= dt.timedelta(seconds=600)
    assert delivery.tries.get().status_code == status


def test_delivery_fails_for_good_after_the_last_attempt(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(personas.organization, receiver.url())
    receiver.answer(*[Answer(502)] * (MAX_ATTEMPTS + 5))
    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)
    for _ in range(MAX_ATTEMPTS - 1):
        assert webhook_deliver(delivery_id=delivery.pk) is not None
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (State.FAILED, MAX_ATTEMPTS)
    assert delivery.delivered_at is None
    assert delivery.tries.count() == MAX_ATTEMPTS
    assert webhook_deliver(delivery_id=delivery.pk) is None
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_sweep(now=timezone.now() + dt.timedelta(days=2)) == 0
    requests = receiver.received()
    assert len(requests) == MAX_ATTEMPTS
    assert len({r.headers["convene-webhook-id"] for r in requests}) == 1


def test_refused_address_is_recorded_plainly_and_not_retried(
    personas: Personas,
    receiver: WebhookReceiver,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    subscribe(personas.organization, receiver.url("/hooks?token=do-not-log"))
    settings.OUTBOUND_ALLOWED_NETWORKS = []  # the administrator withdrew the permission

    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (State.FAILED, 1)
    attempt = delivery.tries.get()
    assert attempt.status_code is None
    assert attempt.error == (
        "127.0.0.1 is a loopback address (the Convene server itself). Convene only "
        "connects to public servers; ask your administrator to allow this server if it "
        "is self-hosted."
    )
    assert receiver.received() == []


def test_a_refused_address_cannot_be_subscribed(personas: Personas, settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(ValidationError, match="cloud metadata address"):
        subscribe(personas.organization, "http://169.254.169.254/latest/meta-data/")
    assert not WebhookSubscription.objects.exists()


def test_redirects_are_reported_not_followed(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(personas.organization, receiver.url("/old"))
    receiver.answer(Answer(307, headers={"Location": receiver.url("/new")}))
    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)
    assert [r.path for r in receiver.received()] == ["/old"]
    delivery.refresh_from_db()
    assert delivery.state == State.PENDING
    assert "redirects are not followed" in delivery.tries.get().error


def test_the_sweep_delivers_what_a_lost_task_left_behind(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(personas.organization, receiver.url())
    # Emitted, but the transaction's on-commit task never ran (a worker died).
    [delivery] = webhook_event_emit(
        organization=personas.organization, event_type="appointment.created", data={}
    )
    assert receiver.received() == []
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_sweep_task() == 1
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert len(receiver.received()) == 1


def test_one_event_carries_one_id_to_every_subscription(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(personas.organization, receiver.url("/one"))
    subscribe(personas.organization, receiver.url("/two"))
    deliveries = emit(django_capture_on_commit_callbacks, personas.organization)
    assert len(deliveries) == 2
    ids = {r.headers["convene-webhook-id"] for r in receiver.received()}
    assert len(receiver.received()) == 2
    assert ids == {str(deliveries[0].event_id)}


def test_unknown_event_types_are_refused(personas: Personas) -> None:
    with pytest.raises(ValueError, match="Unknown webhook event"):
        webhook_event_emit(organization=personas.organization, event_type="nope", data={})


def test_tasks_run_on_the_webhooks_queue_and_the_sweep_is_scheduled() -> None:
    assert deliver_webhook_task.queue == "webhooks"
    assert webhook_sweep_task.queue == "webhooks"
    ensure_webhook_schedule()  # again, after migrate: still one
    [task] = PeriodicTask.objects.filter(task="integrations.webhook_sweep")
    assert task.queue == "webhooks"
    assert (task.interval.every, task.interval.period) == (1, "minutes")


# ---------------------------------------------------------------------------------
# Who hears what.
# ---------------------------------------------------------------------------------


def _event_types(receiver: WebhookReceiver, path: str) -> list[str]:
    return [r.json["type"] for r in receiver.received(path)]


def test_appointment_life_cycle_reaches_only_its_organizations_subscriptions(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(personas.organization, receiver.url("/ours"))
    subscribe(personas.organization, receiver.url("/cancels"), [Event.APPOINTMENT_CANCELED])
    paused, _ = subscribe(personas.organization, receiver.url("/paused"))
    paused.is_active = False
    paused.save()
    subscribe(personas.other_organization, receiver.url("/theirs"))
    host_settings_update(host=personas.mentor, needs_approval=True)
    start = next_weekday_at(10)

    with django_capture_on_commit_callbacks(execute=True):
        appointment = appointment_book(
            program=personas.program,
            host=personas.mentor,
            attendees=[personas.participant],
            start=start,
            end=start + dt.timedelta(minutes=30),
            title="CV review",
            booked_by=personas.participant,
            notes="private notes of the participant",
        )
    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(appointment=appointment, actor=personas.mentor, to="approved")
    with django_capture_on_commit_callbacks(execute=True):
        appointment_edit(
            appointment=appointment,
            actor=personas.mentor,
            start=start + dt.timedelta(hours=1),
            end=start + dt.timedelta(hours=1, minutes=30),
            location="Room 101",
            join_url="https://meet.example.org/cv",
        )
    with django_capture_on_commit_callbacks(execute=True):
        appointment_transition(appointment=appointment, actor=personas.participant, to="canceled")

    assert _event_types(receiver, "/ours") == [
        "appointment.created",
        "appointment.status_changed",
        "appointment.updated",
        "appointment.canceled",
    ]
    assert _event_types(receiver, "/cancels") == ["appointment.canceled"]
    assert receiver.received("/paused") == []
    assert receiver.received("/theirs") == []

    created, approved, edited, canceled = (r.json["data"] for r in receiver.received("/ours"))
    assert created["appointment"] == {
        "id": appointment.pk,
        "status": "requested",
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": (start + dt.timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        "title": "CV review",
        "location": "",
        "conferencing": None,
        "host": {
            "sub": str(personas.mentor.pk),
            "email": personas.mentor.email,
            "name": personas.mentor.full_name,
        },
        "attendees": [
            {
                "sub": str(personas.participant.pk),
                "email": personas.participant.email,
                "name": personas.participant.full_name,
            }
        ],
        "program": {"id": personas.program.pk, "name": personas.program.name},
    }
    assert created["actor"] == {
        "sub": str(personas.participant.pk),
        "email": personas.participant.email,
    }
    assert approved["appointment"]["status"] == "approved"
    assert approved["actor"]["sub"] == str(personas.mentor.pk)
    assert edited["appointment"]["location"] == "Room 101"
    assert edited["appointment"]["conferencing"] == {
        "profile_id": "explicit",
        "join_url": "https://meet.example.org/cv",
    }
    assert canceled["appointment"]["status"] == "canceled"
    assert all(b"private notes" not in r.body for r in receiver.received())


def test_a_webhook_failure_never_breaks_the_booking(
    personas: Personas, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("webhooks are down")

    monkeypatch.setattr(receivers, "webhook_event_emit", broken)
    start = next_weekday_at(11)
    with django_capture_on_commit_callbacks(execute=True):
        appointment = appointment_book(
            program=personas.program,
            host=personas.mentor,
            attendees=[personas.participant],
            start=start,
            end=start + dt.timedelta(minutes=30),
            title="CV review",
            booked_by=personas.participant,
        )
    assert Appointment.objects.filter(pk=appointment.pk).exists()


@pytest.fixture
def member_with_calendar(personas: Personas) -> tuple[User, CalendarAccount, Program]:
    """A participant of our programme, also in an inactive programme elsewhere."""
    dormant = ProgramFactory(is_active=False)
    MembershipFactory(user=personas.participant, program=dormant, role=Role.PARTICIPANT)
    account = CalendarAccountFactory(
        owner=personas.participant, provider="caldav", identity="student@dav.example.org"
    )
    return personas.participant, account, dormant


def test_calendar_connect_and_disconnect_reach_the_owners_organizations(
    personas: Personas,
    receiver: WebhookReceiver,
    member_with_calendar: tuple[User, CalendarAccount, Program],
    django_capture_on_commit_callbacks: Any,
) -> None:
    owner, account, dormant = member_with_calendar
    subscribe(personas.organization, receiver.url("/ours"))
    subscribe(personas.other_organization, receiver.url("/theirs"))
    subscribe(dormant.organization, receiver.url("/dormant"))

    with django_capture_on_commit_callbacks(execute=True):
        calendar_account_connected.send(sender=CalendarAccount, account=account)
    with django_capture_on_commit_callbacks(execute=True):
        calendar_account_mark_disconnected(account=account, reason="The password was changed.")
    account_id = account.pk
    with django_capture_on_commit_callbacks(execute=True):
        calendar_account_disconnect(account=account, actor=owner, remove_events=False)

    connected, revoked, removed = (r.json["data"] for r in receiver.received("/ours"))
    profile = {
        "sub": str(owner.pk),
        "email": owner.email,
        "provider": "caldav",
        "profile_id": str(account_id),
        "profile_name": "student@dav.example.org",
    }
    assert _event_types(receiver, "/ours") == [
        "profile_connected",
        "profile_disconnected",
        "profile_disconnected",
    ]
    assert connected == {"profile": profile}
    assert revoked == {"profile": profile, "reason": "The password was changed."}
    assert removed == {"profile": profile, "reason": "disconnected by its owner"}
    assert receiver.received("/theirs") == []
    assert receiver.received("/dormant") == []


def test_poll_finalized_reaches_the_appointments_organization(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    subscribe(personas.organization, receiver.url("/ours"), [Event.POLL_FINALIZED])
    subscribe(personas.other_organization, receiver.url("/theirs"))
    appointment = Appointment.objects.create(
        program=personas.program,
        host=personas.mentor,
        start=next_weekday_at(9),
        end=next_weekday_at(10),
        title="Circle meeting",
        status=Appointment.Status.APPROVED,
    )
    appointment.attendees.set([personas.participant])
    poll = SimpleNamespace(pk=12, title="Spring kick-off")  # a MeetingPoll's fields
    with django_capture_on_commit_callbacks(execute=True):
        poll_finalized.send(sender=None, poll=poll, appointment=appointment)
    [request] = receiver.received("/ours")
    assert request.json["type"] == "poll.finalized"
    assert request.json["data"]["poll"] == {"id": 12, "title": "Spring kick-off"}
    assert request.json["data"]["appointment"]["id"] == appointment.pk
    assert receiver.received("/theirs") == []


def test_conferencing_assigned_has_its_documented_shape(
    personas: Personas, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    # No emitter yet (issue 5): this is the shape docs/webhooks.md promises.
    subscribe(personas.organization, receiver.url(), [Event.CONFERENCING_ASSIGNED])
    appointment = Appointment.objects.create(
        program=personas.program,
        host=personas.mentor,
        start=next_weekday_at(9),
        end=next_weekday_at(10),
        title="Mock interview",
        join_url="https://zoom.example/j/1",
    )
    appointment.attendees.set([personas.participant])
    data = receivers.conferencing_assigned_data(
        appointment=appointment, provider_description="Zoom"
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(
            organization=personas.organization, event_type="conferencing_assigned", data=data
        )
    [request] = receiver.received()
    assert request.json["data"]["conferencing"] == {
        "provider_description": "Zoom",
        "join_url": "https://zoom.example/j/1",
    }
    assert request.json["data"]["appointment"]["conferencing"]["join_url"] == (
        "https://zoom.example/j/1"
    )


# ---------------------------------------------------------------------------------
# Ping and the admin.
# ---------------------------------------------------------------------------------


def test_ping_is_signed_and_sent_once_whatever_the_answer(
    personas: Personas, receiver: WebhookReceiver, docs_verify: Callable[..., bool]
) -> None:
    subscription, secret = subscribe(personas.organization, receiver.url(), [Event.POLL_FINALIZED])
    attempt = webhook_ping(subscription=subscription)
    assert (attempt.status_code, attempt.error) == (200, "")
    [request] = receiver.received()
    assert request.json["type"] == "ping"
    assert verifies(secret, request, docs_verify)

    receiver.answer(Answer(404, body=b"no such hook"))
    failed = webhook_ping(subscription=subscription)
    assert failed.error == "HTTP 404: no such hook"
    assert failed.delivery.state == State.FAILED


def _add_subscription(client: Client, organization: Organization, url: str) -> Any:
    return client.post(
        reverse("admin:integrations_webhooksubscription_add"),
        {
            "organization": organization.pk,
            "url": url,
            "description": "Career portal",
            "events": [Event.APPOINTMENT_CREATED, Event.APPOINTMENT_CANCELED],
            "is_active": "on",
        },
        follow=True,
    )


def test_admin_creates_a_subscription_and_shows_its_secret_only_once(
    personas: Personas, receiver: WebhookReceiver, client: Client
) -> None:
    client.force_login(personas.org_admin)
    response = _add_subscription(client, personas.organization, receiver.url())
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    secret = subscription.secret["secret"]
    assert secret.startswith("whsec_")
    assert secret in response.content.decode()
    assert subscription.organization == personas.organization
    assert subscription.events == [Event.APPOINTMENT_CREATED, Event.APPOINTMENT_CANCELED]

    pages = [
        reverse("admin:integrations_webhooksubscription_changelist"),
        reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk]),
        reverse("admin:integrations_webhookdelivery_changelist"),
    ]
    change_page = client.get(pages[1]).content.decode()
    checked = re.findall(
        r'<input type="checkbox" name="events" value="([^"]+)"[^>]*checked', change_page
    )
    assert checked == [Event.APPOINTMENT_CREATED, Event.APPOINTMENT_CANCELED]
    webhook_ping(subscription=subscription)
    delivery = WebhookDelivery.objects.get()
    pages.append(reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk]))
    for page in pages:
        shown = client.get(page)
        assert shown.status_code == 200
        assert secret not in shown.content.decode()
        assert secret[6:20] not in shown.content.decode()


def test_admin_refuses_private_addresses_and_other_organizations(
    personas: Personas, client: Client, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    client.force_login(personas.org_admin)
    refused = _add_subscription(client, personas.organization, "http://10.0.0.5/hooks")
    assert "a private network address" in refused.content.decode()
    elsewhere = _add_subscription(client, personas.other_organization, "https://example.org/h")
    assert "Select a valid choice" in elsewhere.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_admin_ping_action_shows_the_result(
    personas: Personas, receiver: WebhookReceiver, client: Client
) -> None:
    ok, _ = subscribe(personas.organization, receiver.url("/ok"))
    broken, _ = subscribe(personas.organization, receiver.url("/broken"))
    receiver.answer(Answer(500, body=b"boom"), path="/broken")
    client.force_login(personas.org_admin)
    response = client.post(
        reverse("admin:integrations_webhooksubscription_changelist"),
        {"action": "send_test_ping", "_selected_action": [ok.pk, broken.pk]},
        follow=True,
    )
    content = response.content.decode()
    assert f"Ping to {ok.url}: HTTP 200" in content
    assert f"Ping to {broken.url} failed: HTTP 500: boom" in content
    assert [r.json["type"] for r in receiver.received()] == ["ping", "ping"]


def test_admin_shows_deliveries_with_attempts_and_retries_them(
    personas: Personas,
    receiver: WebhookReceiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscribe(personas.organization, receiver.url())
    receiver.answer(Answer(500, body=b"first try fails"))
    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)
    client.force_login(personas.org_admin)

    listing = client.get(
        reverse("admin:integrations_webhookdelivery_changelist"), {"state": "pending"}
    )
    assert [d.pk for d in listing.context["cl"].result_list] == [delivery.pk]
    page = client.get(reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk]))
    assert "HTTP 500: first try fails" in page.content.decode()

    client.post(
        reverse("admin:integrations_webhookdelivery_changelist"),
        {"action": "retry_now", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert [t.status_code for t in delivery.tries.all()] == [500, 200]


def test_admins_of_another_organization_see_none_of_it(
    personas: Personas,
    receiver: WebhookReceiver,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscription, _ = subscribe(personas.organization, receiver.url("/ours"))
    [delivery] = emit(django_capture_on_commit_callbacks, personas.organization)
    client.force_login(personas.other_org_admin)

    listing = client.get(reverse("admin:integrations_webhooksubscription_changelist"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == []
    assert receiver.url("/ours") not in listing.content.decode()
    page = client.get(
        reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])
    )
    assert page.status_code == 302  # "does not exist", back to the admin index
    deliveries = client.get(reverse("admin:integrations_webhookdelivery_changelist"))
    assert list(deliveries.context["cl"].result_list) == []
    other = client.get(reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk]))
    assert other.status_code == 302

    # Actions only ever see the admin's own rows.
    client.post(
        reverse("admin:integrations_webhooksubscription_changelist"),
        {"action": "send_test_ping", "_selected_action": [subscription.pk]},
    )
    assert len(receiver.received()) == 1  # the event above, no ping
