from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.http import HttpRequest

if TYPE_CHECKING:
    from apps.accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind `login_required`: `user` is a real User."""

    user: User


def request_user(request: HttpRequest) -> User:
    """The signed-in user of a request that has passed an authentication check."""
    return cast("User", request.user)
