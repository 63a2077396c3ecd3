"""The provider registry: an explicit dict from key to class, no import magic."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from apps.calendars.providers.base import CalendarProvider
from apps.calendars.providers.caldav import CalDAVProvider, ICloudProvider
from apps.calendars.providers.exchange import ExchangeProvider
from apps.calendars.providers.google import GoogleProvider
from apps.calendars.providers.http import OutboundPolicy
from apps.calendars.providers.microsoft import MicrosoftProvider
from apps.calendars.providers.oauth import OAuthProvider, TokenSource, no_limit

if TYPE_CHECKING:
    from apps.calendars.models import CalendarAccount

PROVIDERS: dict[str, type[CalendarProvider]] = {
    CalDAVProvider.key: CalDAVProvider,
    ICloudProvider.key: ICloudProvider,
    ExchangeProvider.key: ExchangeProvider,
    GoogleProvider.key: GoogleProvider,
    MicrosoftProvider.key: MicrosoftProvider,
}


def provider_class(key: str) -> type[CalendarProvider]:
    try:
        return PROVIDERS[key]
    except KeyError:
        raise LookupError(f"No calendar provider is registered for {key!r}.") from None


def offers_integrated_conferencing(key: str) -> bool:
    """Whether calendars of this service can create their own video links."""
    provider = PROVIDERS.get(key)
    return provider is not None and provider.integrated_conferencing


def provider_for(
    account: CalendarAccount, *, policy: OutboundPolicy | None = None
) -> CalendarProvider:
    """A provider client for a stored account, with its decrypted credentials."""
    from apps.calendars.selectors import outbound_policy

    credentials = {
        **account.credentials,
        "server_url": account.server_url,
        "identity": account.identity,
    }
    cls = provider_class(account.provider)
    if issubclass(cls, OAuthProvider):
        # Google's and Microsoft's addresses come from settings, never from a user:
        # no outbound policy to look up.
        from apps.calendars.throttle import mailbox_slot

        limit = cls.mailbox_concurrency
        return cls(
            credentials,
            time_zone=account.owner.time_zone,
            tokens=_token_source(account),
            limiter=functools.partial(mailbox_slot, limit=limit) if limit else no_limit,
        )
    policy = policy if policy is not None else outbound_policy()
    return cls(credentials, time_zone=account.owner.time_zone, policy=policy)


def _token_source(account: CalendarAccount) -> TokenSource:
    """The person's own OAuth grant, or their organization's service account."""
    credentials = account.credentials
    if "service_account" in credentials:
        from apps.calendars.providers.workspace import WORKSPACE_SCOPES, ServiceAccountTokens

        return ServiceAccountTokens(
            credentials["service_account"],
            subject=credentials["subject"],
            scopes=WORKSPACE_SCOPES[credentials.get("access", "free_busy")],
        )
    if "client_secret" in credentials:
        from apps.calendars.providers.microsoft_app import AppOnlyTokens

        return AppOnlyTokens(
            tenant_id=credentials["tenant_id"],
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
        )
    from apps.calendars.tokens import AccountTokens

    return AccountTokens(account)
