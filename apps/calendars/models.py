from __future__ import annotations

import datetime as dt
import ipaddress

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from apps.accounts.models import CalendarService, calendar_noun
from apps.calendars.crypto import EncryptedJSONField
from apps.calendars.providers.base import BusyKind

# An account whose last good sync is older than this is shown as stale: its busy
# blocks are still used, but availability reports them as possibly out of date.
STALE_AFTER = dt.timedelta(minutes=30)


class CalendarAccount(models.Model):
    """One connection of one person to one calendar service."""

    class Source(models.TextChoices):
        USER = "user", "Connected by the participant"
        ORGANIZATION = "organization", "Connected through the organization"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SYNCING = "syncing", "Syncing"
        ERROR = "error", "Error"
        DISCONNECTED = "disconnected", "Disconnected"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_accounts"
    )
    provider = models.CharField(max_length=20, choices=CalendarService.choices)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.USER)
    identity = models.CharField(
        max_length=254, help_text="Who the account is at the provider, e.g. the email address."
    )
    server_url = models.URLField(max_length=500, blank=True)
    credentials = EncryptedJSONField()
    social_account = models.ForeignKey(
        "socialaccount.SocialAccount",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="calendar_accounts",
    )
    # Connected through the organization's integration (source "organization").
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="calendar_accounts",
    )
    writes_allowed = models.BooleanField(
        default=True,
        help_text="Convene may add appointments to this account's calendars (off for "
        "organization integrations with free/busy access only).",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    status_detail = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disconnect_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["owner", "created_at"]
        indexes = [models.Index(fields=["status", "provider"])]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.identity}"

    @property
    def calendar_noun(self) -> str:
        return calendar_noun(self.provider)

    @property
    def is_stale(self) -> bool:
        if self.status == self.Status.DISCONNECTED:
            return False
        if self.last_synced_at is None:
            return True
        return timezone.now() - self.last_synced_at > STALE_AFTER


class Calendar(models.Model):
    """One calendar of a connected account."""

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="calendars")
    # Denormalised from the account: availability and write-target lookups by person.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendars"
    )
    external_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=255)
    color = models.CharField(max_length=32, blank=True)
    is_primary = models.BooleanField(default=False)
    is_read_only = models.BooleanField(default=False)
    is_deleted = models.BooleanField(default=False, help_text="No longer listed by the provider.")
    check_conflicts = models.BooleanField(
        default=False, help_text="Busy time in this calendar blocks bookings."
    )
    is_write_target = models.BooleanField(
        default=False, help_text="Appointments are added to this calendar."
    )
    sync_state = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["account", "-is_primary", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"], name="calendar_external_id_unique"
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(is_write_target=True),
                name="calendar_one_write_target_per_owner",
            ),
            models.CheckConstraint(
                condition=~models.Q(is_write_target=True, is_read_only=True),
                name="calendar_write_target_is_writable",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BusyBlock(models.Model):
    """One busy occurrence in a connected calendar.

    Never holds a title, description, location or attendees of the event: only when,
    and how busy. That is all anyone learns of someone else's calendar.
    """

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="busy_blocks")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="busy_blocks"
    )
    external_event_id = models.CharField(max_length=1024)
    instance_start = models.DateTimeField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    all_day = models.BooleanField(default=False)
    kind = models.CharField(
        max_length=20,
        choices=[(kind.value, kind.value.replace("_", " ").capitalize()) for kind in BusyKind],
        default=BusyKind.BUSY,
    )

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(
                fields=["calendar", "external_event_id", "instance_start"],
                name="busy_block_instance_unique",
            ),
        ]
        # Availability asks "what of these people's time overlaps this range".
        indexes = [models.Index(fields=["owner", "start", "end"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} UTC"


class WrittenEvent(models.Model):
    """An event Convene wrote into an external calendar, so it can be updated, checked
    and removed later. `key` is Convene's own name for it (e.g. an appointment)."""

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="written_events")
    key = models.CharField(max_length=200)
    uid = models.CharField(max_length=255)
    external_id = models.CharField(max_length=1024)
    etag = models.CharField(max_length=255, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["calendar", "key"], name="written_event_key_unique")
        ]

    def __str__(self) -> str:
        return self.key


class PushChannel(models.Model):
    """A Google push channel or Microsoft Graph subscription for one calendar: the
    service calls Convene when the calendar changes, and Convene syncs just it.

    Only a hash of the channel's secret token is kept: enough to check a notification,
    useless to anyone who reads the database.
    """

    calendar = models.OneToOneField(Calendar, on_delete=models.CASCADE, related_name="push_channel")
    channel_id = models.CharField(max_length=255, unique=True)
    resource_id = models.CharField(max_length=1024, blank=True)
    token_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notifications = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["expires_at"]

    def __str__(self) -> str:
        return f"Push channel for {self.calendar}"


class SyncRun(models.Model):
    """One sync of one calendar, for the admin and for benchmarks."""

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        NIGHTLY = "nightly", "Nightly full sync"
        CONNECT = "connect", "On connect"
        MANUAL = "manual", "Refresh / sync now"
        COMMAND = "command", "Command line"
        PUSH = "push", "Change notification"

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "OK"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped: already running"

    account = models.ForeignKey(CalendarAccount, on_delete=models.CASCADE, related_name="sync_runs")
    calendar = models.ForeignKey(
        Calendar, on_delete=models.CASCADE, null=True, blank=True, related_name="sync_runs"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    full = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    upserted = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["account", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} sync of {self.calendar or self.account}"

    @property
    def duration(self) -> dt.timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None


class OutboundAllowRule(models.Model):
    """A private server Convene may reach although it is not public: a host name or a
    CIDR network (e.g. a self-hosted CalDAV server on the campus network)."""

    value = models.CharField(
        max_length=253,
        unique=True,
        help_text="A host name (calendar.intranet.example.edu) or a network (10.20.0.0/16).",
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why it is allowed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value"]
        verbose_name = "allowed private server"

    def __str__(self) -> str:
        return self.value

    def clean(self) -> None:
        self.value = self.value.strip().lower().rstrip(".")
        try:
            ipaddress.ip_network(self.value, strict=False)
        except ValueError:
            if not self.value or " " in self.value or "/" in self.value or ":" in self.value:
                raise ValidationError(
                    {"value": "Enter a host name or a network such as 10.20.0.0/16."}
                ) from None
