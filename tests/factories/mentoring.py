from __future__ import annotations

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.accounts.models import Program, Role, User
from apps.calendars.models import Calendar
from apps.mentoring.models import GroupMember, MentoringGroup
from tests.factories.accounts import MembershipFactory, ProgramFactory
from tests.factories.calendars import CalendarAccountFactory, CalendarFactory


class MentoringGroupFactory(DjangoModelFactory):
    class Meta:
        model = MentoringGroup

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Circle {n}")
    kind = MentoringGroup.Kind.CIRCLE


class GroupMemberFactory(DjangoModelFactory):
    class Meta:
        model = GroupMember

    group = factory.SubFactory(MentoringGroupFactory)
    role = GroupMember.Role.MENTEE


def make_group(
    program: Program,
    *,
    mentors: list[User],
    mentees: list[User],
    name: str = "Circle",
    kind: str = MentoringGroup.Kind.CIRCLE,
) -> MentoringGroup:
    """A group whose people are also members of the programme in the matching role."""
    group = MentoringGroupFactory(program=program, name=name, kind=kind)
    for user in mentors:
        MembershipFactory(user=user, program=program, role=Role.MENTOR)
        GroupMemberFactory(group=group, user=user, role=GroupMember.Role.MENTOR)
    for user in mentees:
        MembershipFactory(user=user, program=program, role=Role.PARTICIPANT)
        GroupMemberFactory(group=group, user=user, role=GroupMember.Role.MENTEE)
    return group


def connect_calendar(user: User, **account: object) -> Calendar:
    """A calendar that counts for availability: checked for conflicts, synced just now."""
    defaults: dict[str, object] = {"owner": user, "last_synced_at": timezone.now()}
    defaults.update(account)
    return CalendarFactory(account=CalendarAccountFactory(**defaults), check_conflicts=True)


def busy(user: User, start: object, end: object) -> None:
    """A busy block in the person's (first) connected calendar; never a title."""
    from apps.calendars.models import BusyBlock

    calendar = Calendar.objects.filter(owner=user).first()
    assert calendar is not None, f"{user} has no calendar"
    BusyBlock.objects.create(
        calendar=calendar,
        owner=user,
        external_event_id=f"event-{start}",
        instance_start=start,
        start=start,
        end=end,
    )
