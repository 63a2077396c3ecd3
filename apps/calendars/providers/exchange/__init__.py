"""Exchange on-premise through Exchange Web Services (EWS), on `exchangelib`."""

from apps.calendars.providers.exchange.provider import CONVENE_PROPERTY_SET, ExchangeProvider

__all__ = ["CONVENE_PROPERTY_SET", "ExchangeProvider"]
