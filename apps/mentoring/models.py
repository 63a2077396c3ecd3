"""Mentoring groups (pairs and circles) and the meeting polls their mentors run.

A poll's life: draft (the mentor reviews Convene's proposed options) -> open (invitees
vote) -> closed (by its deadline or the mentor) -> finalized (one option became an
appointment) or canceled. Times are stored in UTC; dates and times of day the mentor
typed are kept in the mentor's zone (`time_zone`), so the proposal can be explained.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.accounts.models import Program
from apps.appointments.models import Appointment


class MentoringGroup(models.Model):
    """A pair (one mentor, one mentee) or a circle (mentors and several mentees)."""

    class Kind(models.TextChoices):
        PAIR = "pair", "Pair"
        CIRCLE = "circle", "Circle"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="mentoring_groups")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CIRCLE)
    is_active = models.BooleanField(default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="GroupMember", related_name="mentoring_groups"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["program", "name"]
        constraints = [
            models.UniqueConstraint(fields=["program", "name"], name="mentoring_group_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class GroupMember(models.Model):
    class Role(models.TextChoices):
        MENTOR = "mentor", "Mentor"
        MENTEE = "mentee", "Mentee"

    group = models.ForeignKey(MentoringGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="group_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MENTEE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "-role", "user__full_name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="group_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.group}"


class MeetingPoll(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        FINALIZED = "finalized", "Finalised"
        CANCELED = "canceled", "Canceled"

    group = models.ForeignKey(MentoringGroup, on_delete=models.CASCADE, related_name="polls")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_polls"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    location = models.CharField(max_length=255, blank=True)
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(15), MaxValueValidator(480)]
    )
    # What the mentor asked for, in their own zone at the time.
    time_zone = models.CharField(max_length=64)
    date_from = models.DateField()
    date_to = models.DateField()
    day_start = models.TimeField(null=True, blank=True)
    day_end = models.TimeField(null=True, blank=True)
    required = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How many invitees with connected calendars must be free; empty: all.",
    )
    deadline = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    final_option = models.ForeignKey(
        "PollOption", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "deadline"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(date_to__gte=models.F("date_from")),
                name="poll_dates_in_order",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.duration_minutes)

    @property
    def accepts_votes(self) -> bool:
        return self.status == self.Status.OPEN


class PollOption(models.Model):
    """One proposed meeting time."""

    poll = models.ForeignKey(MeetingPoll, on_delete=models.CASCADE, related_name="options")
    start = models.DateTimeField()
    end = models.DateTimeField()
    # Invitees with connected calendars who were free when the option was proposed.
    known_free = models.PositiveIntegerField(default=0)
    added_by_mentor = models.BooleanField(default=False)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "start"], name="poll_option_start_unique"),
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="poll_option_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} UTC"


class PollInvitation(models.Model):
    """An invitee of a poll and their personal link.

    Only the SHA-256 of the link's token is stored: a database leak gives no one a
    working link. Revoking sets `revoked_at`; a new link replaces the hash.
    """

    poll = models.ForeignKey(MeetingPoll, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="poll_invitations"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["poll", "invitee__full_name", "invitee__email"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "invitee"], name="poll_invitation_unique")
        ]

    def __str__(self) -> str:
        return f"{self.invitee} · {self.poll}"


class Vote(models.Model):
    class Answer(models.TextChoices):
        YES = "yes", "Yes"
        IF_NEED_BE = "if_need_be", "If need be"
        NO = "no", "No"

    option = models.ForeignKey(PollOption, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="poll_votes"
    )
    answer = models.CharField(max_length=12, choices=Answer.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["option", "voter"]
        constraints = [
            models.UniqueConstraint(fields=["option", "voter"], name="vote_unique_per_option")
        ]

    def __str__(self) -> str:
        return f"{self.voter}: {self.get_answer_display()}"
