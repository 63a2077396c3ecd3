"""Personal links: voting without a password, for one poll only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.mentoring import services
from apps.mentoring.models import PollInvitation
from apps.mentoring.selectors import (
    invitation_for_token,
    poll_get,
    poll_grid,
)
from apps.mentoring.views.common import error_text
from apps.mentoring.views.polls import _grid_context, _vote_context


def _link_invitation(poll_id: int, token: str) -> PollInvitation:
    try:
        return invitation_for_token(poll_id=poll_id, token=token)
    except PollInvitation.DoesNotExist as error:
        raise Http404("This link does not work (any more).") from error


def _private(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: keep it out of other sites' logs and of shared caches.
    # Not "no-referrer": browsers then send "Origin: null" with the vote form's POST,
    # and Django's CSRF check rightly refuses it.
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


def poll_link(request: HttpRequest, pk: int, token: str) -> HttpResponse:
    """The poll for one invitee, without a password: only this poll, only their votes."""
    invitation = _link_invitation(pk, token)
    invitee = invitation.invitee
    poll = poll_get(pk=invitation.poll_id)
    with timezone.override(invitee.zone):
        grid = poll_grid(poll=poll)
        data = request.POST if request.method == "POST" else None
        context = _vote_context(grid, invitee, data)
        if data is not None and context["vote_form"].is_valid():
            try:
                services.poll_vote(poll=poll, voter=invitee, answers=context["vote_form"].answers())
            except ValidationError as error:
                messages.error(request, error_text(error))
            else:
                messages.success(
                    request, "Your answers are saved. You can change them until the poll closes."
                )
            return _private(redirect("poll_link", pk, token))
        context.update(
            {
                "poll": poll,
                "grid": grid,
                "invitee": invitee,
                "vote_action": request.path,
                "revoke_action": reverse("poll_link_self_revoke", args=[pk, token]),
                **_grid_context(grid, invitee),
            }
        )
        response = render(
            request, "mentoring/poll_link.html", context, status=400 if data is not None else 200
        )
    return _private(response)


@require_POST
def poll_link_self_revoke(request: HttpRequest, pk: int, token: str) -> HttpResponse:
    invitation = _link_invitation(pk, token)
    services.poll_link_revoke(invitation=invitation, actor=invitation.invitee)
    return _private(render(request, "mentoring/link_revoked.html", {"poll": invitation.poll}))
