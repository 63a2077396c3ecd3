"""The Integrations screen: an organization's calendars connected once, by its admins.

One card per kind (Google Workspace, Exchange Online, Exchange on-premise): configure,
Integrate (save, verify against the service with the test mailbox, enable), a status
line, Disable, and the record of who did what. Organization admins see their own
organization; superusers every one; nobody else sees the screen at all.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from apps.accounts.models import Organization
from apps.accounts.selectors import admin_organizations
from apps.accounts.types import request_user
from apps.calendars.models import CalendarAccount, SyncRun
from apps.calendars.providers.microsoft_app import GRAPH_APP_PERMISSIONS, admin_consent_url
from apps.calendars.providers.workspace import delegation_scope_list
from apps.calendars.tasks import sync_account_task
from apps.integrations.models import OrgIntegration, OrgIntegrationEvent
from apps.integrations.org_calendars import (
    accounts_in_error,
    connection_overview,
    org_integration_configure,
    org_integration_disable,
    org_integration_enable,
    org_integration_verify,
    organization_scheduling_mailbox_set,
)
from apps.integrations.org_forms import FORMS, DisableForm, SchedulingMailboxForm

Status = OrgIntegration.Status


@admin.register(OrgIntegration)
class OrgIntegrationAdmin(admin.ModelAdmin):
    """Not a model list: the screen is per organization, and changes go through the
    services (verification, audit, connecting people), never a raw model form."""

    def _organizations(self, request: HttpRequest) -> Any:
        return admin_organizations(user=request_user(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and self._organizations(request).exists()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "",
                self.admin_site.admin_view(self.index_view),
                name="integrations_orgintegration_changelist",
            ),
            path(
                "organization/<int:organization_id>/",
                self.admin_site.admin_view(self.organization_view),
                name="integrations_organization",
            ),
        ]

    def index_view(self, request: HttpRequest) -> HttpResponse:
        organizations = list(self._organizations(request).prefetch_related("calendar_integrations"))
        if not organizations:
            raise PermissionDenied
        if len(organizations) == 1:
            return redirect("admin:integrations_organization", organizations[0].pk)
        return TemplateResponse(
            request,
            "integrations/admin/index.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Calendar integrations",
                "organizations": organizations,
            },
        )

    def organization_view(self, request: HttpRequest, organization_id: int) -> HttpResponse:
        organization = get_object_or_404(self._organizations(request), pk=organization_id)
        stored = {i.kind: i for i in organization.calendar_integrations.all()}
        bound_kind = request.POST.get("kind") if request.method == "POST" else None
        action = request.POST.get("action", "")
        forms = {
            kind: form_class(
                request.POST if kind == bound_kind and action == "integrate" else None,
                stored=stored.get(kind),
            )
            for kind, form_class in FORMS.items()
        }
        mailbox_form = SchedulingMailboxForm(
            request.POST if action == "mailbox" else None,
            initial={"scheduling_mailbox": organization.scheduling_mailbox},
        )
        if request.method == "POST":
            done = self._act(request, organization, action, bound_kind, forms, mailbox_form)
            if done:
                return redirect("admin:integrations_organization", organization.pk)
        return TemplateResponse(
            request,
            "integrations/admin/organization.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Calendar integrations of {organization.name}",
                "organization": organization,
                "cards": [
                    self._card(organization, kind, forms[kind], stored.get(kind)) for kind in FORMS
                ],
                "mailbox_form": mailbox_form,
                "disable_form": DisableForm(),
                "overview": connection_overview(organization=organization),
                "errors": accounts_in_error(organization=organization)[:100],
                "events": OrgIntegrationEvent.objects.filter(
                    integration__organization=organization
                ).select_related("integration", "actor")[:30],
            },
        )

    def _card(
        self,
        organization: Organization,
        kind: str,
        form: Any,
        integration: OrgIntegration | None,
    ) -> dict[str, Any]:
        card: dict[str, Any] = {
            "kind": kind,
            "label": OrgIntegration.Kind(kind).label,
            "form": form,
            "integration": integration,
            "connected": CalendarAccount.objects.filter(
                source=CalendarAccount.Source.ORGANIZATION, organization=organization
            ).count()
            if integration and integration.is_enabled
            else 0,
        }
        if kind == OrgIntegration.Kind.GOOGLE_WORKSPACE:
            key = (integration.secrets or {}).get("service_account_key", {}) if integration else {}
            card["client_id"] = key.get("client_id", "")
            # Both lists: the admin grants the one for the access level they choose.
            card["scopes"] = [
                (value, label.split(":")[0], delegation_scope_list(value))
                for value, label in OrgIntegration.Access.choices
            ]
        if kind == OrgIntegration.Kind.EXCHANGE_ONLINE:
            card["permissions"] = [
                (label.split(":")[0], ", ".join(GRAPH_APP_PERMISSIONS[value]))
                for value, label in OrgIntegration.Access.choices
            ]
        if kind == OrgIntegration.Kind.EXCHANGE_ONLINE and integration and integration.client_id:
            # Microsoft sends the admin back to this screen after consenting.
            back = settings.SITE_URL + reverse(
                "admin:integrations_organization", args=[organization.pk]
            )
            card["consent_url"] = admin_consent_url(
                integration.tenant_id, integration.client_id, back
            )
        return card

    def _act(
        self,
        request: HttpRequest,
        organization: Organization,
        action: str,
        kind: str | None,
        forms: dict[str, Any],
        mailbox_form: SchedulingMailboxForm,
    ) -> bool:
        actor = request_user(request)
        if action == "sync_now":
            account = (
                accounts_in_error(organization=organization)
                .filter(pk=request.POST.get("account", "0") or "0")
                .first()
            )
            if account is not None:
                sync_account_task.delay(account_id=account.pk, trigger=SyncRun.Trigger.MANUAL)
                messages.success(request, f"Queued a sync of {account}.")
            return True
        if action == "mailbox":
            if not mailbox_form.is_valid():
                return False
            organization_scheduling_mailbox_set(
                organization=organization,
                actor=actor,
                mailbox=mailbox_form.cleaned_data["scheduling_mailbox"],
            )
            messages.success(request, "The scheduling assistant mailbox is saved.")
            return True
        if kind not in FORMS:
            messages.error(request, "Choose one of the integrations shown.")
            return True
        if action == "disable":
            integration = organization.calendar_integrations.filter(kind=kind).first()
            if integration is None:
                return True
            disable = DisableForm(request.POST)
            disable.is_valid()
            problems = org_integration_disable(
                integration=integration,
                actor=actor,
                remove_events=disable.cleaned_data.get("remove_events", False),
            )
            messages.success(request, f"{integration.get_kind_display()} is disabled.")
            if problems:
                messages.warning(request, f"Some events could not be removed: {problems[0]}")
            return True
        form = forms[kind]
        if action != "integrate" or not form.is_valid():
            return False
        integration = org_integration_configure(
            organization=organization,
            kind=kind,
            actor=actor,
            settings=form.settings_data(),
            secrets=form.secrets_data(),
        )
        if not org_integration_verify(integration=integration, actor=actor):
            messages.error(
                request,
                f"{integration.get_kind_display()} could not be verified: "
                f"{integration.status_detail}",
            )
            return True
        try:
            org_integration_enable(integration=integration, actor=actor)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return True
        messages.success(
            request,
            f"{integration.get_kind_display()} is enabled: {integration.status_detail} "
            "Participants on the organization's domains are being connected.",
        )
        return True
