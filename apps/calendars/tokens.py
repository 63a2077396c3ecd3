"""OAuth tokens of Google and Microsoft accounts: refreshed before they expire, under a
row lock, with a rotated refresh token stored straight away.

allauth never refreshes tokens; Convene does. Two workers syncing the same account at
once would otherwise both spend the refresh token, and with rotation (Microsoft always
rotates) the loser's next refresh fails as if access had been revoked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.calendars.models import CalendarAccount
from apps.calendars.providers.base import AuthError
from apps.calendars.providers.oauth import OAuthApp, TokenGrant, token_refresh

# Refresh this long before the expiry the service announced: a token that expires
# while a sync pages through a calendar would cost a 401 and a retry.
REFRESH_MARGIN = dt.timedelta(minutes=5)


def oauth_app(provider: str) -> OAuthApp:
    """The client registered for `provider` (settings or the admin's Social
    applications) and the token endpoint it uses."""
    try:
        app = get_adapter().get_app(None, provider=provider)
    except SocialApp.DoesNotExist:
        raise AuthError(
            "Convene is not registered with this calendar service any more; ask an "
            "administrator to set up its client id and secret."
        ) from None
    if provider == "google":
        token_url = f"{settings.GOOGLE_OAUTH_URL}/token"
    else:
        tenant = app.settings.get("tenant", "common")
        token_url = f"{settings.MICROSOFT_LOGIN_URL}/{tenant}/oauth2/v2.0/token"
    return OAuthApp(client_id=app.client_id, secret=app.secret, token_url=token_url)


def credentials_from_grant(grant: TokenGrant, previous: dict[str, Any]) -> dict[str, Any]:
    return {
        **previous,
        "access_token": grant.access_token,
        # Google keeps the refresh token; Microsoft sends a new one every time.
        "refresh_token": grant.refresh_token or previous.get("refresh_token", ""),
        "expires_at": grant.expires_at.isoformat(),
        "scopes": sorted(grant.scopes) or previous.get("scopes", []),
    }


def _expires_at(credentials: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(credentials["expires_at"])
    except (KeyError, TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _fresh(credentials: dict[str, Any]) -> bool:
    return bool(credentials.get("access_token")) and (
        _expires_at(credentials) - REFRESH_MARGIN > timezone.now()
    )


class AccountTokens:
    """The `TokenSource` of a stored Google or Microsoft account."""

    def __init__(self, account: CalendarAccount) -> None:
        self.account_id = account.pk
        self.provider = account.provider
        self.provider_name = account.get_provider_display()
        self.credentials = dict(account.credentials)

    def access_token(self, *, force_refresh: bool = False) -> str:
        if not force_refresh and _fresh(self.credentials):
            return str(self.credentials["access_token"])
        refused = self.credentials.get("access_token") if force_refresh else None
        with transaction.atomic():
            account = CalendarAccount.objects.select_for_update().get(pk=self.account_id)
            stored = dict(account.credentials)
            # Another worker may have refreshed while this one waited for the lock.
            if _fresh(stored) and stored.get("access_token") != refused:
                self.credentials = stored
                return str(stored["access_token"])
            refresh_token = stored.get("refresh_token")
            if not refresh_token:
                raise AuthError(
                    f"{self.provider_name} gave Convene no lasting access. Reconnect the "
                    "calendar to continue."
                )
            scope = " ".join(stored.get("scopes", [])) if self.provider == "microsoft" else ""
            grant = token_refresh(
                oauth_app(self.provider),
                refresh_token,
                provider_name=self.provider_name,
                scope=scope,
            )
            account.credentials = credentials_from_grant(grant, stored)
            account.save(update_fields=["credentials"])
        self.credentials = dict(account.credentials)
        return grant.access_token
