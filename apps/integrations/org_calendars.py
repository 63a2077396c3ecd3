"""Organization-wide calendar authorization: configure, verify, enable and disable an
organization's integration, and connect its people automatically.

Enabling connects every participant of the organization's programmes whose email is on
its domains: a calendar account with source "organization", synced by the same engine
as everyone else's. A person's own connection of the same mailbox takes precedence.
Admins only ever hand Convene the organization's service account; nobody's own
credentials are used on their behalf.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Membership, Organization, OrganizationDomain, Program, Role, User
from apps.accounts.selectors import admin_organizations
from apps.calendars.models import CalendarAccount
from apps.calendars.providers.base import ProviderError
from apps.calendars.services import (
    calendar_account_connect_managed,
    calendar_accounts_remove_managed,
)
from apps.integrations.models import OrgIntegration, OrgIntegrationEvent

logger = logging.getLogger(__name__)

Kind = OrgIntegration.Kind
Action = OrgIntegrationEvent.Action
PROVIDER_OF = {
    Kind.GOOGLE_WORKSPACE: "google",
    Kind.EXCHANGE_ONLINE: "microsoft",
    Kind.EXCHANGE_ONPREM: "exchange",
}
# Both reach the same Exchange mailboxes: one organization uses one of them.
EXCLUSIVE = {Kind.EXCHANGE_ONLINE: Kind.EXCHANGE_ONPREM, Kind.EXCHANGE_ONPREM: Kind.EXCHANGE_ONLINE}


def _require_admin(organization: Organization, actor: User) -> None:
    if not admin_organizations(user=actor).filter(pk=organization.pk).exists():
        raise PermissionDenied("Only the organization's admins manage its integrations.")


def organization_scheduling_mailbox_set(
    *, organization: Organization, actor: User, mailbox: str
) -> None:
    """Name the address the organization's emails and invitations come from."""
    _require_admin(organization, actor)
    organization.scheduling_mailbox = mailbox
    organization.save(update_fields=["scheduling_mailbox"])


def member_credentials(integration: OrgIntegration, email: str) -> dict[str, Any]:
    """What the provider needs to reach `email`'s mailbox with the organization's
    service account."""
    secrets = integration.secrets or {}
    if integration.kind == Kind.GOOGLE_WORKSPACE:
        return {
            "service_account": secrets.get("service_account_key", {}),
            "subject": email,
            "access": integration.access,
        }
    if integration.kind == Kind.EXCHANGE_ONLINE:
        return {
            "tenant_id": integration.tenant_id,
            "client_id": integration.client_id,
            "client_secret": secrets.get("client_secret", ""),
            "mailbox": email,
            "access": integration.access,
        }
    return {
        "email": email,
        "username": integration.username,
        "password": secrets.get("password", ""),
        "impersonate": True,
    }


def _record(integration: OrgIntegration, action: str, actor: User | None, detail: str = "") -> None:
    OrgIntegrationEvent.objects.create(
        integration=integration, action=action, actor=actor, detail=detail[:2000]
    )


def org_integration_configure(
    *,
    organization: Organization,
    kind: str,
    actor: User,
    settings: dict[str, str],
    secrets: dict[str, Any],
) -> OrgIntegration:
    """Save the settings; a secret left empty keeps the one stored before."""
    _require_admin(organization, actor)
    integration = OrgIntegration.objects.filter(organization=organization, kind=kind).first()
    if integration is None:
        integration = OrgIntegration(organization=organization, kind=kind, secrets={})
    for name, value in settings.items():
        setattr(integration, name, value)
    kept = dict(integration.secrets or {})
    kept.update({name: value for name, value in secrets.items() if value})
    integration.secrets = kept
    if not integration.is_enabled:
        integration.status = OrgIntegration.Status.NOT_VERIFIED
    integration.save()
    _record(integration, Action.CONFIGURED, actor)
    return integration


def org_integration_verify(*, integration: OrgIntegration, actor: User) -> bool:
    """Read the test mailbox with the service account. On failure the reason, written
    for the admin, is the integration's status detail."""
    _require_admin(integration.organization, actor)
    from apps.calendars.providers import provider_for

    probe = CalendarAccount(
        owner=actor,
        provider=PROVIDER_OF[Kind(integration.kind)],
        source=CalendarAccount.Source.ORGANIZATION,
        identity=integration.test_mailbox,
        server_url=integration.server_url,
        credentials=member_credentials(integration, integration.test_mailbox),
    )
    client = provider_for(probe)
    try:
        client.test_connection()
        calendars = client.list_calendars()
    except ProviderError as error:
        integration.status = OrgIntegration.Status.FAILED
        integration.status_detail = error.message
        integration.save(update_fields=["status", "status_detail", "updated_at"])
        _record(integration, Action.VERIFY_FAILED, actor, error.message)
        return False
    finally:
        client.close()
    integration.verified_at = timezone.now()
    integration.status_detail = (
        f"Verified with {integration.test_mailbox}: {len(calendars)} calendar(s) readable."
    )
    integration.save(update_fields=["verified_at", "status_detail", "updated_at"])
    _record(integration, Action.VERIFIED, actor, integration.status_detail)
    return True


def org_integration_enable(*, integration: OrgIntegration, actor: User) -> None:
    """Turn a verified integration on and connect the organization's people."""
    _require_admin(integration.organization, actor)
    other = EXCLUSIVE.get(Kind(integration.kind))
    if (
        other
        and OrgIntegration.objects.filter(
            organization=integration.organization, kind=other, status=OrgIntegration.Status.ENABLED
        ).exists()
    ):
        raise ValidationError(
            f"{Kind(other).label} is enabled: disable it first. Exchange Online and "
            "Exchange on-premise cannot both be enabled."
        )
    if integration.verified_at is None or integration.status == OrgIntegration.Status.FAILED:
        raise ValidationError("Verify the integration before enabling it.")
    with transaction.atomic():
        integration.status = OrgIntegration.Status.ENABLED
        integration.enabled_at = timezone.now()
        integration.save(update_fields=["status", "enabled_at", "updated_at"])
        _record(integration, Action.ENABLED, actor)
        integration_id = integration.pk
        transaction.on_commit(lambda: _connect_all_soon(integration_id))


def org_integration_disable(
    *, integration: OrgIntegration, actor: User, remove_events: bool
) -> list[str]:
    """Turn the integration off and remove the accounts it connected (first removing
    Convene's events from those calendars, if asked). Returns the problems met."""
    _require_admin(integration.organization, actor)
    problems = calendar_accounts_remove_managed(
        organization_id=integration.organization_id,
        provider=PROVIDER_OF[Kind(integration.kind)],
        remove_events=remove_events,
    )
    integration.status = OrgIntegration.Status.DISABLED
    integration.save(update_fields=["status", "updated_at"])
    detail = "Convene's events removed." if remove_events else ""
    if problems:
        detail += f" {len(problems)} event(s) could not be removed: {problems[0]}"
    _record(integration, Action.DISABLED, actor, detail.strip())
    return problems


def org_members(organization: Organization) -> QuerySet[User]:
    """Participants of the organization's active programmes whose email is on one of
    its domains."""
    domains = OrganizationDomain.objects.filter(organization=organization).values_list(
        "domain", flat=True
    )
    on_domains = Q()
    for domain in domains:
        on_domains |= Q(email__iendswith=f"@{domain}")
    if not on_domains:
        return User.objects.none()
    return (
        User.objects.filter(
            on_domains,
            is_active=True,
            memberships__program__organization=organization,
            memberships__program__is_active=True,
        )
        .distinct()
        .order_by("pk")
    )


def org_calendar_connect(*, integration: OrgIntegration, user: User) -> CalendarAccount | None:
    """Connect one person through the integration, unless they connected the same
    mailbox themselves (their own connection takes precedence). Problems are recorded
    on the account, never raised: one missing mailbox must not stop the others."""
    provider = PROVIDER_OF[Kind(integration.kind)]
    if CalendarAccount.objects.filter(
        owner=user,
        source=CalendarAccount.Source.USER,
        provider=provider,
        identity__iexact=user.email,
    ).exists():
        return None
    try:
        return calendar_account_connect_managed(
            owner=user,
            provider=provider,
            identity=user.email,
            credentials=member_credentials(integration, user.email),
            organization_id=integration.organization_id,
            writes_allowed=integration.access == OrgIntegration.Access.CALENDAR,
            server_url=integration.server_url,
        )
    except ProviderError as error:
        logger.warning("Could not connect %s through %s: %s", user.pk, integration, error.message)
        return None


def enabled_integrations_for(*, user: User) -> list[OrgIntegration]:
    """The enabled integrations that cover `user`: of an organization whose programme
    they are in, with their email on its domains."""
    domain = user.email.rpartition("@")[2].lower()
    return list(
        OrgIntegration.objects.filter(
            status=OrgIntegration.Status.ENABLED,
            organization__domains__domain=domain,
            organization__programs__memberships__user=user,
            organization__programs__is_active=True,
        )
        .select_related("organization")
        .distinct()
    )


def _connect_all_soon(integration_id: int) -> None:
    from apps.integrations.tasks import org_calendars_connect_task

    org_calendars_connect_task.delay(integration_id=integration_id)


def org_calendars_connect(*, integration: OrgIntegration) -> int:
    """Connect everyone the integration covers who is not connected through it yet,
    and bring the accounts it connected before up to date (a new secret, another
    access level); returns how many were newly connected."""
    if not integration.is_enabled:
        return 0
    existing = CalendarAccount.objects.filter(
        source=CalendarAccount.Source.ORGANIZATION,
        organization=integration.organization,
        provider=PROVIDER_OF[Kind(integration.kind)],
    )
    writes_allowed = integration.access == OrgIntegration.Access.CALENDAR
    for account in existing:
        account.credentials = member_credentials(integration, account.identity)
        account.writes_allowed = writes_allowed
        account.server_url = integration.server_url
        account.save(update_fields=["credentials", "writes_allowed", "server_url"])
        if not writes_allowed:
            account.calendars.update(is_write_target=False)
    connected = set(existing.values_list("owner_id", flat=True))
    count = 0
    for user in org_members(integration.organization).exclude(pk__in=connected):
        if org_calendar_connect(integration=integration, user=user) is not None:
            count += 1
    return count


@dataclass(frozen=True)
class ProgramConnections:
    """How a programme's participants are connected."""

    program: Program
    participants: int
    individually: int
    through_organization: int

    @property
    def not_connected(self) -> int:
        return self.participants - self.individually - self.through_organization


def connection_overview(*, organization: Organization) -> list[ProgramConnections]:
    """Per programme: participants connected individually, through the organization
    (someone with both counts as individually: their own connection wins), or not at
    all. Three queries, however many people."""
    programs = list(organization.programs.filter(is_active=True).order_by("name"))
    members: dict[int, set[int]] = {p.pk: set() for p in programs}
    for program_id, user_id in Membership.objects.filter(
        program__in=programs, role=Role.PARTICIPANT
    ).values_list("program_id", "user_id"):
        members[program_id].add(user_id)
    everyone = set().union(*members.values()) if members else set()
    own: set[int] = set()
    managed: set[int] = set()
    for owner_id, source in (
        CalendarAccount.objects.filter(owner_id__in=everyone)
        .exclude(status=CalendarAccount.Status.DISCONNECTED)
        .values_list("owner_id", "source")
    ):
        (own if source == CalendarAccount.Source.USER else managed).add(owner_id)
    return [
        ProgramConnections(
            program=program,
            participants=len(members[program.pk]),
            individually=len(members[program.pk] & own),
            through_organization=len((members[program.pk] & managed) - own),
        )
        for program in programs
    ]


def accounts_in_error(*, organization: Organization) -> QuerySet[CalendarAccount]:
    """Calendar accounts of the organization's people that are not syncing."""
    return (
        CalendarAccount.objects.filter(
            owner__memberships__program__organization=organization,
            status__in=[CalendarAccount.Status.ERROR, CalendarAccount.Status.DISCONNECTED],
        )
        .select_related("owner")
        .distinct()
        .order_by("owner__email")
    )
