"""Writes for mentoring groups: the membership rules, and the CSV import programme
admins use to create many groups at once."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.models import Membership, Program, Role, User
from apps.accounts.selectors import admin_programs
from apps.mentoring.models import GroupMember, MentoringGroup

MENTOR_ROLES = (Role.MENTOR, Role.STAFF)
CSV_COLUMNS = ("group", "kind", "email", "role")
MAX_IMPORT_ROWS = 5000


def group_member_errors(
    *, program: Program, kind: str, members: Iterable[tuple[User, str]]
) -> list[str]:
    """What is wrong with a group's members, as sentences; empty when it is fine.

    A pair is one mentor and one mentee; a circle has at least one mentor and one
    mentee. Mentors are mentors (or staff) of the programme; mentees its participants.
    One query."""
    members = list(members)
    roles: dict[int, set[str]] = defaultdict(set)
    for user_id, role in Membership.objects.filter(
        program=program, user__in=[u for u, _ in members]
    ).values_list("user_id", "role"):
        roles[user_id].add(role)
    errors = []
    for user, role in members:
        if role == GroupMember.Role.MENTOR and not roles[user.pk] & set(MENTOR_ROLES):
            errors.append(f"{user.email} is not a mentor of {program}: add them there first.")
        if role == GroupMember.Role.MENTEE and Role.PARTICIPANT not in roles[user.pk]:
            errors.append(f"{user.email} is not a participant of {program}: add them there first.")
    mentors = sum(1 for _, role in members if role == GroupMember.Role.MENTOR)
    mentees = len(members) - mentors
    if len({u.pk for u, _ in members}) != len(members):
        errors.append("Each person can be in a group only once.")
    if kind == MentoringGroup.Kind.PAIR and (mentors, mentees) != (1, 1):
        errors.append(
            f"A pair has exactly one mentor and one mentee (this one has {mentors} and {mentees})."
        )
    if kind == MentoringGroup.Kind.CIRCLE and (mentors < 1 or mentees < 1):
        errors.append("A circle needs at least one mentor and one mentee.")
    return errors


def _require_program_admin(program: Program, actor: User) -> None:
    if not admin_programs(user=actor).filter(pk=program.pk).exists():
        raise PermissionDenied("Only the programme's administrators manage its groups.")


def group_save(
    *,
    program: Program,
    name: str,
    kind: str,
    members: list[tuple[User, str]],
    actor: User,
) -> MentoringGroup:
    """Create a group, or replace the members of the programme's group of that name."""
    _require_program_admin(program, actor)
    errors = group_member_errors(program=program, kind=kind, members=members)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        group, _ = MentoringGroup.objects.update_or_create(
            program=program, name=name, defaults={"kind": kind}
        )
        GroupMember.objects.filter(group=group).exclude(user__in=[u for u, _ in members]).delete()
        for user, role in members:
            GroupMember.objects.update_or_create(group=group, user=user, defaults={"role": role})
    return group


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def groups_import(*, program: Program, csv_text: str, actor: User) -> ImportResult:
    """Create or update groups from CSV with the columns group, kind, email, role
    (kind: pair or circle; role: mentor or mentee). People join the groups they are
    listed in; nobody is removed. All or nothing: with any error nothing is saved, and
    every error names its line."""
    _require_program_admin(program, actor)
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff")))
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        result.errors.append(
            f"The first line must name the columns {', '.join(CSV_COLUMNS)}; "
            f"missing: {', '.join(missing)}."
        )
        return result
    reader.fieldnames = header
    rows = [(number, row) for number, row in enumerate(reader, start=2)]
    if len(rows) > MAX_IMPORT_ROWS:
        result.errors.append(f"Import at most {MAX_IMPORT_ROWS} lines at a time.")
        return result
    emails = {(row.get("email") or "").strip().lower() for _, row in rows}
    users = {u.email.lower(): u for u in User.objects.filter(email__in=emails)}
    existing = {
        g.name: g
        for g in MentoringGroup.objects.filter(
            program=program, name__in={(r.get("group") or "").strip() for _, r in rows}
        ).prefetch_related("memberships__user")
    }
    planned: dict[str, dict[int, tuple[User, str]]] = {}
    kinds: dict[str, str] = {}
    for number, row in rows:
        name = (row.get("group") or "").strip()
        kind = (row.get("kind") or "").strip().lower() or MentoringGroup.Kind.CIRCLE
        email = (row.get("email") or "").strip().lower()
        role = (row.get("role") or "").strip().lower()
        if not name:
            result.errors.append(f"Line {number}: the group name is empty.")
            continue
        if kind not in MentoringGroup.Kind.values:
            result.errors.append(f"Line {number}: kind must be pair or circle, not “{kind}”.")
            continue
        if role not in GroupMember.Role.values:
            result.errors.append(f"Line {number}: role must be mentor or mentee, not “{role}”.")
            continue
        user = users.get(email)
        if user is None:
            result.errors.append(
                f"Line {number}: nobody has the email “{email}”: add them to Convene first."
            )
            continue
        if kinds.setdefault(name, kind) != kind:
            result.errors.append(f"Line {number}: “{name}” is listed both as pair and circle.")
            continue
        if name not in planned:
            group = existing.get(name)
            planned[name] = (
                {m.user_id: (m.user, m.role) for m in group.memberships.all()} if group else {}
            )
        planned[name][user.pk] = (user, role)
    for name, members in planned.items():
        for error in group_member_errors(
            program=program, kind=kinds[name], members=members.values()
        ):
            result.errors.append(f"Group “{name}”: {error}")
    if result.errors:
        return result
    with transaction.atomic():
        for name, members in planned.items():
            group, created = MentoringGroup.objects.update_or_create(
                program=program, name=name, defaults={"kind": kinds[name]}
            )
            GroupMember.objects.bulk_create(
                [GroupMember(group=group, user=user, role=role) for user, role in members.values()],
                update_conflicts=True,
                unique_fields=["group", "user"],
                update_fields=["role"],
            )
            (result.created if created else result.updated).append(name)
    return result


def demo_group_ensure(*, program: Program, people: dict[str, User], **kwargs: Any) -> None:
    """`seed_demo`'s mentoring circle: the first mentor and the three participants."""
    group, created = MentoringGroup.objects.get_or_create(
        program=program, name="Career circle", defaults={"kind": MentoringGroup.Kind.CIRCLE}
    )
    if created:
        GroupMember.objects.create(
            group=group, user=people["mentor1"], role=GroupMember.Role.MENTOR
        )
        for local in ("student1", "student2", "student3"):
            GroupMember.objects.create(
                group=group, user=people[local], role=GroupMember.Role.MENTEE
            )
