"""The pages: home, groups, partner availability, creating and answering polls, the
personal link (and who it refuses), and the poll page's query count."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.mentoring.models import MeetingPoll, Vote
from apps.mentoring.services import poll_close, poll_finalize, poll_link_revoke, poll_vote
from tests.factories import AppointmentFactory, UserFactory
from tests.factories.mentoring import GroupMemberFactory, busy, connect_calendar
from tests.mentoring.conftest import Circle
from tests.mentoring.helpers import at, monday, personal_links, publish_poll

pytestmark = pytest.mark.django_db
YES, MAYBE, NO = Vote.Answer.YES, Vote.Answer.IF_NEED_BE, Vote.Answer.NO


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _votes(poll: MeetingPoll, *answers: str) -> dict[str, str]:
    return {
        f"option_{pk}": answer
        for pk, answer in zip(poll.options.values_list("pk", flat=True), answers, strict=False)
    }


# --- home, groups, availability -------------------------------------------------------------


def test_home_lists_the_members_groups_and_polls_waiting_for_them(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    page = _text(_client(circle.ana).get("/"))
    assert "Your mentoring groups" in page
    assert "Data circle" in page
    assert poll.title in page
    assert "Waiting for your answer" in page
    assert "Data circle" not in _text(_client(circle.outsider).get("/"))
    mentor_page = _text(_client(circle.mentor).get("/"))
    assert "Create a poll with proposed meeting slots" in mentor_page


def test_group_pages_are_for_its_members_only(circle: Circle) -> None:
    url = reverse("group_detail", args=[circle.group.pk])
    assert _client(circle.ana).get(url).status_code == 200
    for intruder in (circle.outsider, circle.other_member):
        assert _client(intruder).get(url).status_code == 404
        assert (
            _client(intruder).get(reverse("group_availability", args=[circle.group.pk])).status_code
            == 404
        )


def test_availability_shows_when_others_are_busy_never_why_in_the_viewers_zone(
    circle: Circle,
) -> None:
    day = monday()
    busy(circle.ben, at(day, 14), at(day, 15, 30))
    connect_calendar(circle.sam, status="disconnected")
    AppointmentFactory(
        program=circle.program,
        host=circle.mentor,
        start=at(day, 9),
        end=at(day, 10),
        title="Secret topic",
        attendees=[circle.ana],
    )
    # Ana lives in Berlin: Ben's 14:00 UTC is 15:00 or 16:00 for her.
    response = _client(circle.ana).get(
        reverse("group_availability", args=[circle.group.pk]), {"week": day.isoformat()}
    )
    page = _text(response)
    local = at(day, 14).astimezone(circle.ana.zone).strftime("%H:%M")
    assert f"Busy {local}" in page
    assert "Secret topic" not in page
    assert "Sam Smith&#x27;s calendar is disconnected, so their availability is unknown." in page


def test_availability_flags_a_member_without_a_calendar(circle: Circle) -> None:
    page = _text(_client(circle.mentor).get(reverse("group_availability", args=[circle.group.pk])))
    assert "Sam Smith has not connected a calendar, so their availability is unknown." in page
    assert "Ana Alves has not" not in page


# --- creating a poll ---------------------------------------------------------------------------


def test_the_mentor_creates_reviews_and_publishes_a_poll(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    client = _client(circle.mentor)
    form = client.get(reverse("poll_create"), {"group": circle.group.pk})
    assert form.status_code == 200
    day = monday()
    response = client.post(
        reverse("poll_create"),
        {
            "group": circle.group.pk,
            "title": "Spring check-in",
            "duration_minutes": 60,
            "date_from": day.isoformat(),
            "date_to": (day + dt.timedelta(days=4)).isoformat(),
            "day_start": "",
            "day_end": "",
            "required": "",
            "deadline": "",
        },
    )
    poll = MeetingPoll.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("poll_detail", args=[poll.pk])
    draft = _text(client.get(response["Location"]))
    assert "2 of 3 invitees have connected calendars." in draft
    assert "Sam Smith has not connected a calendar" in draft
    assert "Publish and invite 3 people" in draft
    first = poll.options.order_by("start").first()
    assert first is not None
    client.post(reverse("poll_option_remove", args=[poll.pk, first.pk]))
    client.post(reverse("poll_option_add", args=[poll.pk]), {"start": f"{day}T21:00"})
    assert poll.options.filter(added_by_mentor=True).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("poll_publish", args=[poll.pk]))
    poll.refresh_from_db()
    assert poll.status == "open"
    assert len(personal_links(mailoutbox)) == 3


def test_creation_errors_say_what_to_fix(circle: Circle) -> None:
    day = monday()
    response = _client(circle.mentor).post(
        reverse("poll_create"),
        {
            "group": circle.group.pk,
            "title": "x",
            "duration_minutes": 60,
            "date_from": day.isoformat(),
            "date_to": (day - dt.timedelta(days=2)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert "The last day must be on or after the first day." in _text(response)
    assert not MeetingPoll.objects.exists()


@pytest.mark.parametrize("who", ["ana", "outsider"])
def test_only_mentors_reach_the_poll_form(circle: Circle, who: str) -> None:
    assert _client(getattr(circle, who)).get(reverse("poll_create")).status_code == 404


def test_a_mentor_cannot_create_a_poll_for_someone_elses_group(circle: Circle) -> None:
    other_mentor = UserFactory()
    GroupMemberFactory(group=circle.group, user=UserFactory())  # noise
    client = _client(other_mentor)
    assert client.get(reverse("poll_create")).status_code == 404


# --- answering on the site ---------------------------------------------------------------------


def test_invitees_answer_on_the_site_and_see_times_in_their_zone(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    client = _client(circle.ben)
    url = reverse("poll_detail", args=[poll.pk])
    page = _text(client.get(url))
    first = poll.options.order_by("start").first()
    assert first is not None
    local = first.start.astimezone(circle.ben.zone).strftime("%H:%M")
    assert local in page
    assert "Can you come?" in page
    incomplete = client.post(reverse("poll_vote", args=[poll.pk]), {})
    assert incomplete.status_code == 400
    assert "Answer every time with Yes, If need be or No." in _text(incomplete)
    count = poll.options.count()
    client.post(reverse("poll_vote", args=[poll.pk]), _votes(poll, *[YES] * count))
    client.post(reverse("poll_vote", args=[poll.pk]), _votes(poll, *[NO] * count))
    assert set(Vote.objects.filter(voter=circle.ben).values_list("answer", flat=True)) == {NO}
    assert "Your answers" in _text(client.get(url))


@pytest.mark.parametrize("who", ["outsider", "other_member"])
def test_strangers_cannot_see_or_answer_a_poll(
    circle: Circle, django_capture_on_commit_callbacks: Any, who: str
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    client = _client(getattr(circle, who))
    assert client.get(reverse("poll_detail", args=[poll.pk])).status_code == 404
    response = client.post(reverse("poll_vote", args=[poll.pk]), _votes(poll, YES))
    assert response.status_code == 404
    assert not Vote.objects.exists()


def test_invitees_cannot_manage_the_poll(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    client = _client(circle.ana)
    option = poll.options.first()
    assert option is not None
    for name in ("poll_close", "poll_cancel", "poll_remind"):
        assert client.post(reverse(name, args=[poll.pk])).status_code == 404
    response = client.post(reverse("poll_finalize", args=[poll.pk]), {"option": option.pk})
    assert response.status_code == 404
    poll.refresh_from_db()
    assert poll.status == "open"


def test_the_mentor_finalises_from_the_page(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    option = poll.options.first()
    assert option is not None
    client = _client(circle.mentor)
    assert "Schedule this meeting" in _text(client.get(reverse("poll_detail", args=[poll.pk])))
    response = client.post(reverse("poll_finalize", args=[poll.pk]), {"option": option.pk})
    poll.refresh_from_db()
    assert response["Location"] == reverse("appointment_detail", args=[poll.appointment_id])
    page = _text(_client(circle.sam).get(reverse("poll_detail", args=[poll.pk])))
    assert "Scheduled:" in page


def test_double_booking_is_explained_to_the_mentor(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    option = poll.options.first()
    assert option is not None
    AppointmentFactory(
        program=circle.program, host=circle.mentor, start=option.start, end=option.end
    )
    client = _client(circle.mentor)
    response = client.post(
        reverse("poll_finalize", args=[poll.pk]), {"option": option.pk}, follow=True
    )
    assert "You already have an appointment that overlaps this time." in _text(response)


# --- personal links ------------------------------------------------------------------------------


def test_a_personal_link_works_without_a_password_in_the_invitees_zone(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    link = personal_links(mailoutbox)["ben@example.org"]
    client = Client()
    response = client.get(link)
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "same-origin"
    page = _text(response)
    first = poll.options.order_by("start").first()
    assert first is not None
    assert first.start.astimezone(circle.ben.zone).strftime("%H:%M") in page
    assert "America/New_York" in page
    count = poll.options.count()
    saved = client.post(link, _votes(poll, *[MAYBE] * count))
    assert saved.status_code == 302
    assert set(Vote.objects.filter(voter=circle.ben).values_list("answer", flat=True)) == {MAYBE}
    # The link does not sign anyone in.
    assert client.get(reverse("appointment_list")).status_code == 302


def test_a_revoked_link_is_refused(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    link = personal_links(mailoutbox)["ana@example.org"]
    poll_link_revoke(invitation=poll.invitations.get(invitee=circle.ana), actor=circle.mentor)
    assert Client().get(link).status_code == 404
    assert Client().post(link, _votes(poll, YES)).status_code == 404
    assert not Vote.objects.exists()


def test_the_invitee_revokes_their_own_link(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    publish_poll(circle, django_capture_on_commit_callbacks)
    link = personal_links(mailoutbox)["ana@example.org"]
    client = Client()
    assert client.post(f"{link}revoke/").status_code == 200
    assert client.get(link).status_code == 404


def test_a_link_for_another_poll_or_a_made_up_one_is_refused(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    first = publish_poll(circle, django_capture_on_commit_callbacks)
    link = personal_links(mailoutbox)["ana@example.org"]
    mailoutbox.clear()
    second = publish_poll(circle, django_capture_on_commit_callbacks)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert Client().get(reverse("poll_link", args=[second.pk, token])).status_code == 404
    assert Client().get(reverse("poll_link", args=[first.pk, token])).status_code == 200
    assert Client().get(reverse("poll_link", args=[first.pk, "x" * 43])).status_code == 404


def test_a_link_stops_working_when_its_invitee_leaves_the_group(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    publish_poll(circle, django_capture_on_commit_callbacks)
    link = personal_links(mailoutbox)["sam@example.org"]
    circle.group.memberships.filter(user=circle.sam).delete()
    assert Client().get(link).status_code == 404


def test_a_link_shows_a_closed_poll_without_taking_answers(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    link = personal_links(mailoutbox)["ana@example.org"]
    poll_close(poll=poll, actor=circle.mentor)
    client = Client()
    assert "answers can no longer change" in _text(client.get(link))
    client.post(link, _votes(poll, *[YES] * poll.options.count()))
    assert not Vote.objects.exists()


# --- query counts ------------------------------------------------------------------------------


def test_the_poll_page_takes_the_same_queries_for_any_size(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    small = publish_poll(circle, django_capture_on_commit_callbacks)
    for _ in range(10):
        user = UserFactory()
        connect_calendar(user)
        GroupMemberFactory(group=circle.group, user=user)
    large = publish_poll(circle, django_capture_on_commit_callbacks, days=10)
    assert large.options.count() > small.options.count()
    for invitation in large.invitations.select_related("invitee")[:6]:
        poll_vote(
            poll=large,
            voter=invitation.invitee,
            answers=dict.fromkeys(large.options.values_list("pk", flat=True), YES),
        )
    for viewer in (circle.mentor, circle.ana):
        client = _client(viewer)
        counts = []
        for poll in (small, large):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse("poll_detail", args=[poll.pk])).status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1], viewer


def test_a_finalised_poll_shows_the_chosen_time(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    option = poll.options.first()
    assert option is not None
    poll_finalize(poll=poll, actor=circle.mentor, option_id=option.pk)
    page = _text(_client(circle.mentor).get(reverse("poll_detail", args=[poll.pk])))
    assert "Chosen" in page
    assert "Schedule this meeting" not in page
