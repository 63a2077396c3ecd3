"""Groups: the list, one group, and when the others are busy."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.accounts.types import AuthenticatedHttpRequest
from apps.mentoring.models import GroupMember, MentoringGroup
from apps.mentoring.selectors import (
    group_busy,
    group_get,
    groups_for,
    mentors_of,
    role_in,
    unanswered_poll_ids,
)
from apps.mentoring.views.common import status_note


@login_required
def group_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "mentoring/group_list.html",
        {
            "groups": groups_for(user=request.user),
            "unanswered": unanswered_poll_ids(user=request.user),
        },
    )


def _group(request: AuthenticatedHttpRequest, pk: int) -> MentoringGroup:
    try:
        return group_get(user=request.user, pk=pk)
    except MentoringGroup.DoesNotExist as error:
        raise Http404("No such group.") from error


@login_required
def group_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    group = _group(request, pk)
    return render(
        request,
        "mentoring/group_detail.html",
        {
            "group": group,
            "role": role_in(group, request.user),
            "mentors": mentors_of(group),
            "polls": group.polls.order_by("-created_at")[:20],
            "unanswered": unanswered_poll_ids(user=request.user),
        },
    )


@login_required
def group_availability(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """When the others are busy (never why), a week at a time, in the viewer's zone."""
    group = _group(request, pk)
    today = timezone.localdate()
    try:
        asked = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        asked = today
    week = asked - dt.timedelta(days=asked.weekday())
    this_week = today - dt.timedelta(days=today.weekday())
    week = max(week, this_week)
    days = [week + dt.timedelta(days=i) for i in range(7)]
    members = group_busy(
        group=group, viewer=request.user, days=days, zone=timezone.get_current_timezone()
    )
    role = role_in(group, request.user)
    return render(
        request,
        "mentoring/group_availability.html",
        {
            "group": group,
            "role": role,
            "days": days,
            "week": week,
            "previous_week": week - dt.timedelta(days=7) if week > this_week else None,
            "next_week": week + dt.timedelta(days=7),
            "rows": [
                {
                    "member": m,
                    "note": status_note(m.user, m.status),
                    "days": list(zip(days, m.days, strict=True)),
                }
                for m in members
            ],
            # A mentee books their mentor through the ordinary booking page.
            "bookable_mentors": mentors_of(group) if role == GroupMember.Role.MENTEE else [],
        },
    )


# --- creating a poll ----------------------------------------------------------------------
