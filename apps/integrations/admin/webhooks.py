"""Admin for outbound webhooks: an organization's subscriptions (the signing secret is
shown once, when created, and never again), a test ping, and every delivery with its
attempts. Writes go through apps.integrations.webhooks."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.accounts.admin import ScopedAdmin, ScopedInline
from apps.accounts.models import Organization
from apps.accounts.selectors import admin_organizations
from apps.accounts.types import request_user
from apps.integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from apps.integrations.webhooks import (
    webhook_delivery_retry,
    webhook_ping,
    webhook_subscription_create,
    webhook_subscription_update,
    webhook_url_check,
)


class WebhookSubscriptionForm(forms.ModelForm):
    # Declared so that an address typed without a scheme is https (Django 6's default).
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        widget=AdminURLFieldWidget,
        help_text=WebhookSubscription._meta.get_field("url").help_text,
    )
    events = forms.MultipleChoiceField(
        choices=WebhookSubscription.Event.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        # Not `secret`: it is not editable, and no form ever renders it.
        fields = ["organization", "url", "description", "events", "is_active"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        webhook_url_check(url)
        return url


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ScopedAdmin):
    form = WebhookSubscriptionForm
    list_display = ["url", "organization", "event_list", "is_active", "created_at"]
    list_filter = ["organization", "is_active"]
    search_fields = ["url", "description", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at"]
    actions = ["send_test_ping"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[WebhookSubscription]:
        return WebhookSubscription.objects.filter(
            organization__in=admin_organizations(user=request_user(request))
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Deliveries already made belong to the organization they were made for.
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    @admin.display(description="Events")
    def event_list(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.events)

    def save_model(
        self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            webhook_subscription_update(
                subscription=obj,
                url=data["url"],
                events=data["events"],
                description=data["description"],
                is_active=data["is_active"],
            )
            return
        organization: Organization = data["organization"]
        subscription, raw_secret = webhook_subscription_create(
            organization=organization,
            url=data["url"],
            events=data["events"],
            description=data["description"],
        )
        if not data["is_active"]:
            subscription.is_active = False
            subscription.save(update_fields=["is_active"])
        obj.pk, obj.created_at = subscription.pk, subscription.created_at
        self.message_user(
            request,
            f"Copy this signing secret now; it will not be shown again: {raw_secret}",
            messages.WARNING,
        )

    @admin.action(description="Send test ping")
    def send_test_ping(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        for subscription in queryset:
            attempt = webhook_ping(subscription=subscription)
            code = attempt.status_code
            if code is not None and 200 <= code < 300:
                self.message_user(
                    request,
                    f"Ping to {subscription.url}: HTTP {code} in {attempt.duration_ms} ms.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request, f"Ping to {subscription.url} failed: {attempt.error}", messages.ERROR
                )


class WebhookAttemptInline(ScopedInline):
    model = WebhookAttempt
    fields = readonly_fields = ("at", "status_code", "duration_ms", "error")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ScopedAdmin):
    list_display = [
        "event_type",
        "subscription",
        "organization",
        "state",
        "attempt_count",
        "created_at",
        "delivered_at",
        "next_attempt_at",
        "event_id",
    ]
    list_filter = ["state", "event_type", "subscription__organization"]
    search_fields = ["event_id", "event_type", "subscription__url"]
    list_select_related = ["subscription__organization"]
    fields = readonly_fields = (
        "subscription",
        "event_type",
        "event_id",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "pretty_payload",
    )
    inlines = [WebhookAttemptInline]
    actions = ["retry_now"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return WebhookDelivery.objects.filter(
            subscription__organization__in=admin_organizations(user=request_user(request))
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).annotate(try_count=Count("tries"))

    # Deliveries are a record: made by events, changed only by sending them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Organization", ordering="subscription__organization__name")
    def organization(self, obj: WebhookDelivery) -> Organization:
        return obj.subscription.organization

    @admin.display(description="Attempts", ordering="try_count")
    def attempt_count(self, obj: Any) -> int:
        return int(obj.try_count)

    @admin.display(description="Payload")
    def pretty_payload(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        sent = delivered = 0
        for delivery in queryset:
            result = webhook_delivery_retry(delivery=delivery)
            if result is None:
                continue
            sent += 1
            delivered += result.state == WebhookDelivery.State.DELIVERED
        skipped = queryset.count() - sent
        note = f" ({skipped} already delivered or being sent)" if skipped else ""
        level = messages.SUCCESS if delivered == sent else messages.WARNING
        self.message_user(request, f"Delivered {delivered} of {sent} sent{note}.", level)
