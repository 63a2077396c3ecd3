from __future__ import annotations

import datetime as dt
import zoneinfo
from email.utils import formataddr
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.accounts.timezones import validate_time_zone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person. Email is the login; times are shown in `time_zone`."""

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    profile_completed_at = models.DateTimeField(null=True, blank=True)
    managed_organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="admins",
        help_text="Staff users linked to an organization administer only its data.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[assignment,misc]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def email_domain(self) -> str:
        return self.email.rsplit("@", 1)[-1].lower()


class Organization(models.Model):
    """A university, company or association running programmes on Convene."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    scheduling_mailbox = models.EmailField(
        blank=True,
        help_text="The scheduling assistant: the address Convene's emails and calendar "
        "invitations for this organization come from (e.g. the service account's "
        "mailbox). Empty: the site's default sender.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def sender(self) -> str:
        """The From address of this organization's emails and invitations."""
        if not self.scheduling_mailbox:
            return settings.DEFAULT_FROM_EMAIL
        return formataddr((f"{self.name} scheduling", self.scheduling_mailbox))


class OrganizationDomain(models.Model):
    """An email domain the organization owns: its people are recognised by it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(
        max_length=253,
        unique=True,
        validators=[
            RegexValidator(
                r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
                "Enter a domain name like example.edu, without @ or spaces.",
            )
        ],
    )

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = self.domain.strip().lower().lstrip("@")
        super().save(*args, **kwargs)


class CalendarService(models.TextChoices):
    GOOGLE = "google", "Google Calendar"
    MICROSOFT = "microsoft", "Microsoft 365 / Outlook.com"
    ICLOUD = "icloud", "iCloud"
    CALDAV = "caldav", "CalDAV"
    EXCHANGE = "exchange", "Exchange (on-premise)"


def calendar_noun(service: str) -> str:
    """ "Google calendar", "iCloud calendar": never "Google Calendar calendar"."""
    return CalendarService(service).label.removesuffix(" Calendar") + " calendar"


def all_calendar_services() -> list[str]:
    return list(CalendarService.values)


class Program(models.Model):
    """A programme (advising, career services, mentoring) and its scheduling rules."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="programs"
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)

    # Scheduling rules; day limits apply in each participant's own time zone.
    weekends_allowed = models.BooleanField(default=False)
    earliest_start = models.TimeField(default=dt.time(8, 0))
    latest_end = models.TimeField(default=dt.time(20, 0))
    minimum_notice = models.DurationField(
        default=dt.timedelta(hours=2), help_text="How long before its start a slot can be booked."
    )
    booking_horizon = models.DurationField(
        default=dt.timedelta(days=60), help_text="How far ahead slots can be booked."
    )
    slot_granularity_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(5), MaxValueValidator(240)],
        help_text="Slots start on multiples of this many minutes.",
    )
    buffer_before_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(240)],
        help_text="Free time a host keeps before each appointment.",
    )
    buffer_after_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(240)],
        help_text="Free time a host keeps after each appointment.",
    )
    tentative_is_busy = models.BooleanField(
        default=True, help_text="Tentative events in people's calendars block bookings."
    )

    # Calendar connections.
    allowed_calendar_services = models.JSONField(
        default=all_calendar_services,
        blank=True,
        help_text="Calendar services participants of this programme may connect.",
    )
    calendar_account_limit = models.PositiveIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many calendar accounts one participant may connect.",
    )
    sync_window_days = models.PositiveIntegerField(
        default=180,
        validators=[MinValueValidator(1), MaxValueValidator(730)],
        help_text="How many days ahead busy time is synced.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="program_slug_unique"),
            models.CheckConstraint(
                condition=models.Q(earliest_start__lt=models.F("latest_end")),
                name="program_day_starts_before_it_ends",
                violation_error_message="The earliest start must be before the latest end.",
            ),
            models.CheckConstraint(
                condition=models.Q(calendar_account_limit__gt=0, sync_window_days__gt=0),
                name="program_limits_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.earliest_start and self.latest_end and self.earliest_start >= self.latest_end:
            errors["latest_end"] = "The latest end must be after the earliest start."
        if self.minimum_notice is not None and self.minimum_notice < dt.timedelta(0):
            errors["minimum_notice"] = "The minimum notice cannot be negative."
        if self.booking_horizon is not None and self.booking_horizon <= dt.timedelta(0):
            errors["booking_horizon"] = "The booking horizon must be longer than zero."
        unknown = set(self.allowed_calendar_services or []) - set(CalendarService.values)
        if unknown:
            errors["allowed_calendar_services"] = f"Unknown services: {', '.join(sorted(unknown))}."
        if errors:
            raise ValidationError(errors)


class Role(models.TextChoices):
    PARTICIPANT = "participant", "Participant"
    MENTOR = "mentor", "Mentor"
    STAFF = "staff", "Staff"
    PROGRAM_ADMIN = "program_admin", "Program admin"


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PARTICIPANT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["program", "role", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "program", "role"], name="membership_unique_role"
            ),
        ]
        indexes = [models.Index(fields=["program", "role"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.program}"
