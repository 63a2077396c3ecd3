from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Program
from apps.calendars.models import Calendar


class HostSettings(models.Model):
    """How a host (mentor, staff) takes bookings."""

    host = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="host_settings"
    )
    needs_approval = models.BooleanField(
        default=False,
        help_text="Bookings start as requests that the host approves or declines.",
    )
    default_duration_minutes = models.PositiveIntegerField(default=30)
    default_location = models.CharField(max_length=255, blank=True)
    video_meetings = models.BooleanField(
        default=False,
        help_text="New appointments get a video meeting from the host's calendar "
        "(Google Meet or Microsoft Teams).",
    )

    class Meta:
        verbose_name_plural = "host settings"

    def __str__(self) -> str:
        return f"Booking settings of {self.host}"


class Appointment(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"
        CANCELED = "canceled", "Canceled"
        STARTED = "started", "Started"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "No show"

    # Statuses whose time is taken: the database refuses overlaps among these.
    ACTIVE = (Status.REQUESTED, Status.APPROVED, Status.STARTED)
    # Nothing about these changes any more.
    FINAL = (Status.DECLINED, Status.CANCELED, Status.COMPLETED, Status.NO_SHOW)

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="appointments")
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="hosted_appointments"
    )
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="appointments", blank=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    title = models.CharField(max_length=200)
    location = models.CharField(max_length=255, blank=True)
    join_url = models.URLField(max_length=500, blank=True, help_text="Video call link.")
    integrated_conferencing = models.BooleanField(
        default=False,
        help_text="The host's calendar service creates the video meeting (Google Meet, "
        "Teams); its link is stored in the join URL once made.",
    )
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="booked_appointments",
    )
    booked_on_behalf = models.BooleanField(default=False)
    availability_overridden = models.BooleanField(
        default=False, help_text="Booked by staff at a time the host was not free."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="appointment_ends_after_start"
            ),
        ]
        # The PostgreSQL exclusion constraint against double booking is added by
        # migration 0002 (it needs btree_gist, and SQLite has no equivalent).
        indexes = [
            models.Index(fields=["host", "start"]),
            models.Index(fields=["status", "start"]),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.start:%Y-%m-%d %H:%M} UTC)"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def calendar_key(self) -> str:
        return f"appointment-{self.pk}"


class AppointmentTransition(models.Model):
    """Every change of status, with who and when."""

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20, choices=Appointment.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Appointment.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or 'new'} -> {self.to_status}"


class CalendarWrite(models.Model):
    """The transactional outbox: "bring calendar C up to date with appointment A".

    Written in the same transaction as the change; delivered by a task after commit
    and by a periodic sweep. Delivery writes the appointment's *current* state, so
    rows for one appointment and calendar can be delivered in any order.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed permanently"

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="calendar_writes"
    )
    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.appointment_id} -> calendar {self.calendar_id}: {self.state}"
