from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.accounts.forms import ProfileForm
from apps.accounts.models import Role
from apps.accounts.selectors import user_memberships
from apps.accounts.services import user_update_profile
from apps.accounts.timezones import time_zone_names
from apps.accounts.types import AuthenticatedHttpRequest


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "accounts/landing.html")
    memberships = list(user_memberships(user=request.user))
    return render(
        request,
        "accounts/home.html",
        {
            "memberships": memberships,
            "is_participant": any(m.role == Role.PARTICIPANT for m in memberships),
            "hosts": any(m.role in (Role.MENTOR, Role.STAFF) for m in memberships),
            "has_calendar": request.user.calendars.filter(is_deleted=False).exists(),
        },
    )


def _profile_form(request: AuthenticatedHttpRequest) -> ProfileForm:
    user = request.user
    if request.method == "POST":
        return ProfileForm(request.POST)
    return ProfileForm(initial={"full_name": user.full_name, "time_zone": user.time_zone})


@login_required
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = _profile_form(request)
    if request.method == "POST" and form.is_valid():
        user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, "Your profile is saved.")
        return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form, "time_zones": time_zone_names()})


@login_required
def welcome(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The profile-completion flow shown after the first login."""
    form = _profile_form(request)
    if request.method == "POST" and form.is_valid():
        user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, "Your profile is complete.")
        # Next, and last: the (skippable) calendar step.
        return redirect("welcome_calendar")
    return render(
        request,
        "accounts/welcome.html",
        {"form": form, "time_zones": time_zone_names(), "step": 1},
    )


@login_required
def settings_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    memberships = list(user_memberships(user=request.user))
    return render(
        request,
        "accounts/settings.html",
        {
            "memberships": memberships,
            "hosts": any(m.role in (Role.MENTOR, Role.STAFF) for m in memberships),
            "manages": any(m.role in (Role.STAFF, Role.PROGRAM_ADMIN) for m in memberships),
        },
    )
