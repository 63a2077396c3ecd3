"""Emails and invitations come from the organization's scheduling assistant mailbox
when it named one, and from the site's sender otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client, TestCase

from tests.appointments.conftest import Booking
from tests.factories import UserFactory, next_weekday_at


@pytest.mark.parametrize(
    ("mailbox", "sender"),
    [
        ("scheduling@example.org", "{name} scheduling <scheduling@example.org>"),
        ("", "Convene <convene@localhost>"),
    ],
)
def test_appointment_emails_come_from_the_scheduling_mailbox(
    booking: Booking, settings: Any, mailbox: str, sender: str
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Convene <convene@localhost>"
    organization = booking.program.organization
    organization.scheduling_mailbox = mailbox
    organization.save()
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        booking.book(next_weekday_at(10))
    assert mail.outbox
    assert {m.from_email for m in mail.outbox} == {sender.format(name=organization.name)}
    invitation = next(m for m in mail.outbox if m.attachments)
    assert "METHOD:REQUEST" in invitation.attachments[0][1]


def test_the_organization_admin_names_the_mailbox(client: Client, booking: Booking) -> None:
    organization = booking.program.organization
    admin = UserFactory(is_staff=True, managed_organization=organization)
    client.force_login(admin)
    response = client.post(
        f"/admin/integrations/orgintegration/organization/{organization.pk}/",
        {"action": "mailbox", "scheduling_mailbox": "assistant@example.org"},
        follow=True,
    )
    assert "The scheduling assistant mailbox is saved." in response.content.decode()
    organization.refresh_from_db()
    assert organization.scheduling_mailbox == "assistant@example.org"
