"""Admin for appointments: filters, history, the outbox. Actions go through the same
services as the pages, so the admin cannot bypass the rules."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.admin import ScopedAdmin, ScopedInline
from apps.accounts.selectors import admin_programs
from apps.accounts.types import request_user
from apps.appointments.models import (
    Appointment,
    AppointmentTransition,
    CalendarWrite,
    HostSettings,
)
from apps.appointments.outbox import calendar_write_deliver
from apps.appointments.services import appointment_transition


class TransitionInline(ScopedInline):
    model = AppointmentTransition
    fields = readonly_fields = ("at", "from_status", "to_status", "actor", "note")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CalendarWriteInline(ScopedInline):
    model = CalendarWrite
    fields = readonly_fields = ("calendar", "state", "attempts", "next_attempt_at", "last_error")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Appointment)
class AppointmentAdmin(ScopedAdmin):
    list_display = [
        "title",
        "start",
        "end",
        "host",
        "program",
        "status",
        "booked_on_behalf",
        "availability_overridden",
    ]
    list_filter = [
        "status",
        "program__organization",
        "program",
        "availability_overridden",
        ("start", admin.DateFieldListFilter),
    ]
    search_fields = ["title", "host__email", "host__full_name", "attendees__email"]
    date_hierarchy = "start"
    list_select_related = ["host", "program"]
    readonly_fields = [
        "status",
        "booked_by",
        "booked_on_behalf",
        "availability_overridden",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["host", "attendees"]
    # A link typed without a scheme is https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [TransitionInline, CalendarWriteInline]
    actions = ["approve", "cancel"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Appointment]:
        return Appointment.objects.filter(program__in=admin_programs(user=request_user(request)))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Booking checks availability and notifies people: use "Book on behalf".
        return False

    def _transition(self, request: HttpRequest, queryset: QuerySet[Appointment], to: str) -> None:
        done, refused = 0, []
        for appointment in queryset:
            try:
                appointment_transition(appointment=appointment, actor=request_user(request), to=to)
                done += 1
            except (PermissionDenied, ValidationError) as error:
                refused.append(
                    f"{appointment}: {' '.join(getattr(error, 'messages', [str(error)]))}"
                )
        if done:
            self.message_user(request, f"{done} appointment(s) {to}.", messages.SUCCESS)
        for problem in refused:
            self.message_user(request, problem, messages.WARNING)

    @admin.action(description="Approve selected appointments")
    def approve(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        self._transition(request, queryset, Appointment.Status.APPROVED)

    @admin.action(description="Cancel selected appointments")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        self._transition(request, queryset, Appointment.Status.CANCELED)


@admin.register(CalendarWrite)
class CalendarWriteAdmin(ScopedAdmin):
    list_display = [
        "appointment",
        "calendar",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    ]
    list_filter = ["state"]
    search_fields = ["appointment__title", "calendar__name", "last_error"]
    list_select_related = ["appointment", "calendar"]
    readonly_fields = [
        "appointment",
        "calendar",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    actions = ["retry_now"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[CalendarWrite]:
        return CalendarWrite.objects.filter(
            appointment__program__in=admin_programs(user=request_user(request))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Error")
    def short_error(self, obj: CalendarWrite) -> str:
        return obj.last_error[:80]

    @admin.action(description="Retry now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[CalendarWrite]) -> None:
        ids = list(queryset.exclude(state=CalendarWrite.State.DONE).values_list("pk", flat=True))
        queryset.filter(pk__in=ids).update(
            state=CalendarWrite.State.PENDING, next_attempt_at=timezone.now(), attempts=0
        )
        delivered = sum(
            1
            for pk in ids
            if (write := calendar_write_deliver(write_id=pk)) and write.state == write.State.DONE
        )
        self.message_user(request, f"Delivered {delivered} of {len(ids)}.", messages.INFO)


@admin.register(HostSettings)
class HostSettingsAdmin(admin.ModelAdmin):
    list_display = ["host", "needs_approval", "default_duration_minutes"]
    search_fields = ["host__email"]
    autocomplete_fields = ["host"]
