"""Booking and appointment pages. Thin: reads come from selectors, writes from services;
times are shown in the viewer's own time zone (the middleware activates it)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.models import Membership, Program, Role, User
from apps.accounts.types import AuthenticatedHttpRequest
from apps.appointments.availability import Interval
from apps.appointments.booking import appointment_book
from apps.appointments.forms import (
    AppointmentEditForm,
    BookingForm,
    HostSettingsForm,
    OnBehalfForm,
)
from apps.appointments.ics import appointment_ics
from apps.appointments.models import Appointment, CalendarWrite, HostSettings
from apps.appointments.selectors import (
    HOST_ROLES,
    appointment_for,
    appointments_for,
    bookable_hosts,
    host_availability,
    programs_managed_by,
)
from apps.appointments.services import (
    ALLOWED,
    SlotTakenError,
    appointment_edit,
    appointment_transition,
    host_settings_update,
    may_manage,
)

Status = Appointment.Status
DEFAULT_DURATION = 30
# Buttons, in the order they are shown.
ACTION_LABELS: dict[str, str] = {
    Status.APPROVED: "Approve",
    Status.DECLINED: "Decline",
    Status.STARTED: "Start",
    Status.COMPLETED: "Complete",
    Status.NO_SHOW: "No show",
    Status.CANCELED: "Cancel appointment",
}


@login_required
def book_index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request, "appointments/book_index.html", {"choices": bookable_hosts(user=request.user)}
    )


def _week_start(request: AuthenticatedHttpRequest) -> dt.date:
    today = timezone.localdate()
    try:
        asked = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        asked = today
    return asked - dt.timedelta(days=asked.weekday())


@login_required
def book_host(request: AuthenticatedHttpRequest, program_id: int, host_id: int) -> HttpResponse:
    program = get_object_or_404(
        Program,
        pk=program_id,
        is_active=True,
        memberships__user=request.user,
        memberships__role=Role.PARTICIPANT,
    )
    host = get_object_or_404(
        User, pk=host_id, memberships__program=program, memberships__role__in=HOST_ROLES
    )
    settings = HostSettings.objects.filter(host=host).first()
    duration = dt.timedelta(
        minutes=settings.default_duration_minutes if settings else DEFAULT_DURATION
    )
    form = BookingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        start = form.cleaned_data["start"]
        try:
            appointment = appointment_book(
                program=program,
                host=host,
                attendees=[request.user],
                start=start,
                end=start + duration,
                title=form.cleaned_data["title"],
                notes=form.cleaned_data["notes"],
                booked_by=request.user,
                location=settings.default_location if settings else "",
            )
        except SlotTakenError as error:
            messages.error(request, error.messages[0])
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
        else:
            if appointment.status == Status.REQUESTED:
                messages.success(request, f"Requested. {host} will confirm or decline it.")
            else:
                messages.success(request, "Booked. It is in your appointments.")
            return redirect("appointment_detail", appointment.pk)

    week = _week_start(request)
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(week, dt.time(0), zone)
    end = dt.datetime.combine(week + dt.timedelta(days=7), dt.time(0), zone)
    result = host_availability(
        program=program, host=host, periods=[Interval(start, end)], duration=duration
    )
    days: dict[dt.date, list[dt.datetime]] = defaultdict(list)
    for slot in result.slots(overlapping=True):
        days[timezone.localtime(slot.start).date()].append(slot.start)
    this_week = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    return render(
        request,
        "appointments/book_host.html",
        {
            "program": program,
            "host": host,
            "form": form,
            "duration_minutes": int(duration.total_seconds() // 60),
            # Weekend days without a single slot are left out: less to scroll past.
            "days": [
                (day, days.get(day, []))
                for day in (week + dt.timedelta(days=i) for i in range(7))
                if day.weekday() < 5 or days.get(day)
            ],
            "week": week,
            "previous_week": week - dt.timedelta(days=7) if week > this_week else None,
            "next_week": week + dt.timedelta(days=7),
            "host_status": result.member_statuses.get(str(host.pk)),
        },
    )


@login_required
def appointment_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    now = timezone.now()
    appointments = list(appointments_for(user=request.user))
    return render(
        request,
        "appointments/list.html",
        {
            "upcoming": [a for a in appointments if a.end >= now and not a.is_final],
            "past": [a for a in appointments if a.end < now or a.is_final][::-1][:50],
        },
    )


def _visible(request: AuthenticatedHttpRequest, pk: int) -> Appointment:
    try:
        return appointment_for(user=request.user, pk=pk)
    except Appointment.DoesNotExist as error:
        raise Http404("No such appointment.") from error


def _actions(appointment: Appointment, user: User) -> list[tuple[str, str]]:
    """The transitions this person may take now, as (status, button label)."""
    manages = may_manage(appointment, user)
    allowed = ALLOWED.get(appointment.status, set())
    if manages and appointment.status == Status.REQUESTED:
        allowed = allowed - {Status.CANCELED}  # declining says it all
    return [
        (to, label)
        for to, label in ACTION_LABELS.items()
        if to in allowed and (manages or to == Status.CANCELED)
    ]


@login_required
def appointment_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    appointment = _visible(request, pk)
    manages = may_manage(appointment, request.user)
    return render(
        request,
        "appointments/detail.html",
        {
            "appointment": appointment,
            "actions": _actions(appointment, request.user),
            "can_edit": manages and not appointment.is_final,
            "failed_writes": CalendarWrite.objects.filter(
                appointment=appointment, state=CalendarWrite.State.FAILED
            ).select_related("calendar")
            if manages
            else [],
        },
    )


@login_required
@require_POST
def appointment_transition_view(
    request: AuthenticatedHttpRequest, pk: int, to: str
) -> HttpResponse:
    appointment = _visible(request, pk)
    if to not in Status.values:
        raise Http404("Unknown status.")
    try:
        appointment_transition(appointment=appointment, actor=request.user, to=to)
    except PermissionDenied as error:
        raise Http404("No such appointment.") from error
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The appointment is {Status(to).label.lower()}.")
    return redirect("appointment_detail", pk)


@login_required
def appointment_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    appointment = _visible(request, pk)
    initial = {
        "start": timezone.localtime(appointment.start),
        "duration": int((appointment.end - appointment.start).total_seconds() // 60),
        "location": appointment.location,
        "join_url": appointment.join_url,
    }
    form = AppointmentEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            appointment_edit(
                appointment=appointment,
                actor=request.user,
                start=form.cleaned_data["start"],
                end=form.end,
                location=form.cleaned_data["location"],
                join_url=form.cleaned_data["join_url"],
            )
        except PermissionDenied as error:
            raise Http404("No such appointment.") from error
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Saved. Everyone's calendars are being updated.")
            return redirect("appointment_detail", pk)
    return render(request, "appointments/edit.html", {"form": form, "appointment": appointment})


@login_required
def appointment_ics_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    appointment = _visible(request, pk)
    response = HttpResponse(
        appointment_ics(appointment), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response


@login_required
def book_on_behalf(request: AuthenticatedHttpRequest) -> HttpResponse:
    managed = programs_managed_by(user=request.user)
    if not managed.exists():
        raise Http404("Only programme staff book on someone's behalf.")
    form = OnBehalfForm(request.POST or None, initial={"duration": DEFAULT_DURATION})
    members = Membership.objects.filter(program__in=managed)
    form.fields["program"].queryset = managed  # type: ignore[attr-defined]
    form.fields["host"].queryset = User.objects.filter(  # type: ignore[attr-defined]
        pk__in=members.filter(role__in=HOST_ROLES).values("user_id")
    )
    form.fields["attendee"].queryset = User.objects.filter(  # type: ignore[attr-defined]
        pk__in=members.filter(role=Role.PARTICIPANT).values("user_id")
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            appointment = appointment_book(
                program=data["program"],
                host=data["host"],
                attendees=[data["attendee"]],
                start=data["start"],
                end=form.end,
                title=data["title"],
                notes=data["notes"],
                location=data["location"],
                join_url=data["join_url"],
                booked_by=request.user,
                override_availability=data["override_availability"],
            )
        except SlotTakenError:
            form.add_error(
                None,
                f"{data['host']} is not free then (outside their hours, busy, or already "
                "booked). Tick “Book even if the host is not free at this time” to book "
                "anyway.",
            )
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, " ".join(getattr(error, "messages", [str(error)])))
        else:
            if appointment.availability_overridden:
                messages.warning(
                    request,
                    f"Booked, although {appointment.host} was not free then: their "
                    "availability was overridden.",
                )
            else:
                messages.success(request, "Booked.")
            return redirect("appointment_detail", appointment.pk)
    return render(request, "appointments/on_behalf.html", {"form": form})


@login_required
def host_settings_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    hosts = Membership.objects.filter(user=request.user, role__in=HOST_ROLES).exists()
    if not hosts:
        raise Http404("Only hosts have booking settings.")
    current = HostSettings.objects.filter(host=request.user).first()
    form = HostSettingsForm(
        request.POST or None,
        initial={
            "needs_approval": current.needs_approval if current else False,
            "video_meetings": current.video_meetings if current else False,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            host_settings_update(
                host=request.user,
                needs_approval=form.cleaned_data["needs_approval"],
                video_meetings=form.cleaned_data["video_meetings"],
            )
        except ValidationError as error:
            form.add_error("video_meetings", error)
        else:
            messages.success(request, "Your booking settings are saved.")
            return redirect("host_settings")
    return render(request, "appointments/host_settings.html", {"form": form})
