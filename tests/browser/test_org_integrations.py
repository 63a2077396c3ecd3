"""The Integrations screen in a real browser: an organization admin connects Google
Workspace with a service account key (against the fake Google, which checks the
signed JWT of every token request), sees who got connected, and disables it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from apps.accounts.models import Organization, Role, User
from apps.calendars.models import CalendarAccount
from apps.calendars.providers.workspace import WORKSPACE_SCOPES
from apps.integrations.models import OrgIntegration
from tests.browser.conftest import LogIn, Screenshot
from tests.factories import (
    MembershipFactory,
    OrganizationDomainFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
)
from tests.fakes.google import FakeGoogle, serve
from tests.oauth_fakes import point_at_google


@pytest.fixture
def google(
    transactional_db: None, live_server: LiveServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    for served in serve(fake):
        point_at_google(fake, served.base_url, settings, monkeypatch)
        settings.PUBLIC_BASE_URL = ""  # no push channels: nothing could deliver them
        yield fake


@pytest.fixture
def organization(transactional_db: None) -> Organization:
    organization = OrganizationFactory(name="North University", slug="north")
    OrganizationDomainFactory(organization=organization, domain="north.example.edu")
    program = ProgramFactory(organization=organization, name="North Careers")
    for email in ("ada@north.example.edu", "ben@north.example.edu"):
        MembershipFactory(user=UserFactory(email=email), program=program, role=Role.PARTICIPANT)
    return organization


def test_an_organization_admin_integrates_google_workspace(
    page: Page,
    log_in: LogIn,
    screenshot: Screenshot,
    google: FakeGoogle,
    organization: Organization,
) -> None:
    admin: User = UserFactory(
        email="it@north.example.edu", is_staff=True, managed_organization=organization
    )
    key = google.add_service_account("convene@north-project.iam.gserviceaccount.com")
    google.delegate(key["client_id"], WORKSPACE_SCOPES["calendar"])
    for email in ("it@north.example.edu", "ada@north.example.edu", "ben@north.example.edu"):
        google.add_user(email)

    log_in(page, admin)
    page.goto("/admin/")
    page.get_by_role("link", name="Calendar integrations").click()
    expect(page.get_by_role("heading", name="Google Workspace")).to_be_visible()
    card = page.locator("#card-google_workspace")
    expect(card.get_by_label("Scopes to paste for calendar access")).to_have_value(
        re.compile("calendar.events.owned")
    )
    card.get_by_label("Calendar access: busy time synced and appointments written").check()
    card.get_by_label("Test mailbox").fill("it@north.example.edu")
    card.get_by_label("Service account key (JSON)").fill(json.dumps(key))
    screenshot(page, "filled")
    card.get_by_role("button", name="Integrate").click()

    expect(page.get_by_text("Google Workspace is enabled")).to_be_visible()
    expect(card.get_by_text("2 participants connected")).to_be_visible()
    assert key["private_key"] not in page.content()
    expect(page.get_by_role("cell", name="Enabled")).to_be_visible()
    screenshot(page, "enabled")
    assert set(
        CalendarAccount.objects.filter(source=CalendarAccount.Source.ORGANIZATION).values_list(
            "owner__email", flat=True
        )
    ) == {"ada@north.example.edu", "ben@north.example.edu"}

    card.get_by_label("Also remove the appointments Convene added").check()
    card.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("Google Workspace is disabled.")).to_be_visible()
    assert OrgIntegration.objects.get().status == OrgIntegration.Status.DISABLED
    assert not CalendarAccount.objects.exists()
