"""Connecting Google and Microsoft calendars through django-allauth.

The calendar scopes are asked for only here, with `process=connect`, never at sign-in:
Google and Microsoft are ways to connect calendars, not ways to sign in to Convene (a
calendar connection must not become a second door into the account).

allauth hands over the tokens in its `social_account_added` / `social_account_updated`
signals. Convene tests them, takes them into the calendar account's encrypted
credentials, and lists the calendars; allauth's own token table stays empty
(`SOCIALACCOUNT_STORE_TOKENS = False`) because it would hold them in plain text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from allauth.socialaccount.signals import social_account_added, social_account_updated
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import CalendarService, calendar_noun
from apps.calendars.providers import provider_class
from apps.calendars.providers.base import ProviderError
from apps.calendars.providers.oauth import OAuthProvider
from apps.calendars.services import calendar_account_connect_oauth

OAUTH_SERVICES = (CalendarService.GOOGLE, CalendarService.MICROSOFT)
# The session remembers a connection that failed, so the settings page can say why
# and offer to try again.
RETRY_SESSION_KEY = "calendars_oauth_retry"


def is_configured(provider: str) -> bool:
    """Whether a client id and secret exist for `provider` (settings or admin)."""
    try:
        get_adapter().get_app(None, provider=provider)
    except SocialApp.DoesNotExist:
        return False
    return True


def calendar_scopes(provider: str) -> dict[str, str]:
    """What the service is asked for when a calendar is connected, and why: shown on
    the connect page before the person leaves for the consent screen."""
    cls = provider_class(provider)
    return cls.scopes if issubclass(cls, OAuthProvider) else {}


def connect_url(provider: str, *, next_url: str) -> str:
    """Where the connect button posts: allauth's login view for the provider, in
    connect mode, with the calendar scopes added to the sign-in ones."""
    query = {
        "process": "connect",
        "scope": ",".join(calendar_scopes(provider)),
        "next": next_url,
    }
    return f"{reverse(f'{provider}_login')}?{urlencode(query)}"


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(
        self, request: HttpRequest | None, provider: str, client_id: str | None = None
    ) -> SocialApp:
        app = super().get_app(request, provider, client_id=client_id)
        if provider == CalendarService.MICROSOFT:
            # Apps defined in the admin get the configured endpoints too.
            app.settings = {
                "login_url": settings.MICROSOFT_LOGIN_URL,
                "graph_url": settings.MICROSOFT_GRAPH_URL,
                **(app.settings or {}),
            }
        return app

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if sociallogin.state.get("process") == "connect" and request.user.is_authenticated:
            return
        messages.error(
            request,
            "Google and Microsoft accounts connect calendars; they do not sign you in. "
            "Sign in with your email address and password, then connect your calendar "
            "under Settings, Calendars.",
        )
        raise ImmediateHttpResponse(HttpResponseRedirect(reverse("account_login")))

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        label = CalendarService(provider.id).label if provider.id in OAUTH_SERVICES else "it"
        if error == "cancelled":
            text = f"Connecting {label} was cancelled; nothing was changed."
        else:
            text = (
                f"{label} did not complete the connection, so nothing was changed. "
                "Try again; if it keeps failing, tell your administrator."
            )
        if request.user.is_authenticated and provider.id in OAUTH_SERVICES:
            request.session[RETRY_SESSION_KEY] = {"provider": provider.id, "message": text}
            raise ImmediateHttpResponse(HttpResponseRedirect(reverse("calendar_settings")))


def _credentials(sociallogin: SocialLogin) -> dict[str, Any]:
    token = sociallogin.token
    expires_at = token.expires_at or timezone.now() + dt.timedelta(minutes=50)
    return {
        "access_token": token.token,
        "refresh_token": token.token_secret,
        "expires_at": expires_at.isoformat(),
    }


def _connected(request: HttpRequest, sociallogin: SocialLogin, *, added: bool) -> None:
    account = sociallogin.account
    if account.provider not in OAUTH_SERVICES or not request.user.is_authenticated:
        return
    if sociallogin.state.get("process") != "connect" or account.user_id != request.user.pk:
        return
    try:
        calendar = calendar_account_connect_oauth(
            owner=request.user,
            social_account=account,
            credentials=_credentials(sociallogin),
        )
    except (ValidationError, ProviderError) as error:
        text = error.message if isinstance(error, ProviderError) else " ".join(error.messages)
        if added:
            # Connected for nothing: leave no half-connected account behind.
            account.delete()
        request.session[RETRY_SESSION_KEY] = {"provider": account.provider, "message": text}
        return
    request.session.pop(RETRY_SESSION_KEY, None)
    messages.success(
        request, f"Your {calendar_noun(account.provider)} ({calendar.identity}) is connected."
    )


@receiver(social_account_added)
def _on_added(sender: object, request: HttpRequest, sociallogin: SocialLogin, **_: Any) -> None:
    _connected(request, sociallogin, added=True)


@receiver(social_account_updated)
def _on_updated(sender: object, request: HttpRequest, sociallogin: SocialLogin, **_: Any) -> None:
    _connected(request, sociallogin, added=False)
