"""Template tags other apps' pages use to show mentoring without importing it
(the home page: `{% load mentoring %}{% mentoring_home user %}`)."""

from __future__ import annotations

from typing import Any

from django import template

from apps.accounts.models import User
from apps.mentoring.models import GroupMember
from apps.mentoring.selectors import groups_for, unanswered_poll_ids

register = template.Library()


@register.inclusion_tag("mentoring/home.html")
def mentoring_home(user: User) -> dict[str, Any]:
    """The person's mentoring groups and the polls waiting for them. Four queries."""
    if not user.is_authenticated:
        return {"groups": []}
    groups = groups_for(user=user)
    return {
        "groups": groups,
        "unanswered": unanswered_poll_ids(user=user) if groups else set(),
        "mentors_somewhere": any(
            m.user_id == user.pk and m.role == GroupMember.Role.MENTOR
            for g in groups
            for m in g.memberships.all()
        ),
    }
