from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.accounts.management.commands.seed_demo import DEMO_PASSWORD
from apps.accounts.models import Membership, Organization, Program, Role, User

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int]:
    return (
        Organization.objects.count(),
        Program.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
    )


def test_seed_demo_is_idempotent_and_prints_how_to_log_in() -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    first = _counts()
    assert first == (1, 1, 7, 6)
    call_command("seed_demo", stdout=io.StringIO())
    assert _counts() == first
    assert DEMO_PASSWORD in out.getvalue()
    assert "admin@demo.convene.test" in out.getvalue()


def test_seed_demo_creates_every_role_with_working_passwords() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    admin = User.objects.get(email="admin@demo.convene.test")
    assert admin.is_superuser and admin.check_password(DEMO_PASSWORD)
    roles = list(Membership.objects.values_list("role", flat=True))
    assert roles.count(Role.MENTOR) == 2
    assert roles.count(Role.PARTICIPANT) == 3
    assert roles.count(Role.PROGRAM_ADMIN) == 1
    program_admin = User.objects.get(email="programs@demo.convene.test")
    assert program_admin.is_staff and program_admin.managed_organization is not None


def test_seed_demo_adds_a_mentoring_circle_once() -> None:
    from apps.mentoring.models import MentoringGroup

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    group = MentoringGroup.objects.get()
    assert group.name == "Career circle"
    assert sorted(group.members.values_list("email", flat=True)) == [
        "mentor1@demo.convene.test",
        "student1@demo.convene.test",
        "student2@demo.convene.test",
        "student3@demo.convene.test",
    ]


def test_seed_demo_keeps_a_changed_password() -> None:
    call_command("seed_demo", stdout=io.StringIO())
    user = User.objects.get(email="student1@demo.convene.test")
    user.set_password("my-own-secret-1")
    user.save()
    call_command("seed_demo", stdout=io.StringIO())
    user.refresh_from_db()
    assert user.check_password("my-own-secret-1")
