"""Polls, for their mentors and signed-in invitees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.models import User
from apps.accounts.types import AuthenticatedHttpRequest
from apps.mentoring import services
from apps.mentoring.forms import (
    FinalizeForm,
    OptionAddForm,
    PollCreateForm,
    ReopenForm,
    VoteForm,
    default_dates,
    option_label,
)
from apps.mentoring.models import GroupMember, MeetingPoll, MentoringGroup, PollInvitation
from apps.mentoring.selectors import (
    PollGrid,
    poll_grid,
    polls_for_member,
    role_in,
)
from apps.mentoring.views.common import error_text, status_note

Status = MeetingPoll.Status


@login_required
def poll_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    groups = MentoringGroup.objects.filter(
        memberships__user=request.user,
        memberships__role=GroupMember.Role.MENTOR,
        is_active=True,
    ).select_related("program")
    if not groups.exists():
        raise Http404("Only mentors create meeting polls.")
    first, last = default_dates()
    initial: dict[str, Any] = {"date_from": first, "date_to": last, "duration_minutes": 60}
    if group_id := request.GET.get("group", ""):
        initial["group"] = group_id if group_id.isdigit() else None
    form = PollCreateForm(request.POST or None, groups=groups, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            poll = services.poll_create(actor=request.user, **data)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for name, problems in error.message_dict.items():
                    form.add_error(name if name in form.fields else None, problems)
            else:
                form.add_error(None, error)
        else:
            count = poll.options.count()
            if count:
                messages.success(
                    request, f"Convene proposes {count} times. Review them, then publish."
                )
            else:
                messages.warning(
                    request,
                    "No time suits everyone in those days. Add times yourself below, or go "
                    "back and choose more days, other hours, or fewer people who must be free.",
                )
            return redirect("poll_detail", poll.pk)
    return render(request, "mentoring/poll_create.html", {"form": form})


# --- the poll page ---------------------------------------------------------------------------


@dataclass
class Cell:
    answer: str
    conflict: bool


def _grid_context(grid: PollGrid, viewer: User | None) -> dict[str, Any]:
    """Plain rows and columns for the template: options x invitees, and the heat row."""
    total = len(grid.invitations)
    best = grid.best_can_come
    columns = []
    for option in grid.options:
        summary = grid.summaries[option.pk]
        start, end = timezone.localtime(option.start), timezone.localtime(option.end)
        columns.append(
            {
                "option": option,
                "start": start,
                "end": end,
                "summary": summary,
                "ratio": f"{summary.can_come / total:.2f}" if total else "0",
                "best": best > 0 and summary.can_come == best,
                "is_final": option.pk == grid.poll.final_option_id,
            }
        )
    rows = []
    for invitation in grid.invitations:
        user = invitation.invitee
        rows.append(
            {
                "user": user,
                "is_you": viewer is not None and user.pk == viewer.pk,
                "status": grid.statuses.get(user.pk),
                "note": status_note(user, grid.statuses.get(user.pk)),
                "cells": [
                    Cell(
                        grid.answers.get((o.pk, user.pk), ""),
                        (o.pk, user.pk) in grid.conflicts,
                    )
                    for o in grid.options
                ],
            }
        )
    return {
        "columns": columns,
        # Best first, for the mentor reviewing a draft.
        "ranked": sorted(columns, key=lambda c: (-c["option"].known_free, c["start"])),
        "rows": rows,
        "total": total,
        "connected": grid.connected,
        "viewer_zone": viewer.time_zone if viewer is not None else "",
    }


def _vote_context(grid: PollGrid, voter: User, data: Any = None) -> dict[str, Any]:
    answers = {
        o.pk: grid.answers[(o.pk, voter.pk)]
        for o in grid.options
        if (o.pk, voter.pk) in grid.answers
    }
    form = VoteForm(data, options=grid.options, answers=answers)
    return {
        "vote_form": form,
        "vote_fields": [
            (form[f"option_{o.pk}"], (o.pk, voter.pk) in grid.conflicts) for o in grid.options
        ],
        "has_answered": bool(answers),
        "voter_zone": voter.time_zone,
    }


def _poll_for(request: AuthenticatedHttpRequest, pk: int) -> MeetingPoll:
    try:
        return polls_for_member(user=request.user, pk=pk)
    except MeetingPoll.DoesNotExist as error:
        raise Http404("No such poll.") from error


@login_required
def poll_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    poll = _poll_for(request, pk)
    return _render_poll(request, poll)


def _render_poll(
    request: AuthenticatedHttpRequest,
    poll: MeetingPoll,
    *,
    vote_data: Any = None,
    option_form: OptionAddForm | None = None,
    finalize_form: FinalizeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    grid = poll_grid(poll=poll)
    manages = role_in(poll.group, request.user) == GroupMember.Role.MENTOR
    invitation = next((i for i in grid.invitations if i.invitee.pk == request.user.pk), None)
    context: dict[str, Any] = {
        "poll": poll,
        "grid": grid,
        "manages": manages,
        "invitation": invitation if invitation is not None and invitation.pk else None,
        **_grid_context(grid, request.user),
    }
    if context["invitation"] is not None and poll.status in (Status.OPEN, Status.CLOSED):
        context.update(_vote_context(grid, request.user, vote_data))
        context["vote_action"] = reverse("poll_vote", args=[poll.pk])
    if manages:
        invited = len(grid.invitations)
        choices = [
            (o.pk, f"{option_label(o)} · {grid.summaries[o.pk].can_come} of {invited} can come")
            for o in grid.options
        ]
        context["option_form"] = option_form or OptionAddForm()
        context["finalize_form"] = finalize_form or FinalizeForm(options=choices)
        context["reopen_form"] = ReopenForm()
    return render(request, "mentoring/poll_detail.html", context, status=status)


@login_required
@require_POST
def poll_vote(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    poll = _poll_for(request, pk)
    grid = poll_grid(poll=poll)
    form = VoteForm(request.POST, options=grid.options, answers={})
    if not form.is_valid():
        messages.error(request, "Answer every time with Yes, If need be or No.")
        return _render_poll(request, poll, vote_data=request.POST, status=400)
    try:
        services.poll_vote(poll=poll, voter=request.user, answers=form.answers())
    except PermissionDenied as error:
        raise Http404("No such poll.") from error
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request, "Your answers are saved. You can change them until the poll closes."
        )
    return redirect("poll_detail", pk)


def _mentor_action(
    request: AuthenticatedHttpRequest,
    pk: int,
    action: Callable[[MeetingPoll], object],
    done: str | Callable[[object], str],
) -> HttpResponse:
    poll = _poll_for(request, pk)
    try:
        result = action(poll)
    except PermissionDenied as error:
        raise Http404("No such poll.") from error
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, done if isinstance(done, str) else done(result))
    return redirect("poll_detail", pk)


@login_required
@require_POST
def poll_option_add(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    poll = _poll_for(request, pk)
    form = OptionAddForm(request.POST)
    if not form.is_valid():
        return _render_poll(request, poll, option_form=form, status=400)
    try:
        services.poll_option_add(poll=poll, actor=request.user, start=form.cleaned_data["start"])
    except PermissionDenied as error:
        raise Http404("No such poll.") from error
    except ValidationError as error:
        form.add_error("start", error)
        return _render_poll(request, poll, option_form=form, status=400)
    messages.success(request, "Option added.")
    return redirect("poll_detail", pk)


@login_required
@require_POST
def poll_option_remove(request: AuthenticatedHttpRequest, pk: int, option_id: int) -> HttpResponse:
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_option_remove(
            poll=poll, actor=request.user, option_id=option_id
        ),
        "Option removed.",
    )


@login_required
@require_POST
def poll_publish(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_publish(poll=poll, actor=request.user),
        "Published. Every invitee has an email with their personal link.",
    )


@login_required
@require_POST
def poll_close(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_close(poll=poll, actor=request.user),
        "The poll is closed. Choose the time below.",
    )


@login_required
@require_POST
def poll_reopen(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    form = ReopenForm(request.POST)
    deadline = form.cleaned_data["deadline"] if form.is_valid() else None
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_reopen(poll=poll, actor=request.user, deadline=deadline),
        "The poll is open again.",
    )


@login_required
@require_POST
def poll_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_cancel(poll=poll, actor=request.user),
        "The poll is canceled.",
    )


@login_required
@require_POST
def poll_remind(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    def done(count: object) -> str:
        return f"Reminded {count} invitee{'s' if count != 1 else ''} who had not answered."

    return _mentor_action(
        request, pk, lambda poll: services.poll_remind(poll=poll, actor=request.user), done
    )


def _invitation(poll: MeetingPoll, invitation_id: int) -> PollInvitation:
    invitation = poll.invitations.select_related("poll__group").filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


@login_required
@require_POST
def poll_link_revoke(
    request: AuthenticatedHttpRequest, pk: int, invitation_id: int
) -> HttpResponse:
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_link_revoke(
            invitation=_invitation(poll, invitation_id), actor=request.user
        ),
        "The personal link no longer works.",
    )


@login_required
@require_POST
def poll_link_renew(request: AuthenticatedHttpRequest, pk: int, invitation_id: int) -> HttpResponse:
    return _mentor_action(
        request,
        pk,
        lambda poll: services.poll_link_renew(
            invitation=_invitation(poll, invitation_id), actor=request.user
        ),
        "A new personal link is on its way; the old one no longer works.",
    )


@login_required
@require_POST
def poll_finalize(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    poll = _poll_for(request, pk)
    option_ids = list(poll.options.values_list("pk", flat=True))
    form = FinalizeForm(request.POST, options=[(pk_, "") for pk_ in option_ids])
    if not form.is_valid():
        messages.error(request, "Choose one of the times first.")
        return redirect("poll_detail", pk)
    try:
        appointment = services.poll_finalize(
            poll=poll, actor=request.user, option_id=form.cleaned_data["option"]
        )
    except PermissionDenied as error:
        raise Http404("No such poll.") from error
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("poll_detail", pk)
    messages.success(
        request,
        "The meeting is scheduled: it is being written into everyone's calendars, and "
        "the invitees are told which time won.",
    )
    return redirect("appointment_detail", appointment.pk)


# --- the personal link ----------------------------------------------------------------------
