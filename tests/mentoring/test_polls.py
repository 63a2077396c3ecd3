"""The poll's life: options, publishing, votes and their changes, closing by deadline,
reminders, reopening, canceling, finalising into an appointment; who may do what."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from apps.appointments.models import Appointment, CalendarWrite
from apps.mentoring.models import MeetingPoll, PollInvitation, Vote
from apps.mentoring.schedules import ensure_poll_schedules
from apps.mentoring.selectors import poll_get, poll_grid
from apps.mentoring.services import (
    poll_cancel,
    poll_close,
    poll_finalize,
    poll_link_revoke,
    poll_option_add,
    poll_option_remove,
    poll_publish,
    poll_remind,
    poll_reopen,
    poll_vote,
    polls_close_due,
    polls_remind_due,
)
from apps.mentoring.signals import poll_finalized
from apps.mentoring.tasks import close_due_polls_task, remind_due_polls_task
from tests.factories import AppointmentFactory, UserFactory
from tests.factories.mentoring import GroupMemberFactory, busy, connect_calendar
from tests.mentoring.conftest import Circle
from tests.mentoring.helpers import at, monday, personal_links, publish_poll

pytestmark = pytest.mark.django_db
Status = MeetingPoll.Status
YES, MAYBE, NO = Vote.Answer.YES, Vote.Answer.IF_NEED_BE, Vote.Answer.NO


def _answers(poll: MeetingPoll, *answers: str) -> dict[int, str]:
    return dict(zip(poll.options.values_list("pk", flat=True), answers, strict=False))


# --- drafts and publishing -------------------------------------------------------------------


def test_the_mentor_adds_and_removes_options_before_publishing(circle: Circle) -> None:
    from apps.mentoring.services import poll_create

    poll = poll_create(
        group=circle.group,
        actor=circle.mentor,
        title="Check-in",
        duration_minutes=45,
        date_from=monday(),
        date_to=monday(),
    )
    added = poll_option_add(poll=poll, actor=circle.mentor, start=at(monday(), 21))
    assert added.end - added.start == dt.timedelta(minutes=45)
    assert added.added_by_mentor
    with pytest.raises(ValidationError, match="already an option"):
        poll_option_add(poll=poll, actor=circle.mentor, start=at(monday(), 21))
    poll_option_remove(poll=poll, actor=circle.mentor, option_id=added.pk)
    assert not poll.options.filter(pk=added.pk).exists()
    for intruder in (circle.ana, circle.outsider):
        with pytest.raises(PermissionDenied):
            poll_option_add(poll=poll, actor=intruder, start=at(monday(), 22))
        with pytest.raises(PermissionDenied):
            poll_publish(poll=poll, actor=intruder)


def test_publishing_invites_everyone_with_a_personal_link(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    assert poll.status == Status.OPEN
    assert set(poll.invitations.values_list("invitee__email", flat=True)) == {
        "ana@example.org",
        "ben@example.org",
        "sam@example.org",
    }
    links = personal_links(mailoutbox)
    assert set(links) == {"ana@example.org", "ben@example.org", "sam@example.org"}
    # Only hashes are stored, never the tokens themselves.
    tokens = {link.rstrip("/").rsplit("/", 1)[-1] for link in links.values()}
    stored = set(PollInvitation.objects.values_list("token_hash", flat=True))
    assert not tokens & stored
    assert all(len(h) == 64 for h in stored)
    with pytest.raises(ValidationError, match="Options can only be changed"):
        poll_option_add(poll=poll, actor=circle.mentor, start=at(monday(), 21))
    with pytest.raises(ValidationError, match="already published"):
        poll_publish(poll=poll, actor=circle.mentor)


# --- votes ----------------------------------------------------------------------------------


def test_invitees_vote_and_change_their_answers(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    first, second = poll.options.all()[:2]
    poll_vote(poll=poll, voter=circle.ana, answers={first.pk: YES, second.pk: NO})
    poll_vote(poll=poll, voter=circle.ana, answers={first.pk: MAYBE, second.pk: YES})
    assert dict(Vote.objects.filter(voter=circle.ana).values_list("option_id", "answer")) == {
        first.pk: MAYBE,
        second.pk: YES,
    }
    invitation = poll.invitations.get(invitee=circle.ana)
    assert invitation.answered_at is not None
    grid = poll_grid(poll=poll_get(pk=poll.pk))
    assert grid.summaries[first.pk].if_need_be == 1
    assert grid.summaries[first.pk].can_come == 1
    assert grid.summaries[first.pk].unanswered == 2


@pytest.mark.parametrize("who", ["mentor", "outsider", "other_member"])
def test_only_invitees_vote(
    circle: Circle, django_capture_on_commit_callbacks: Any, who: str
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    with pytest.raises(PermissionDenied):
        poll_vote(poll=poll, voter=getattr(circle, who), answers=_answers(poll, YES))


def test_an_invitee_who_left_the_group_can_no_longer_vote(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    circle.group.memberships.filter(user=circle.sam).delete()
    with pytest.raises(PermissionDenied):
        poll_vote(poll=poll, voter=circle.sam, answers=_answers(poll, YES))


def test_votes_for_other_polls_options_or_unknown_answers_are_refused(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    other = publish_poll(circle, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="no longer part"):
        poll_vote(poll=poll, voter=circle.ana, answers=_answers(other, YES))
    with pytest.raises(ValidationError, match="Yes, If need be or No"):
        poll_vote(poll=poll, voter=circle.ana, answers=_answers(poll, "perhaps"))


def test_a_closed_poll_takes_no_answers_until_reopened(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    poll_close(poll=poll, actor=circle.mentor)
    with pytest.raises(ValidationError, match="closed"):
        poll_vote(poll=poll, voter=circle.ana, answers=_answers(poll, YES))
    poll_reopen(poll=poll, actor=circle.mentor)
    poll_vote(poll=poll, voter=circle.ana, answers=_answers(poll, YES))
    for intruder in (circle.ana, circle.outsider):
        with pytest.raises(PermissionDenied):
            poll_close(poll=poll, actor=intruder)
        with pytest.raises(PermissionDenied):
            poll_cancel(poll=poll, actor=intruder)


def test_conflicts_are_marked_per_invitee(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks, required=1)
    option = poll.options.order_by("start").first()
    assert option is not None
    busy(circle.ben, option.start, option.start + dt.timedelta(minutes=10))
    grid = poll_grid(poll=poll_get(pk=poll.pk))
    assert (option.pk, circle.ben.pk) in grid.conflicts
    assert (option.pk, circle.ana.pk) not in grid.conflicts
    assert grid.connected == 2


# --- deadline, reminders ----------------------------------------------------------------------


def test_the_deadline_closes_the_poll_and_tells_the_mentor(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    deadline = at(monday(), 0) - dt.timedelta(days=1)
    poll = publish_poll(circle, django_capture_on_commit_callbacks, deadline=deadline)
    mailoutbox.clear()
    assert polls_close_due(now=deadline - dt.timedelta(minutes=1)) == 0
    with (
        time_machine.travel(deadline + dt.timedelta(minutes=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert close_due_polls_task.delay().get() == 1
    poll.refresh_from_db()
    assert poll.status == Status.CLOSED
    assert [m.to for m in mailoutbox] == [["mentor@example.org"]]
    assert "Poll closed" in mailoutbox[0].subject


def test_reminders_go_to_those_who_have_not_answered_with_a_new_link(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    deadline = at(monday(), 0) - dt.timedelta(days=1)
    poll = publish_poll(circle, django_capture_on_commit_callbacks, deadline=deadline)
    old_links = personal_links(mailoutbox)
    poll_vote(poll=poll, voter=circle.ana, answers=_answers(poll, YES))
    poll_link_revoke(invitation=poll.invitations.get(invitee=circle.sam), actor=circle.sam)
    mailoutbox.clear()
    assert polls_remind_due(now=deadline - dt.timedelta(days=2)) == 0  # not yet due
    with (
        time_machine.travel(deadline - dt.timedelta(hours=3)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert remind_due_polls_task.delay().get() == 1
        assert polls_remind_due() == 0  # once only
    assert sorted(m.to[0] for m in mailoutbox) == ["ben@example.org", "sam@example.org"]
    new_links = personal_links(mailoutbox)
    # Ben gets a fresh link (only hashes are kept); Sam revoked his, so gets none.
    assert set(new_links) == {"ben@example.org"}
    assert new_links["ben@example.org"] != old_links["ben@example.org"]
    with pytest.raises(PermissionDenied):
        poll_remind(poll=poll, actor=circle.ben)


def test_the_periodic_jobs_are_created_once(db: None) -> None:
    ensure_poll_schedules()
    ensure_poll_schedules()
    tasks = PeriodicTask.objects.filter(task__startswith="mentoring.")
    assert sorted(tasks.values_list("task", flat=True)) == [
        "mentoring.close_due_polls",
        "mentoring.remind_due_polls",
    ]


# --- cancel, reopen -------------------------------------------------------------------------------


def test_canceling_tells_the_invitees(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        poll_cancel(poll=poll, actor=circle.mentor)
    assert len(mailoutbox) == 3
    assert all("canceled" in m.subject for m in mailoutbox)
    with pytest.raises(ValidationError):
        poll_reopen(poll=poll, actor=circle.mentor)


def test_reopening_replaces_a_passed_deadline(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    deadline = at(monday(), 0) - dt.timedelta(days=1)
    poll = publish_poll(circle, django_capture_on_commit_callbacks, deadline=deadline)
    with time_machine.travel(deadline + dt.timedelta(minutes=5)):
        polls_close_due()
        poll = poll_reopen(poll=poll, actor=circle.mentor)
        assert poll.status == Status.OPEN
        assert poll.deadline is None
        # It does not close again on the old deadline.
        assert polls_close_due() == 0


# --- finalising ----------------------------------------------------------------------------------


def test_finalising_books_everyone_and_tells_them_which_time_won(
    circle: Circle, django_capture_on_commit_callbacks: Any, mailoutbox: list[Any]
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    # Ana's calendar is a write target: she gets the event written, not an attachment.
    ana_calendar = connect_calendar(circle.ana)
    ana_calendar.is_write_target = True
    ana_calendar.save()
    chosen = poll.options.order_by("start").last()
    assert chosen is not None
    received: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs)

    poll_finalized.connect(receiver)
    mailoutbox.clear()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            appointment = poll_finalize(poll=poll, actor=circle.mentor, option_id=chosen.pk)
            assert not received  # only once committed
    finally:
        poll_finalized.disconnect(receiver)
    assert appointment.host == circle.mentor
    assert set(appointment.attendees.all()) == {circle.ana, circle.ben, circle.sam}
    assert (appointment.start, appointment.end) == (chosen.start, chosen.end)
    assert appointment.status == Appointment.Status.APPROVED
    assert appointment.transitions.get().actor == circle.mentor
    assert CalendarWrite.objects.filter(appointment=appointment).exists()
    poll.refresh_from_db()
    assert (poll.status, poll.final_option, poll.appointment) == (
        Status.FINALIZED,
        chosen,
        appointment,
    )
    assert [r["appointment"] for r in received] == [appointment]
    assert received[0]["poll"].pk == poll.pk
    by_person = {m.to[0]: m for m in mailoutbox}
    assert set(by_person) == {"ana@example.org", "ben@example.org", "sam@example.org"}
    assert all(m.subject == "Meeting scheduled: Check-in" for m in mailoutbox)
    assert not by_person["ana@example.org"].attachments
    name, content, mime = by_person["sam@example.org"].attachments[0]
    assert name == "invite.ics"
    assert "METHOD:REQUEST" in content
    assert mime.startswith("text/calendar")
    # Shown in each person's own zone: Ben lives in New York.
    ben_time = chosen.start.astimezone(circle.ben.zone).strftime("%H:%M")
    assert ben_time in by_person["ben@example.org"].body
    with pytest.raises(ValidationError, match="open or closed"):
        poll_finalize(poll=poll, actor=circle.mentor, option_id=chosen.pk)


@pytest.mark.parametrize("who", ["ana", "outsider", "other_member"])
def test_only_mentors_finalise(
    circle: Circle, django_capture_on_commit_callbacks: Any, who: str
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    option = poll.options.first()
    assert option is not None
    with pytest.raises(PermissionDenied):
        poll_finalize(poll=poll, actor=getattr(circle, who), option_id=option.pk)
    assert not Appointment.objects.exists()


def test_finalising_over_the_mentors_other_appointment_is_refused_plainly(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    option = poll.options.first()
    assert option is not None
    AppointmentFactory(
        program=circle.program,
        host=circle.mentor,
        start=option.start + dt.timedelta(minutes=15),
        end=option.end + dt.timedelta(minutes=15),
    )
    with pytest.raises(ValidationError, match="already have an appointment"):
        poll_finalize(poll=poll, actor=circle.mentor, option_id=option.pk)
    poll.refresh_from_db()
    assert poll.status == Status.OPEN
    assert Appointment.objects.count() == 1


def test_a_poll_can_be_finalised_after_it_closed(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    poll = publish_poll(circle, django_capture_on_commit_callbacks)
    poll_close(poll=poll, actor=circle.mentor)
    option = poll.options.first()
    assert option is not None
    appointment = poll_finalize(poll=poll, actor=circle.mentor, option_id=option.pk)
    assert appointment.start == option.start
    with pytest.raises(ValidationError, match="cancel its appointment"):
        poll_cancel(poll=poll, actor=circle.mentor)


# --- query counts --------------------------------------------------------------------------------


def test_the_grid_takes_the_same_queries_for_any_number_of_invitees_and_options(
    circle: Circle, django_capture_on_commit_callbacks: Any
) -> None:
    small = publish_poll(circle, django_capture_on_commit_callbacks)
    poll_vote(poll=small, voter=circle.ana, answers=_answers(small, YES, NO))

    for _ in range(12):
        user = UserFactory()
        connect_calendar(user)
        GroupMemberFactory(group=circle.group, user=user)
    large = publish_poll(circle, django_capture_on_commit_callbacks, days=10)
    assert large.options.count() > small.options.count()
    for invitation in large.invitations.select_related("invitee")[:8]:
        poll_vote(poll=large, voter=invitation.invitee, answers=_answers(large, YES, MAYBE, NO))

    def count(poll: MeetingPoll) -> int:
        with CaptureQueriesContext(connection) as queries:
            poll_grid(poll=poll_get(pk=poll.pk))
        return len(queries)

    assert count(small) == count(large)
