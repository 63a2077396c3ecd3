"""Exchange Online (Graph application permissions through msal) and Exchange
on-premise (EWS impersonation) integrations, from Integrate to connected people."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import TestCase

from apps.calendars.models import CalendarAccount, OutboundAllowRule
from apps.calendars.providers import microsoft_app
from apps.calendars.providers.microsoft_app import GRAPH_APP_PERMISSIONS
from apps.integrations.models import OrgIntegration
from apps.integrations.org_calendars import (
    org_integration_configure,
    org_integration_enable,
    org_integration_verify,
)
from tests.conftest import Personas
from tests.fakes import ews as fake_ews
from tests.fakes import microsoft as fake_microsoft
from tests.fakes.ews import FakeExchange
from tests.fakes.microsoft import FakeMicrosoft

pytestmark = pytest.mark.django_db
Kind = OrgIntegration.Kind
APP_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
APP_SECRET = "Q~x8Q~north-careers-app-secret-0001"
SERVICE_ACCOUNT = "svc-convene@north.example.edu"
SERVICE_PASSWORD = "Svc-passw0rd!"


def _connected(personas: Personas) -> set[str]:
    return set(
        CalendarAccount.objects.filter(source=CalendarAccount.Source.ORGANIZATION).values_list(
            "owner__email", flat=True
        )
    )


@pytest.fixture
def graph(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMicrosoft]:
    fake = FakeMicrosoft()
    # msal speaks only https: the fake serves TLS with a certificate trusted here.
    for served in fake_microsoft.serve(fake, tls=True):
        settings.MICROSOFT_GRAPH_URL = settings.MICROSOFT_LOGIN_URL = served.base_url
        settings.PUBLIC_BASE_URL = ""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", served.ca_file)
        monkeypatch.setattr(microsoft_app, "_apps", {})
        yield fake


def _exchange_online(personas: Personas, graph: FakeMicrosoft) -> OrgIntegration:
    return org_integration_configure(
        organization=personas.organization,
        kind=Kind.EXCHANGE_ONLINE,
        actor=personas.org_admin,
        settings={
            "access": "calendar",
            "test_mailbox": personas.org_admin.email,
            "tenant_id": graph.tenant_id,
            "client_id": APP_ID,
        },
        secrets={"client_secret": APP_SECRET},
    )


def test_exchange_online_connects_mailboxes_of_the_tenant(
    personas: Personas, graph: FakeMicrosoft
) -> None:
    graph.add_app(graph.tenant_id, APP_ID, APP_SECRET, set(GRAPH_APP_PERMISSIONS["calendar"]))
    graph.grant_admin_consent(APP_ID)
    for person in (personas.org_admin, personas.participant, personas.mentor):
        graph.add_mailbox(person.email)
    integration = _exchange_online(personas, graph)

    assert org_integration_verify(integration=integration, actor=personas.org_admin)
    with TestCase.captureOnCommitCallbacks(execute=True):
        org_integration_enable(integration=integration, actor=personas.org_admin)

    assert _connected(personas) == {personas.participant.email, personas.mentor.email}
    account = CalendarAccount.objects.get(owner=personas.participant)
    assert account.provider == "microsoft"
    assert account.status == CalendarAccount.Status.ACTIVE
    assert account.last_synced_at is not None
    assert "client_secret" in account.credentials  # encrypted with the rest


def test_exchange_online_without_admin_consent_says_so(
    personas: Personas, graph: FakeMicrosoft
) -> None:
    # Registered with the right permissions, but nobody consented to them.
    graph.add_app(graph.tenant_id, APP_ID, APP_SECRET, set(GRAPH_APP_PERMISSIONS["calendar"]))
    graph.add_mailbox(personas.org_admin.email)
    integration = _exchange_online(personas, graph)

    assert not org_integration_verify(integration=integration, actor=personas.org_admin)

    integration.refresh_from_db()
    assert integration.status == OrgIntegration.Status.FAILED
    assert "admin consent" in integration.status_detail
    with pytest.raises(ValidationError, match="Verify the integration"):
        org_integration_enable(integration=integration, actor=personas.org_admin)


def test_a_wrong_client_secret_is_explained(personas: Personas, graph: FakeMicrosoft) -> None:
    graph.add_app(graph.tenant_id, APP_ID, "another-secret", set(GRAPH_APP_PERMISSIONS["calendar"]))
    graph.add_mailbox(personas.org_admin.email)
    integration = _exchange_online(personas, graph)
    assert not org_integration_verify(integration=integration, actor=personas.org_admin)
    integration.refresh_from_db()
    assert "secret" in integration.status_detail


@pytest.fixture
def exchange() -> Iterator[tuple[FakeExchange, str]]:
    server = FakeExchange(SERVICE_ACCOUNT, SERVICE_PASSWORD)
    for served in fake_ews.serve(server):
        # The EWS server is on the campus network, which an admin allows.
        OutboundAllowRule.objects.create(value="127.0.0.0/8", note="the test EWS server")
        yield server, served.ews_url


def _on_premise(personas: Personas, ews_url: str) -> OrgIntegration:
    return org_integration_configure(
        organization=personas.organization,
        kind=Kind.EXCHANGE_ONPREM,
        actor=personas.org_admin,
        settings={
            "access": "calendar",
            "test_mailbox": personas.org_admin.email,
            "server_url": ews_url,
            "username": SERVICE_ACCOUNT,
        },
        secrets={"password": SERVICE_PASSWORD},
    )


def test_exchange_on_premise_impersonates_each_participant(
    personas: Personas, exchange: tuple[FakeExchange, str]
) -> None:
    server, ews_url = exchange
    server.grant_impersonation(SERVICE_ACCOUNT)
    for person in (personas.org_admin, personas.participant):
        server.add_mailbox(person.email)
    integration = _on_premise(personas, ews_url)

    assert org_integration_verify(integration=integration, actor=personas.org_admin)
    with TestCase.captureOnCommitCallbacks(execute=True):
        org_integration_enable(integration=integration, actor=personas.org_admin)

    assert _connected(personas) == {personas.participant.email}
    impersonated = {r.impersonating for r in server.requests if r.impersonating}
    assert personas.participant.email in impersonated


def test_exchange_on_premise_without_the_impersonation_role_is_explained(
    personas: Personas, exchange: tuple[FakeExchange, str]
) -> None:
    server, ews_url = exchange
    server.add_mailbox(personas.org_admin.email)
    integration = _on_premise(personas, ews_url)
    assert not org_integration_verify(integration=integration, actor=personas.org_admin)
    integration.refresh_from_db()
    assert "ApplicationImpersonation" in integration.status_detail
