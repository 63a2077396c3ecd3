"""The provider registry: an explicit dict from key to class, no import magic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.calendars.providers.base import CalendarProvider
from apps.calendars.providers.caldav import CalDAVProvider, ICloudProvider
from apps.calendars.providers.exchange import ExchangeProvider
from apps.calendars.providers.google import GoogleProvider
from apps.calendars.providers.http import OutboundPolicy
from apps.calendars.providers.microsoft import MicrosoftProvider
from apps.calendars.providers.oauth import OAuthProvider

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
    policy = policy if policy is not None else outbound_policy()
    if issubclass(cls, OAuthProvider):
        from apps.calendars.throttle import mailbox_slot
        from apps.calendars.tokens import AccountTokens

        return cls(
            credentials,
            time_zone=account.owner.time_zone,
            policy=policy,
            tokens=AccountTokens(account),
            limiter=mailbox_slot,
        )
    return cls(credentials, time_zone=account.owner.time_zone, policy=policy)
