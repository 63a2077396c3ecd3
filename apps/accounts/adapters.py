from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.email import email_enqueue


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request: HttpRequest) -> str:
        # The first login leads through the short profile-completion flow.
        user = request.user
        if user.is_authenticated and user.profile_completed_at is None:
            return reverse("welcome")
        return super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return reverse("welcome")

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        # Rendered here (the request is at hand), delivered by a Celery worker.
        email_enqueue(self.render_mail(template_prefix, email, context))
