"""The Integrations screen: who may open it, what it never shows, and what its
buttons do, against the fake Google Workspace (service account with domain-wide
delegation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client, TestCase

from apps.accounts.models import Role, User
from apps.calendars.models import Calendar, CalendarAccount
from apps.calendars.providers.workspace import WORKSPACE_SCOPES
from apps.integrations.models import OrgIntegration, OrgIntegrationEvent
from apps.integrations.org_calendars import org_integration_enable, org_members
from tests.calendars.oauth_flow import finish_connect, google_consent, start_connect
from tests.conftest import Personas
from tests.factories import MembershipFactory, UserFactory
from tests.fakes.google import FakeGoogle

pytestmark = pytest.mark.django_db
Kind = OrgIntegration.Kind


def _url(personas: Personas) -> str:
    return f"/admin/integrations/orgintegration/organization/{personas.organization.pk}/"


@pytest.mark.parametrize(
    "who", ["other_org_admin", "other_program_admin", "program_admin", "participant"]
)
def test_outsiders_cannot_open_the_screen(client: Client, personas: Personas, who: str) -> None:
    if who == "other_program_admin":
        person = UserFactory(email="padmin@south.example.edu", is_staff=True)
        MembershipFactory(user=person, program=personas.other_program, role=Role.PROGRAM_ADMIN)
    else:
        person = getattr(personas, who)
    client.force_login(person)
    response = client.get(_url(personas))
    assert response.status_code in (302, 403, 404)
    assert b"Domain-wide delegation" not in response.content


def test_anonymous_people_are_sent_to_log_in(client: Client, personas: Personas) -> None:
    response = client.get(_url(personas))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_organization_admin_sees_three_cards(client: Client, personas: Personas) -> None:
    client.force_login(personas.org_admin)
    index = client.get("/admin/integrations/orgintegration/")
    assert index.status_code == 302
    assert index["Location"] == _url(personas)
    page = client.get(_url(personas)).content.decode()
    for title in ("Google Workspace", "Exchange Online", "Exchange on-premise"):
        assert f">{title}</h2>" in page
    assert "Scheduling assistant" in page


def _workspace(google: FakeGoogle, personas: Personas, *, delegate: bool = True) -> dict[str, Any]:
    """The Workspace admin's side: a service account, its key, and delegation."""
    key = google.add_service_account("convene@north-project.iam.gserviceaccount.com")
    if delegate:
        google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    google.add_user("admin@north.example.edu")
    return key


def _integrate(client: Client, personas: Personas, key: dict[str, Any], **extra: str) -> Any:
    client.force_login(personas.org_admin)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            _url(personas),
            {
                "kind": Kind.GOOGLE_WORKSPACE,
                "action": "integrate",
                "google_workspace-access": extra.get("access", "calendar"),
                "google_workspace-test_mailbox": "admin@north.example.edu",
                "google_workspace-service_account_key": json.dumps(key),
            },
            follow=True,
        )


def test_integrating_google_workspace_connects_the_right_people(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    google.add_user(personas.participant.email)
    google.add_user(personas.mentor.email)
    # On the domain but in no programme; in a programme but not on the domain.
    UserFactory(email="bystander@north.example.edu")
    elsewhere = UserFactory(email="visitor@gmail.example")
    MembershipFactory(user=elsewhere, program=personas.program)

    response = _integrate(client, personas, key)

    page = response.content.decode()
    assert "Google Workspace is enabled" in page
    assert key["private_key"] not in page
    integration = OrgIntegration.objects.get()
    assert integration.status == OrgIntegration.Status.ENABLED
    connected = set(
        CalendarAccount.objects.filter(source=CalendarAccount.Source.ORGANIZATION).values_list(
            "owner__email", flat=True
        )
    )
    # Members on the domain with a Google mailbox; the programme admin has none, so
    # they stay unconnected without stopping the others.
    assert connected == {personas.participant.email, personas.mentor.email}
    assert personas.program_admin in org_members(personas.organization)
    assert [e.action for e in OrgIntegrationEvent.objects.order_by("at", "pk")] == [
        "configured",
        "verified",
        "enabled",
    ]
    # The participant's settings page says how they are connected.
    client.force_login(personas.participant)
    settings_page = client.get("/settings/calendars/").content.decode()
    assert "Your calendar is connected through North University" in settings_page
    assert "Disconnect" not in settings_page


def test_missing_delegation_is_explained_and_nothing_is_enabled(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas, delegate=False)
    response = _integrate(client, personas, key)
    page = response.content.decode()
    assert "could not be verified" in page
    assert key["client_id"] in page
    integration = OrgIntegration.objects.get()
    assert integration.status == OrgIntegration.Status.FAILED
    assert not CalendarAccount.objects.exists()
    assert OrgIntegrationEvent.objects.filter(action="verify_failed").exists()


def test_disabling_removes_the_accounts_it_connected(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    google.add_user(personas.participant.email)
    _integrate(client, personas, key)
    assert CalendarAccount.objects.filter(owner=personas.participant).exists()

    client.post(
        _url(personas),
        {"kind": Kind.GOOGLE_WORKSPACE, "action": "disable", "remove_events": "on"},
    )

    assert not CalendarAccount.objects.filter(source=CalendarAccount.Source.ORGANIZATION).exists()
    assert OrgIntegration.objects.get().status == OrgIntegration.Status.DISABLED
    assert OrgIntegrationEvent.objects.filter(action="disabled", actor=personas.org_admin).exists()


def test_a_new_member_is_connected_when_they_join(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    _integrate(client, personas, key)
    newcomer: User = UserFactory(email="newcomer@north.example.edu")
    google.add_user(newcomer.email)
    with TestCase.captureOnCommitCallbacks(execute=True):
        MembershipFactory(user=newcomer, program=personas.program)
    account = CalendarAccount.objects.get(owner=newcomer)
    assert account.source == CalendarAccount.Source.ORGANIZATION
    assert Calendar.objects.filter(account=account, is_write_target=True).exists()


def test_free_busy_access_writes_nothing(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    google.add_user(personas.participant.email)
    _integrate(client, personas, key, access="free_busy")
    account = CalendarAccount.objects.get(owner=personas.participant)
    assert not account.writes_allowed
    assert not Calendar.objects.filter(account=account, is_write_target=True).exists()


def test_exchange_online_and_on_premise_cannot_both_be_enabled(personas: Personas) -> None:
    online = OrgIntegration.objects.create(
        organization=personas.organization,
        kind=Kind.EXCHANGE_ONLINE,
        test_mailbox="admin@north.example.edu",
        secrets={},
        status=OrgIntegration.Status.ENABLED,
    )
    onprem = OrgIntegration.objects.create(
        organization=personas.organization,
        kind=Kind.EXCHANGE_ONPREM,
        test_mailbox="admin@north.example.edu",
        secrets={},
        verified_at=online.updated_at,
    )
    with pytest.raises(ValidationError, match="cannot both be enabled"):
        org_integration_enable(integration=onprem, actor=personas.org_admin)
    with pytest.raises(PermissionDenied, match="organization's admins"):
        org_integration_enable(integration=onprem, actor=personas.other_org_admin)


def test_secrets_are_never_shown_again(client: Client, personas: Personas) -> None:
    client.force_login(personas.org_admin)
    client.post(
        _url(personas),
        {
            "kind": Kind.EXCHANGE_ONLINE,
            "action": "integrate",
            "exchange_online-access": "free_busy",
            "exchange_online-test_mailbox": "admin@north.example.edu",
            "exchange_online-tenant_id": "11111111-2222-3333-4444-555555555555",
            "exchange_online-client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "exchange_online-client_secret": "Q~very-secret-value",
        },
    )
    integration = OrgIntegration.objects.get(kind=Kind.EXCHANGE_ONLINE)
    assert integration.secrets == {"client_secret": "Q~very-secret-value"}
    page = client.get(_url(personas)).content.decode()
    assert "Q~very-secret-value" not in page
    assert "3fa85f64-5717-4562-b3fc-2c963f66afa6" in page  # not a secret
    assert "adminconsent" in page
    # Saving again without the secret keeps the stored one.
    client.post(
        _url(personas),
        {
            "kind": Kind.EXCHANGE_ONLINE,
            "action": "integrate",
            "exchange_online-access": "calendar",
            "exchange_online-test_mailbox": "admin@north.example.edu",
            "exchange_online-tenant_id": "11111111-2222-3333-4444-555555555555",
            "exchange_online-client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "exchange_online-client_secret": "",
        },
    )
    integration.refresh_from_db()
    assert integration.secrets == {"client_secret": "Q~very-secret-value"}
    assert integration.access == "calendar"


def test_a_participants_own_connection_takes_precedence(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    google.add_user(personas.participant.email)
    CalendarAccount.objects.create(
        owner=personas.participant,
        provider="google",
        identity=personas.participant.email,
        credentials={"access_token": "own"},
    )
    _integrate(client, personas, key)
    assert list(
        CalendarAccount.objects.filter(owner=personas.participant).values_list("source", flat=True)
    ) == [CalendarAccount.Source.USER]


def test_connecting_ones_own_calendar_replaces_the_organizations_connection(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    google.add_user(personas.participant.email)
    _integrate(client, personas, key)
    assert CalendarAccount.objects.get(owner=personas.participant).source == "organization"

    client.force_login(personas.participant)
    authorize = start_connect(client, "/settings/calendars/connect/google/")
    finish_connect(client, google_consent(authorize, email=personas.participant.email))

    (account,) = CalendarAccount.objects.filter(owner=personas.participant)
    assert account.source == CalendarAccount.Source.USER
    assert Calendar.objects.get(account=account).is_write_target


def test_integrating_again_updates_the_accounts_it_connected(
    client: Client, personas: Personas, google: FakeGoogle
) -> None:
    key = _workspace(google, personas)
    google.add_user(personas.participant.email)
    _integrate(client, personas, key)
    account = CalendarAccount.objects.get(owner=personas.participant)
    assert account.writes_allowed

    # A new key, and only free/busy from now on.
    new_key = google.add_service_account("convene-2@north-project.iam.gserviceaccount.com")
    google.delegate(new_key["client_id"], WORKSPACE_SCOPES["calendar"])
    _integrate(client, personas, new_key, access="free_busy")

    account.refresh_from_db()
    assert account.credentials["service_account"]["client_id"] == new_key["client_id"]
    assert not account.writes_allowed
    assert not Calendar.objects.filter(account=account, is_write_target=True).exists()
