from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # The first login leads through the short profile-completion flow.
        user = request.user
        if user.is_authenticated and user.profile_completed_at is None:
            return reverse("welcome")
        return super().get_login_redirect_url(request)
