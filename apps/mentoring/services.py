"""Writes for meeting polls: create (with proposals), edit options, publish, vote,
close, reopen, cancel, remind, personal links, and finalise into an appointment.

Every service is keyword-only, checks who may do it (PermissionDenied), checks the
poll's state (ValidationError with a sentence a person can act on), and runs in one
transaction. The mentors of a poll's group manage it; its invitees vote.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import admin_programs
from apps.appointments.models import Appointment, AppointmentTransition
from apps.appointments.outbox import outbox_enqueue
from apps.appointments.services import announce
from apps.mentoring import emails
from apps.mentoring.models import (
    GroupMember,
    MeetingPoll,
    MentoringGroup,
    PollInvitation,
    PollOption,
    Vote,
)
from apps.mentoring.selectors import poll_proposals, proposal_periods, token_hash
from apps.mentoring.signals import poll_finalized

Status = MeetingPoll.Status
MAX_RANGE_DAYS = 31
MAX_OPTIONS = 30
REMIND_BEFORE_DEADLINE = dt.timedelta(hours=24)


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def is_group_mentor(group: MentoringGroup, user: User | None) -> bool:
    return (
        user is not None
        and GroupMember.objects.filter(
            group=group, user=user, role=GroupMember.Role.MENTOR
        ).exists()
    )


def may_manage(poll: MeetingPoll, actor: User) -> bool:
    """The group's mentors run its polls; the programme's admins may step in (the
    admin's actions)."""
    return (
        is_group_mentor(poll.group, actor)
        or admin_programs(user=actor).filter(pk=poll.group.program_id).exists()
    )


def _require_mentor(poll: MeetingPoll, actor: User) -> None:
    if not may_manage(poll, actor):
        raise PermissionDenied("Only the group's mentors can manage this poll.")


def _locked(poll: MeetingPoll) -> MeetingPoll:
    return MeetingPoll.objects.select_for_update().select_related("group__program").get(pk=poll.pk)


def poll_create(
    *,
    group: MentoringGroup,
    actor: User,
    title: str,
    duration_minutes: int,
    date_from: dt.date,
    date_to: dt.date,
    day_start: dt.time | None = None,
    day_end: dt.time | None = None,
    required: int | None = None,
    deadline: dt.datetime | None = None,
    location: str = "",
    description: str = "",
    now: dt.datetime | None = None,
) -> MeetingPoll:
    """A draft poll with options proposed from everyone's availability (see
    `selectors.poll_proposals`). Dates and times of day are in the mentor's zone.
    The mentor reviews the options, then publishes."""
    if not is_group_mentor(group, actor):
        raise PermissionDenied("Only the group's mentors can create a poll for it.")
    now = now or timezone.now()
    zone = actor.zone
    errors: dict[str, str] = {}
    if date_to < date_from:
        errors["date_to"] = "The last day must be on or after the first day."
    elif (date_to - date_from).days >= MAX_RANGE_DAYS:
        errors["date_to"] = f"Choose at most {MAX_RANGE_DAYS} days, so the options stay few."
    if date_to < now.astimezone(zone).date():
        errors["date_to"] = "Choose days that are not all in the past."
    if day_start and day_end and day_end <= day_start:
        errors["day_end"] = "The latest time must be after the earliest time."
    if deadline is not None and deadline <= now:
        errors["deadline"] = "The deadline must be in the future, or leave it empty."
    if not 15 <= duration_minutes <= 480:
        errors["duration_minutes"] = "A meeting lasts between 15 minutes and 8 hours."
    if errors:
        raise ValidationError(errors)
    group = MentoringGroup.objects.select_related("program").get(pk=group.pk)
    members = list(
        GroupMember.objects.filter(group=group).exclude(user=actor).select_related("user")
    )
    if not members:
        raise ValidationError("This group has nobody to invite yet.")
    proposals = poll_proposals(
        program=group.program,
        mentor=actor,
        invitees=[m.user for m in members],
        duration=dt.timedelta(minutes=duration_minutes),
        periods=proposal_periods(
            date_from=date_from, date_to=date_to, day_start=day_start, day_end=day_end, zone=zone
        ),
        required=required,
        zone=zone,
        now=now,
    )
    with transaction.atomic():
        poll = MeetingPoll.objects.create(
            group=group,
            created_by=actor,
            title=title,
            description=description,
            location=location,
            duration_minutes=duration_minutes,
            time_zone=actor.time_zone,
            date_from=date_from,
            date_to=date_to,
            day_start=day_start,
            day_end=day_end,
            required=required,
            deadline=deadline,
        )
        PollOption.objects.bulk_create(
            PollOption(poll=poll, start=p.start, end=p.end, known_free=p.known_free)
            for p in proposals.options
        )
    return poll


def poll_option_add(*, poll: MeetingPoll, actor: User, start: dt.datetime) -> PollOption:
    """Add a time of the mentor's choosing to a draft poll."""
    _require_mentor(poll, actor)
    start = start.astimezone(dt.UTC)
    if start <= timezone.now():
        raise ValidationError("Choose a time in the future.")
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.DRAFT:
            raise ValidationError("Options can only be changed before the poll is published.")
        if poll.options.count() >= MAX_OPTIONS:
            raise ValidationError(f"A poll has at most {MAX_OPTIONS} options: remove one first.")
        if poll.options.filter(start=start).exists():
            raise ValidationError("That time is already an option.")
        return PollOption.objects.create(
            poll=poll, start=start, end=start + poll.duration, added_by_mentor=True
        )


def poll_option_remove(*, poll: MeetingPoll, actor: User, option_id: int) -> None:
    _require_mentor(poll, actor)
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.DRAFT:
            raise ValidationError("Options can only be changed before the poll is published.")
        poll.options.filter(pk=option_id).delete()


def poll_publish(*, poll: MeetingPoll, actor: User) -> MeetingPoll:
    """Open the poll and email every invitee their personal link."""
    _require_mentor(poll, actor)
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.DRAFT:
            raise ValidationError("This poll is already published.")
        if not poll.options.exists():
            raise ValidationError("Add at least one option before publishing.")
        if poll.deadline is not None and poll.deadline <= timezone.now():
            raise ValidationError("The deadline has passed: set a later one first.")
        poll = MeetingPoll.objects.select_related("group__program").get(pk=poll.pk)
        invitees = poll_invitees_for(poll)
        tokens = {user.pk: _new_token() for user in invitees}
        PollInvitation.objects.bulk_create(
            PollInvitation(poll=poll, invitee=user, token_hash=tokens[user.pk][1])
            for user in invitees
        )
        poll.status = Status.OPEN
        poll.published_at = timezone.now()
        poll.save(update_fields=["status", "published_at", "updated_at"])
        for user in invitees:
            emails.send_invitation(poll, user, token=tokens[user.pk][0])
    return poll


def poll_invitees_for(poll: MeetingPoll) -> list[User]:
    return [
        m.user
        for m in GroupMember.objects.filter(group_id=poll.group_id)
        .exclude(user_id=poll.created_by_id)
        .select_related("user")
    ]


def poll_vote(*, poll: MeetingPoll, voter: User, answers: Mapping[int, str]) -> None:
    """Record (or change) the voter's answers, one per option id. Invitees who are
    still members of the group vote while the poll is open."""
    invitation = PollInvitation.objects.filter(poll=poll, invitee=voter).first()
    member = GroupMember.objects.filter(group_id=poll.group_id, user=voter).exists()
    if invitation is None or not member:
        raise PermissionDenied("Only the poll's invitees can answer it.")
    unknown = [a for a in answers.values() if a not in Vote.Answer.values]
    if unknown:
        raise ValidationError("Answer each option with Yes, If need be or No.")
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.OPEN:
            raise ValidationError("This poll is closed: answers can no longer change.")
        option_ids = set(poll.options.values_list("pk", flat=True))
        if not set(answers) <= option_ids:
            raise ValidationError("Some of these options are no longer part of the poll.")
        # One statement for any number of options: insert, or update what was there.
        Vote.objects.bulk_create(
            [Vote(option_id=pk, voter=voter, answer=answer) for pk, answer in answers.items()],
            update_conflicts=True,
            unique_fields=["option", "voter"],
            update_fields=["answer", "updated_at"],
        )
        PollInvitation.objects.filter(pk=invitation.pk).update(answered_at=timezone.now())


def poll_close(*, poll: MeetingPoll, actor: User | None) -> MeetingPoll:
    """Stop voting. `actor=None` is the deadline (the periodic task), which also tells
    the mentor to pick a time."""
    if actor is not None:
        _require_mentor(poll, actor)
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.OPEN:
            raise ValidationError("Only an open poll can be closed.")
        poll.status = Status.CLOSED
        poll.closed_at = timezone.now()
        poll.save(update_fields=["status", "closed_at", "updated_at"])
        if actor is None:
            poll = MeetingPoll.objects.select_related("created_by").get(pk=poll.pk)
            emails.send_closed(poll)
    return poll


def poll_reopen(
    *, poll: MeetingPoll, actor: User, deadline: dt.datetime | None = None
) -> MeetingPoll:
    """Open a closed poll again; a deadline that has passed is replaced by `deadline`
    (or removed)."""
    _require_mentor(poll, actor)
    if deadline is not None and deadline <= timezone.now():
        raise ValidationError("The new deadline must be in the future.")
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.CLOSED:
            raise ValidationError("Only a closed poll can be reopened.")
        if deadline is not None or (poll.deadline and poll.deadline <= timezone.now()):
            poll.deadline = deadline
            poll.reminded_at = None
        poll.status = Status.OPEN
        poll.closed_at = None
        poll.save(update_fields=["status", "closed_at", "deadline", "reminded_at", "updated_at"])
    return poll


def poll_cancel(*, poll: MeetingPoll, actor: User) -> MeetingPoll:
    _require_mentor(poll, actor)
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status not in (Status.DRAFT, Status.OPEN, Status.CLOSED):
            raise ValidationError(
                "A finalised poll cannot be canceled: cancel its appointment instead."
            )
        was_published = poll.status != Status.DRAFT
        poll.status = Status.CANCELED
        poll.closed_at = poll.closed_at or timezone.now()
        poll.save(update_fields=["status", "closed_at", "updated_at"])
        if was_published:
            invited = [
                i.invitee for i in poll.invitations.select_related("invitee") if i.invitee != actor
            ]
            emails.send_canceled(poll, invited)
    return poll


def poll_remind(*, poll: MeetingPoll, actor: User | None) -> int:
    """Remind the invitees who have not answered; returns how many were reminded.

    Only a hash of each personal link is stored, so a reminder carries a new link
    (the previous one stops working). Invitees whose link was revoked get the sign-in
    link only: revoking was deliberate.
    """
    if actor is not None:
        _require_mentor(poll, actor)
    with transaction.atomic():
        poll = _locked(poll)
        if poll.status != Status.OPEN:
            raise ValidationError("Only an open poll sends reminders.")
        now = timezone.now()
        pending = list(
            poll.invitations.filter(answered_at__isnull=True)
            .filter(invitee__group_memberships__group_id=poll.group_id)
            .select_related("invitee")
        )
        for invitation in pending:
            token = None
            if invitation.revoked_at is None:
                token, invitation.token_hash = _new_token()
            invitation.reminded_at = now
            emails.send_invitation(poll, invitation.invitee, token=token, reminder=True)
        PollInvitation.objects.bulk_update(pending, ["token_hash", "reminded_at"])
        poll.reminded_at = now
        poll.save(update_fields=["reminded_at", "updated_at"])
    return len(pending)


def poll_link_revoke(*, invitation: PollInvitation, actor: User) -> PollInvitation:
    """Stop a personal link from working. The group's mentors and the invitee may."""
    if actor.pk != invitation.invitee_id and not is_group_mentor(invitation.poll.group, actor):
        raise PermissionDenied("Only the invitee or the group's mentors can revoke this link.")
    with transaction.atomic():
        invitation = PollInvitation.objects.select_for_update().get(pk=invitation.pk)
        invitation.revoked_at = invitation.revoked_at or timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def poll_link_renew(*, invitation: PollInvitation, actor: User) -> PollInvitation:
    """Replace a personal link with a new one and email it (the old link stops working)."""
    if not is_group_mentor(invitation.poll.group, actor):
        raise PermissionDenied("Only the group's mentors can send a new link.")
    with transaction.atomic():
        invitation = (
            PollInvitation.objects.select_for_update()
            .select_related("poll", "invitee")
            .get(pk=invitation.pk)
        )
        if invitation.poll.status != Status.OPEN:
            raise ValidationError("Links are only sent for open polls.")
        token, invitation.token_hash = _new_token()
        invitation.revoked_at = None
        invitation.save(update_fields=["token_hash", "revoked_at"])
        emails.send_invitation(invitation.poll, invitation.invitee, token=token)
    return invitation


def poll_finalize(*, poll: MeetingPoll, actor: User, option_id: int) -> Appointment:
    """Turn one option into an appointment of the whole group.

    The mentor who finalises hosts it (or, when a programme admin finalises, the
    mentor who created the poll); every other member attends. It goes through
    the appointments machinery: a transition is recorded, the outbox writes it into
    everyone's calendars after commit, webhooks hear of it (`announce`), invitees are
    told which option won (with an .ics for those without a connected calendar), and
    `poll_finalized` is sent on commit. Raises ValidationError when the mentor already
    has an appointment at that time (the database's exclusion constraint).
    """
    _require_mentor(poll, actor)
    try:
        with transaction.atomic():
            poll = _locked(poll)
            if poll.status not in (Status.OPEN, Status.CLOSED):
                raise ValidationError("Only an open or closed poll can be finalised.")
            option = poll.options.filter(pk=option_id).first()
            if option is None:
                raise ValidationError("Pick one of the poll's options.")
            host = actor if is_group_mentor(poll.group, actor) else poll.created_by
            attendees = [
                m.user
                for m in GroupMember.objects.filter(group_id=poll.group_id)
                .exclude(user=host)
                .select_related("user")
            ]
            if not attendees:
                raise ValidationError("The group has nobody else to meet.")
            # Serialises appointments of one host, as booking does.
            User.objects.select_for_update().filter(pk=host.pk).first()
            appointment = Appointment.objects.create(
                program=poll.group.program,
                host=host,
                start=option.start,
                end=option.end,
                title=poll.title,
                location=poll.location,
                notes=poll.description,
                status=Appointment.Status.APPROVED,
                booked_by=actor,
                booked_on_behalf=False,
            )
            appointment.attendees.set(attendees)
            AppointmentTransition.objects.create(
                appointment=appointment,
                from_status="",
                to_status=appointment.status,
                actor=actor,
                note=f"meeting poll “{poll.title}”"[:255],
            )
            outbox_enqueue(appointment)
            announce(appointment, change="created", actor=actor)
            poll.status = Status.FINALIZED
            poll.final_option = option
            poll.appointment = appointment
            poll.closed_at = poll.closed_at or timezone.now()
            poll.save(
                update_fields=["status", "final_option", "appointment", "closed_at", "updated_at"]
            )
            told = attendees if host == actor else [host, *attendees]
            emails.send_finalized(poll, option, appointment, told)
            finalized = poll
            transaction.on_commit(
                lambda: poll_finalized.send(
                    sender=MeetingPoll, poll=finalized, appointment=appointment
                )
            )
    except IntegrityError as error:
        raise ValidationError(
            "You already have an appointment that overlaps this time. Pick another "
            "option, or move or cancel that appointment first."
        ) from error
    return appointment


def polls_close_due(*, now: dt.datetime | None = None) -> int:
    """Close every open poll whose deadline has passed. Returns how many."""
    now = now or timezone.now()
    closed = 0
    for poll in MeetingPoll.objects.filter(status=Status.OPEN, deadline__lte=now):
        try:
            poll_close(poll=poll, actor=None)
        except ValidationError:
            continue  # closed by its mentor a moment ago
        closed += 1
    return closed


def polls_remind_due(*, now: dt.datetime | None = None) -> int:
    """Remind non-responders once, a day before a poll's deadline. Returns how many
    polls sent reminders."""
    now = now or timezone.now()
    due = MeetingPoll.objects.filter(
        status=Status.OPEN,
        reminded_at__isnull=True,
        deadline__gt=now,
        deadline__lte=now + REMIND_BEFORE_DEADLINE,
    )
    sent = 0
    for poll in due:
        try:
            poll_remind(poll=poll, actor=None)
        except ValidationError:
            continue
        sent += 1
    return sent
