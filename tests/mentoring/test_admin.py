"""The admin: groups (scoped, with last meeting and open polls), the CSV import and its
rules, polls and their actions, votes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.mentoring.groups import groups_import
from apps.mentoring.models import GroupMember, MeetingPoll, MentoringGroup
from tests.conftest import Personas
from tests.factories import AppointmentFactory, MembershipFactory, UserFactory
from tests.factories.mentoring import make_group
from tests.mentoring.conftest import Circle
from tests.mentoring.helpers import publish_poll

pytestmark = pytest.mark.django_db


def _admin(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(personas: Personas) -> dict[str, Any]:
    program = personas.program
    mentees = [UserFactory(email=f"mentee{i}@north.example.edu") for i in range(3)]
    for user in mentees:
        MembershipFactory(user=user, program=program, role=Role.PARTICIPANT)
    return {"mentor": personas.mentor, "mentees": mentees, "program": program}


CSV = """group,kind,email,role
Ana and Ben,pair,mentor@north.example.edu,mentor
Ana and Ben,pair,mentee0@north.example.edu,mentee
Data circle,circle,mentor@north.example.edu,mentor
Data circle,circle,mentee1@north.example.edu,mentee
Data circle,circle,mentee2@north.example.edu,mentee
"""


def test_csv_import_creates_groups_and_members(personas: Personas, people: dict[str, Any]) -> None:
    response = _admin(personas.program_admin).post(
        reverse("admin:mentoring_mentoringgroup_import"),
        {
            "program": personas.program.pk,
            "file": SimpleUploadedFile("groups.csv", CSV.encode("utf-8-sig")),
        },
    )
    assert response.status_code == 302
    pair = MentoringGroup.objects.get(name="Ana and Ben")
    assert pair.kind == "pair"
    assert sorted(pair.memberships.values_list("user__email", "role")) == [
        ("mentee0@north.example.edu", "mentee"),
        ("mentor@north.example.edu", "mentor"),
    ]
    assert MentoringGroup.objects.get(name="Data circle").memberships.count() == 3
    # Importing again changes nothing and duplicates nothing.
    result = groups_import(program=personas.program, csv_text=CSV, actor=personas.program_admin)
    assert result.updated == ["Ana and Ben", "Data circle"]
    assert GroupMember.objects.count() == 5


def test_csv_import_is_all_or_nothing_and_names_each_line(
    personas: Personas, people: dict[str, Any]
) -> None:
    bad = CSV + (
        "Ana and Ben,pair,mentee1@north.example.edu,mentee\n"
        "Data circle,circle,nobody@north.example.edu,mentee\n"
        "Data circle,circle,outsider@south.example.edu,mentee\n"
        "Data circle,trio,mentee1@north.example.edu,mentee\n"
    )
    result = groups_import(program=personas.program, csv_text=bad, actor=personas.program_admin)
    assert not MentoringGroup.objects.exists()
    text = "\n".join(result.errors)
    assert "Line 8: nobody has the email “nobody@north.example.edu”" in text
    assert "Line 10: kind must be pair or circle" in text
    assert "outsider@south.example.edu is not a participant of North Careers" in text
    assert "A pair has exactly one mentor and one mentee (this one has 1 and 2)" in text
    missing = groups_import(
        program=personas.program, csv_text="name,email\nx,y\n", actor=personas.program_admin
    )
    assert "missing: group, kind, role" in missing.errors[0]


def test_only_the_programmes_admins_import(personas: Personas, people: dict[str, Any]) -> None:
    for intruder in (personas.other_org_admin, personas.mentor):
        with pytest.raises(PermissionDenied):
            groups_import(program=personas.program, csv_text=CSV, actor=intruder)
    # The other organization's admin cannot even pick this programme in the form.
    response = _admin(personas.other_org_admin).post(
        reverse("admin:mentoring_mentoringgroup_import"),
        {"program": personas.program.pk, "file": SimpleUploadedFile("g.csv", CSV.encode())},
    )
    assert response.status_code == 200
    assert not MentoringGroup.objects.exists()


def test_the_admin_checks_a_pair_has_one_mentor_and_one_mentee(
    personas: Personas, people: dict[str, Any]
) -> None:
    first, second = people["mentees"][:2]
    response = _admin(personas.program_admin).post(
        reverse("admin:mentoring_mentoringgroup_add"),
        {
            "program": personas.program.pk,
            "name": "Odd pair",
            "kind": "pair",
            "is_active": "on",
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": first.pk,
            "memberships-0-role": "mentee",
            "memberships-1-user": second.pk,
            "memberships-1-role": "mentee",
        },
    )
    assert response.status_code == 200
    assert "A pair has exactly one mentor and one mentee" in response.content.decode()
    assert not MentoringGroup.objects.exists()


def test_programme_admins_see_their_groups_with_last_meeting_and_open_polls(
    personas: Personas, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    mentor, mentees = people["mentor"], people["mentees"]
    group = make_group(personas.program, mentors=[], mentees=[], name="North circle")
    GroupMember.objects.create(group=group, user=mentor, role="mentor")
    for user in mentees:
        GroupMember.objects.create(group=group, user=user, role="mentee")
    met = timezone.now() - dt.timedelta(days=3)
    AppointmentFactory(
        program=personas.program,
        host=mentor,
        attendees=[mentees[0]],
        start=met,
        end=met + dt.timedelta(hours=1),
    )
    circle = Circle(personas.program, group, mentor, *mentees, personas.outsider, personas.outsider)
    publish_poll(circle, django_capture_on_commit_callbacks)
    south = make_group(personas.other_program, mentors=[], mentees=[], name="South pair")

    page = _admin(personas.program_admin).get(reverse("admin:mentoring_mentoringgroup_changelist"))
    text = page.content.decode()
    assert "North circle" in text
    assert "South pair" not in text
    assert timezone.localtime(met).strftime("%Y-%m-%d") in text
    assert '<td class="field-open_polls">1</td>' in text
    url = reverse("admin:mentoring_mentoringgroup_change", args=[south.pk])
    assert _admin(personas.program_admin).get(url).status_code in (302, 403, 404)
    polls = _admin(personas.other_org_admin).get(reverse("admin:mentoring_meetingpoll_changelist"))
    assert "Check-in" not in polls.content.decode()


def test_admin_actions_go_through_the_services(
    personas: Personas, people: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    mentor, mentees = people["mentor"], people["mentees"]
    group = make_group(personas.program, mentors=[], mentees=[], name="North circle")
    GroupMember.objects.create(group=group, user=mentor, role="mentor")
    GroupMember.objects.create(group=group, user=mentees[0], role="mentee")
    outsider = personas.outsider
    circle = Circle(personas.program, group, mentor, *mentees, outsider, outsider)
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    client = _admin(personas.program_admin)
    client.post(
        reverse("admin:mentoring_meetingpoll_changelist"),
        {"action": "close", "_selected_action": [poll.pk]},
    )
    poll.refresh_from_db()
    assert poll.status == MeetingPoll.Status.CLOSED
    votes = client.get(reverse("admin:mentoring_vote_changelist"))
    assert votes.status_code == 200
