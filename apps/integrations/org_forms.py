"""The cards of the Integrations screen: one form per kind of organization
integration. Secret fields are never filled in again: empty keeps the stored secret."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from django import forms

from apps.integrations.models import OrgIntegration

KEEP = "Stored encrypted and never shown again; leave empty to keep the one saved."


class IntegrationForm(forms.Form):
    kind: ClassVar[str]
    # Model fields this form sets; the rest of its fields are secrets.
    setting_names: ClassVar[tuple[str, ...]] = ("access", "test_mailbox")

    access = forms.ChoiceField(
        label="Access level", choices=OrgIntegration.Access.choices, widget=forms.RadioSelect
    )
    test_mailbox = forms.EmailField(
        label="Test mailbox",
        help_text="A mailbox of the organization Convene reads to verify the integration.",
    )

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, stored: OrgIntegration | None = None
    ) -> None:
        initial = {name: getattr(stored, name) for name in self.setting_names} if stored else {}
        super().__init__(data, initial=initial, prefix=self.kind)
        self.stored = stored

    def settings_data(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.setting_names}

    def secrets_data(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in self.setting_names
        }

    def _require_secret(self, name: str, stored_key: str) -> None:
        stored = (self.stored.secrets or {}) if self.stored else {}
        if not self.cleaned_data.get(name) and not stored.get(stored_key):
            self.add_error(name, "Enter it: nothing is stored yet.")


class GoogleWorkspaceForm(IntegrationForm):
    kind = OrgIntegration.Kind.GOOGLE_WORKSPACE

    service_account_key = forms.CharField(
        label="Service account key (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="The key file of the service account, from the Google Cloud console. " + KEEP,
    )

    def clean_service_account_key(self) -> dict[str, Any] | None:
        text = self.cleaned_data["service_account_key"].strip()
        if not text:
            return None
        try:
            key = json.loads(text)
        except ValueError:
            raise forms.ValidationError(
                "This is not JSON: paste the whole key file, from { to }."
            ) from None
        missing = [
            name
            for name in ("type", "client_email", "client_id", "private_key", "token_uri")
            if not isinstance(key, dict) or not key.get(name)
        ]
        if missing or key.get("type") != "service_account":
            raise forms.ValidationError(
                "This is not a service account key (it lacks "
                + ", ".join(missing or ["type service_account"])
                + "). Create a JSON key for the service account and paste it here."
            )
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._require_secret("service_account_key", "service_account_key")
        return cleaned


class ExchangeOnlineForm(IntegrationForm):
    kind = OrgIntegration.Kind.EXCHANGE_ONLINE
    setting_names = ("access", "test_mailbox", "tenant_id", "client_id")

    tenant_id = forms.CharField(label="Directory (tenant) ID", max_length=100)
    client_id = forms.CharField(label="Application (client) ID", max_length=200)
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=KEEP,
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._require_secret("client_secret", "client_secret")
        return cleaned


class ExchangeOnPremForm(IntegrationForm):
    kind = OrgIntegration.Kind.EXCHANGE_ONPREM
    setting_names = ("access", "test_mailbox", "server_url", "username")

    server_url = forms.URLField(
        label="EWS URL",
        assume_scheme="https",
        help_text="For example https://mail.example.edu/EWS/Exchange.asmx",
    )
    username = forms.CharField(
        label="Service account username",
        max_length=254,
        help_text="DOMAIN\\user or user@domain; it needs the ApplicationImpersonation role.",
    )
    password = forms.CharField(
        label="Service account password",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=KEEP,
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._require_secret("password", "password")
        return cleaned


FORMS: dict[str, type[IntegrationForm]] = {
    form.kind: form for form in (GoogleWorkspaceForm, ExchangeOnlineForm, ExchangeOnPremForm)
}


class DisableForm(forms.Form):
    remove_events = forms.BooleanField(
        label="Also remove the appointments Convene added to people's calendars",
        required=False,
    )


class SchedulingMailboxForm(forms.Form):
    scheduling_mailbox = forms.EmailField(
        label="Scheduling assistant mailbox",
        required=False,
        help_text="Convene's emails and calendar invitations for this organization come "
        "from this address (e.g. the service account's mailbox). Empty: the site's sender.",
    )
