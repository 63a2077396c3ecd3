"""Who may use the admin, and what each admin sees. Every rule has an outsider."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Membership, Program, Role
from tests.conftest import Personas
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_participant_cannot_reach_the_admin(client: Client, personas: Personas) -> None:
    client.force_login(personas.participant)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    assert client.get(reverse("admin:accounts_program_changelist")).status_code == 302


def test_anonymous_cannot_reach_the_admin(client: Client, personas: Personas) -> None:
    response = client.get(reverse("admin:accounts_program_changelist"))
    assert response.status_code == 302


def test_superuser_sees_every_programme(client: Client, personas: Personas) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:accounts_program_changelist"))
    assert response.status_code == 200
    assert {p.name for p in response.context["cl"].result_list} == {
        "North Careers",
        "South Mentoring",
    }


def test_org_admin_sees_only_their_organizations_programmes(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.org_admin)
    response = client.get(reverse("admin:accounts_program_changelist"))
    assert response.status_code == 200
    assert [p.name for p in response.context["cl"].result_list] == ["North Careers"]


def test_org_admin_cannot_open_another_organizations_programme(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.org_admin)
    url = reverse("admin:accounts_program_change", args=[personas.other_program.pk])
    response = client.get(url)
    # Django answers a row outside the queryset with a redirect to the index + message.
    assert response.status_code == 302
    post = client.post(url, {"name": "Hijacked"})
    assert post.status_code in (302, 403)
    personas.other_program.refresh_from_db()
    assert personas.other_program.name == "South Mentoring"


def test_other_org_admin_is_refused_ours(client: Client, personas: Personas) -> None:
    client.force_login(personas.other_org_admin)
    response = client.get(reverse("admin:accounts_program_changelist"))
    assert [p.name for p in response.context["cl"].result_list] == ["South Mentoring"]
    delete = reverse("admin:accounts_program_delete", args=[personas.program.pk])
    client.post(delete, {"post": "yes"})
    assert Program.objects.filter(pk=personas.program.pk).exists()


def test_org_admin_sees_only_their_organization_and_cannot_create_one(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.org_admin)
    response = client.get(reverse("admin:accounts_organization_changelist"))
    assert [o.name for o in response.context["cl"].result_list] == ["North University"]
    assert client.get(reverse("admin:accounts_organization_add")).status_code == 403


def test_org_admin_sees_only_their_people(client: Client, personas: Personas) -> None:
    client.force_login(personas.org_admin)
    response = client.get(reverse("admin:accounts_user_changelist"))
    emails = {u.email for u in response.context["cl"].result_list}
    assert personas.participant.email in emails
    assert personas.outsider.email not in emails
    assert personas.other_org_admin.email not in emails
    outsider_url = reverse("admin:accounts_user_change", args=[personas.outsider.pk])
    assert client.get(outsider_url).status_code == 302


def test_org_admin_cannot_grant_superuser(client: Client, personas: Personas) -> None:
    client.force_login(personas.org_admin)
    url = reverse("admin:accounts_user_change", args=[personas.participant.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert b'name="is_superuser"' not in response.content
    assert b'name="managed_organization"' not in response.content


def test_org_admin_enrolls_a_member_of_their_programme(client: Client, personas: Personas) -> None:
    newcomer = UserFactory(email="newcomer@north.example.edu")
    client.force_login(personas.org_admin)
    response = client.post(
        reverse("admin:accounts_membership_add"),
        {"user": newcomer.pk, "program": personas.program.pk, "role": Role.PARTICIPANT},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Membership.objects.filter(user=newcomer, program=personas.program).exists()


def test_org_admin_cannot_enroll_into_another_organizations_programme(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.org_admin)
    response = client.post(
        reverse("admin:accounts_membership_add"),
        {"user": personas.participant.pk, "program": personas.other_program.pk, "role": "mentor"},
    )
    assert response.status_code == 200  # the form is shown again with an error
    assert "program" in response.context["adminform"].form.errors
    assert not Membership.objects.filter(program=personas.other_program, role="mentor").exists()


def test_program_admin_sees_the_programme_they_administer(
    client: Client, personas: Personas
) -> None:
    client.force_login(personas.program_admin)
    response = client.get(reverse("admin:accounts_membership_changelist"))
    programs = {m.program_id for m in response.context["cl"].result_list}
    assert programs == {personas.program.pk}


def test_staff_without_scope_sees_nothing(client: Client, personas: Personas) -> None:
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse("admin:accounts_program_changelist")).status_code == 403


def test_org_admin_cannot_enroll_someone_from_another_organization(
    client: Client, personas: Personas
) -> None:
    stranger = UserFactory(email="stranger@elsewhere.example.com")
    client.force_login(personas.org_admin)
    response = client.post(
        reverse("admin:accounts_membership_add"),
        {"user": stranger.pk, "program": personas.program.pk, "role": Role.PARTICIPANT},
    )
    assert "user" in response.context["adminform"].form.errors
    assert not Membership.objects.filter(user=stranger).exists()
