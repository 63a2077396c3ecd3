from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.accounts.models import Organization
from apps.calendars.crypto import EncryptedJSONField


class ApiKey(models.Model):
    """A key an integrator uses for the REST API, scoped to one organization.

    Shown once when created; only its SHA-256 is stored. `prefix` (the key's first
    characters) identifies it in lists and logs without revealing it.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, help_text="What it is for, e.g. “Career portal”.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization", "name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class WebhookSubscription(models.Model):
    """Where an organization wants events delivered. The secret signs every delivery
    (HMAC-SHA256); it is encrypted at rest and shown once."""

    class Event(models.TextChoices):
        PROFILE_CONNECTED = "profile_connected", "Calendar connected"
        PROFILE_DISCONNECTED = "profile_disconnected", "Calendar disconnected"
        APPOINTMENT_CREATED = "appointment.created", "Appointment created"
        APPOINTMENT_UPDATED = "appointment.updated", "Appointment updated"
        APPOINTMENT_STATUS_CHANGED = "appointment.status_changed", "Appointment status changed"
        APPOINTMENT_CANCELED = "appointment.canceled", "Appointment canceled"
        POLL_FINALIZED = "poll.finalized", "Meeting poll finalized"
        CONFERENCING_ASSIGNED = "conferencing_assigned", "Conferencing link assigned"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    url = models.URLField(max_length=500, help_text="An https address that accepts POSTs.")
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The events to deliver.")
    secret = EncryptedJSONField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "url"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one subscription. `event_id` is the same on every retry, so the
    receiver can deduplicate."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed permanently"

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=50)
    payload = models.JSONField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error[:40]}"


class OrgIntegration(models.Model):
    """An organization's calendars connected once, with a service account: Google
    Workspace (domain-wide delegation), Exchange Online (Graph application
    permissions) or Exchange on-premise (EWS impersonation).

    Settings an admin may see again are plain fields; secrets (the service account key,
    the client secret, the password) are in `secrets`, encrypted, never shown again.
    """

    class Kind(models.TextChoices):
        GOOGLE_WORKSPACE = "google_workspace", "Google Workspace"
        EXCHANGE_ONLINE = "exchange_online", "Exchange Online"
        EXCHANGE_ONPREM = "exchange_onprem", "Exchange on-premise"

    class Access(models.TextChoices):
        FREE_BUSY = "free_busy", "Free/busy only: Convene reads availability, writes nothing"
        CALENDAR = "calendar", "Calendar access: busy time synced and appointments written"

    class Status(models.TextChoices):
        NOT_VERIFIED = "not_verified", "Configured, not verified"
        FAILED = "failed", "Verification failed"
        ENABLED = "enabled", "Enabled"
        DISABLED = "disabled", "Disabled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="calendar_integrations"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.FREE_BUSY)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_VERIFIED)
    status_detail = models.TextField(blank=True)
    test_mailbox = models.EmailField(
        help_text="A mailbox of the organization Convene reads to verify the integration "
        "(for Google Workspace, the admin who set up delegation)."
    )
    tenant_id = models.CharField(max_length=100, blank=True)
    client_id = models.CharField(max_length=200, blank=True)
    server_url = models.URLField(max_length=500, blank=True)
    username = models.CharField(max_length=254, blank=True)
    secrets = EncryptedJSONField()
    verified_at = models.DateTimeField(null=True, blank=True)
    enabled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "kind"]
        verbose_name = "calendar integration"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind"], name="org_integration_one_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.organization}"

    @property
    def is_enabled(self) -> bool:
        return self.status == self.Status.ENABLED


class OrgIntegrationEvent(models.Model):
    """Who enabled, disabled, reconfigured or failed to verify an integration, and when."""

    class Action(models.TextChoices):
        CONFIGURED = "configured", "Configured"
        VERIFIED = "verified", "Verified"
        VERIFY_FAILED = "verify_failed", "Verification failed"
        ENABLED = "enabled", "Enabled"
        DISABLED = "disabled", "Disabled"

    integration = models.ForeignKey(OrgIntegration, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    detail = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.integration} at {self.at:%Y-%m-%d %H:%M}"
