"""Fixtures: the fake Google and Microsoft services, served over real HTTP and wired
into Convene's settings the way an operator points an install at other endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.google.views import GoogleOAuth2Adapter
from django.contrib.sites.models import Site

from tests.calendars.oauth_flow import google_into_django, graph_into_django
from tests.fakes import google as fake_google
from tests.fakes import microsoft as fake_microsoft

PUBLIC_BASE_URL = "https://convene.test"


def _social_app(provider: str, client_id: str, secret: str) -> None:
    app = SocialApp.objects.create(
        provider=provider, name=provider.title(), client_id=client_id, secret=secret
    )
    app.sites.add(Site.objects.get_current())


def point_at_google(
    fake: fake_google.FakeGoogle, base: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Convene's Google endpoints at `base`, and Convene registered as its client."""
    settings.GOOGLE_API_URL = settings.GOOGLE_OAUTH_URL = base
    settings.GOOGLE_ACCOUNTS_URL = base
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    # allauth reads Google's endpoints into class attributes when it is imported, from
    # the same settings; the fake's port is only known now.
    monkeypatch.setattr(GoogleOAuth2Adapter, "access_token_url", f"{base}/token")
    monkeypatch.setattr(GoogleOAuth2Adapter, "authorize_url", f"{base}/o/oauth2/v2/auth")
    _social_app("google", fake.client_id, fake.client_secret)


@pytest.fixture
def google(
    db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[fake_google.FakeGoogle]:
    """A fake Google with Convene registered as its OAuth client; push notifications
    are delivered to Convene's test client."""
    fake = fake_google.FakeGoogle()
    for served in fake_google.serve(fake):
        point_at_google(fake, served.base_url, settings, monkeypatch)
        fake.deliver = google_into_django
        yield fake


@pytest.fixture
def graph(db: None, settings: Any) -> Iterator[fake_microsoft.FakeMicrosoft]:
    """A fake Microsoft Graph and identity platform with Convene registered as an app;
    validation requests and notifications are delivered to Convene's test client."""
    fake = fake_microsoft.FakeMicrosoft()
    for served in fake_microsoft.serve(fake):
        settings.MICROSOFT_GRAPH_URL = settings.MICROSOFT_LOGIN_URL = served.base_url
        settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
        _social_app("microsoft", fake.client_id, fake.client_secret)
        fake.deliver = graph_into_django
        yield fake
