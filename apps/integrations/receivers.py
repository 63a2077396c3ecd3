"""Signal receivers that turn other apps' events into webhook deliveries, and the
payloads they send (docs/webhooks.md shows each).

Imported by IntegrationsConfig.ready(). The signals are sent from on-commit callbacks
of the request or task that made the change, so a receiver must never raise: a
webhook problem is logged, and the booking or calendar change stands.

Payloads carry Convene's own data only: never anything read from someone's external
calendar (DESIGN.md, what is busy).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_migrate, post_save

from apps.accounts.models import Membership, Organization, User
from apps.appointments.models import Appointment
from apps.appointments.signals import appointment_changed
from apps.calendars.models import CalendarAccount
from apps.calendars.signals import calendar_account_connected, calendar_account_disconnected
from apps.integrations.models import OrgIntegration, WebhookSubscription
from apps.integrations.schedules import ensure_webhook_schedule
from apps.integrations.webhooks import conferencing_data, iso_utc, webhook_event_emit

logger = logging.getLogger(__name__)

Event = WebhookSubscription.Event
APPOINTMENT_EVENTS = {
    "created": Event.APPOINTMENT_CREATED,
    "updated": Event.APPOINTMENT_UPDATED,
    "status_changed": Event.APPOINTMENT_STATUS_CHANGED,
    "canceled": Event.APPOINTMENT_CANCELED,
    "conferencing_assigned": Event.CONFERENCING_ASSIGNED,
}


def person_data(user: User) -> dict[str, Any]:
    return {"sub": str(user.pk), "email": user.email, "name": user.full_name}


def appointment_data(appointment: Appointment) -> dict[str, Any]:
    """Assumes `program` and `host` are loaded and `attendees` prefetched. Not the
    notes: they are written for the people who meet, not for other systems."""
    return {
        "id": appointment.pk,
        "status": appointment.status,
        "start": iso_utc(appointment.start),
        "end": iso_utc(appointment.end),
        "title": appointment.title,
        "location": appointment.location,
        "conferencing": conferencing_data(appointment),
        "host": person_data(appointment.host),
        "attendees": [person_data(person) for person in appointment.attendees.all()],
        "program": {"id": appointment.program_id, "name": appointment.program.name},
    }


def conferencing_assigned_data(
    *, appointment: Appointment, provider_description: str = ""
) -> dict[str, Any]:
    """The data of `conferencing_assigned`: the host's calendar made a video meeting
    and its link is now on the appointment."""
    return {
        "appointment": appointment_data(appointment),
        "conferencing": {
            "provider_description": provider_description,
            "join_url": appointment.join_url,
        },
    }


def _emit(organizations: list[Organization], event_type: str, data: dict[str, Any]) -> None:
    for organization in organizations:
        try:
            webhook_event_emit(organization=organization, event_type=event_type, data=data)
        except Exception:
            logger.exception("Could not queue %s webhooks for %s", event_type, organization)


def _appointment(pk: int) -> Appointment | None:
    """The committed appointment, with what its payload needs."""
    return (
        Appointment.objects.select_related("program__organization", "host")
        .prefetch_related("attendees")
        .filter(pk=pk)
        .first()
    )


def on_appointment_changed(
    sender: Any,
    *,
    appointment: Appointment,
    change: str,
    actor: User | None = None,
    provider_description: str = "",
    **kwargs: Any,
) -> None:
    event_type = APPOINTMENT_EVENTS.get(change)
    if event_type is None:
        logger.warning("No webhook event for appointment change %r", change)
        return
    current = _appointment(appointment.pk)
    if current is None:
        return
    if event_type == Event.CONFERENCING_ASSIGNED:
        data = conferencing_assigned_data(
            appointment=current, provider_description=provider_description
        )
    else:
        data = {
            "appointment": appointment_data(current),
            "actor": {"sub": str(actor.pk), "email": actor.email} if actor else None,
        }
    _emit([current.program.organization], event_type, data)


def _member_organizations(owner_id: int) -> QuerySet[Organization]:
    """Organizations in which the person is a member of an active programme."""
    return Organization.objects.filter(
        programs__is_active=True, programs__memberships__user_id=owner_id
    ).distinct()


def _profile(owner: User, account: CalendarAccount, account_id: int) -> dict[str, Any]:
    return {
        "sub": str(owner.pk),
        "email": owner.email,
        "provider": account.provider,
        "profile_id": str(account_id),
        "profile_name": account.identity,
    }


def on_calendar_account_connected(sender: Any, *, account: CalendarAccount, **kwargs: Any) -> None:
    owner = account.owner
    data = {"profile": _profile(owner, account, account.pk)}
    _emit(list(_member_organizations(owner.pk)), Event.PROFILE_CONNECTED, data)


def on_calendar_account_disconnected(
    sender: Any,
    *,
    account: CalendarAccount,
    account_id: int,
    owner: User,
    reason: str = "",
    **kwargs: Any,
) -> None:
    # `account` may already be deleted: its id and owner come separately.
    data = {"profile": _profile(owner, account, account_id), "reason": reason}
    _emit(list(_member_organizations(owner.pk)), Event.PROFILE_DISCONNECTED, data)


def on_poll_finalized(sender: Any, *, poll: Any, appointment: Appointment, **kwargs: Any) -> None:
    current = _appointment(appointment.pk)
    if current is None:
        return
    data = {
        "poll": {"id": poll.pk, "title": str(getattr(poll, "title", ""))},
        "appointment": appointment_data(current),
    }
    _emit([current.program.organization], Event.POLL_FINALIZED, data)


def _connect_poll_finalized() -> None:
    # Meeting polls (apps.mentoring.signals) are written in parallel with webhooks;
    # until that module exists there is nothing to listen to. Only its absence is
    # tolerated: an error inside it must still surface.
    try:
        signals = importlib.import_module("apps.mentoring.signals")
    except ModuleNotFoundError as error:
        if error.name != "apps.mentoring.signals":
            raise
        return
    poll_finalized = getattr(signals, "poll_finalized", None)
    if poll_finalized is not None:
        poll_finalized.connect(on_poll_finalized, dispatch_uid="webhooks.poll_finalized")


def on_membership_saved(sender: Any, *, instance: Membership, created: bool, **kwargs: Any) -> None:
    """A new member may be covered by their organization's calendar integration."""
    if (
        not created
        or not OrgIntegration.objects.filter(
            organization_id=instance.program.organization_id, status=OrgIntegration.Status.ENABLED
        ).exists()
    ):
        return
    from apps.integrations.tasks import org_calendar_connect_member_task

    user_id = instance.user_id
    transaction.on_commit(lambda: org_calendar_connect_member_task.delay(user_id=user_id))


post_save.connect(on_membership_saved, sender=Membership, dispatch_uid="org_calendars.membership")
appointment_changed.connect(on_appointment_changed, dispatch_uid="webhooks.appointment_changed")
calendar_account_connected.connect(
    on_calendar_account_connected, dispatch_uid="webhooks.calendar_account_connected"
)
calendar_account_disconnected.connect(
    on_calendar_account_disconnected, dispatch_uid="webhooks.calendar_account_disconnected"
)
_connect_poll_finalized()
# Here rather than in apps.py, which imports this module from ready().
post_migrate.connect(
    ensure_webhook_schedule,
    sender=apps.get_app_config("integrations"),
    dispatch_uid="webhooks.ensure_schedule",
)
