from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.admin import ScopedAdmin
from apps.accounts.models import Organization
from apps.accounts.selectors import admin_organizations
from apps.accounts.types import request_user
from apps.integrations.models import ApiKey
from apps.integrations.services import api_key_create, api_key_revoke


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["organization", "name", "rate_limit_per_minute"]


@admin.register(ApiKey)
class ApiKeyAdmin(ScopedAdmin):
    form = ApiKeyForm
    list_display = ["name", "organization", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "organization__name"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return ApiKey.objects.filter(
            organization__in=admin_organizations(user=request_user(request))
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A key's organization never changes after it was issued.
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        organization: Organization = form.cleaned_data["organization"]
        key, raw = api_key_create(
            organization=organization, name=obj.name, created_by=request_user(request)
        )
        key.rate_limit_per_minute = obj.rate_limit_per_minute
        key.save(update_fields=["rate_limit_per_minute"])
        obj.pk = key.pk
        obj.prefix, obj.hashed_key = key.prefix, key.hashed_key
        self.message_user(
            request,
            f"Copy this API key now; it will not be shown again: {raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
