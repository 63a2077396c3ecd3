"""Create the demo organization, programme and people. Safe to run again."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Program, Role, User
from apps.accounts.services import membership_ensure, organization_ensure
from apps.accounts.signals import demo_seeded

DEMO_PASSWORD = "convene-demo"  # noqa: S105 - documented in the README, demo only
DEMO_DOMAIN = "demo.convene.test"

# (email local part, full name, time zone, role; None makes the superuser)
DEMO_PEOPLE: list[tuple[str, str, str, Role | None]] = [
    ("admin", "Ada Admin", "Europe/London", None),
    ("programs", "Priya Programme", "Europe/London", Role.PROGRAM_ADMIN),
    ("mentor1", "Marcus Mentor", "America/New_York", Role.MENTOR),
    ("mentor2", "Mei Mentor", "Asia/Singapore", Role.MENTOR),
    ("student1", "Sam Student", "Europe/Berlin", Role.PARTICIPANT),
    ("student2", "Sofia Student", "America/Los_Angeles", Role.PARTICIPANT),
    ("student3", "Sipho Student", "Africa/Johannesburg", Role.PARTICIPANT),
]


class Command(BaseCommand):
    help = "Create (or update) the demo organization, programme and people."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        organization = organization_ensure(
            name="Demo University", slug="demo-university", domains=[DEMO_DOMAIN]
        )
        program, _ = Program.objects.get_or_create(
            organization=organization,
            slug="career-advising",
            defaults={
                "name": "Career Advising",
                "description": "One-to-one career advising and mentoring.",
            },
        )
        people = {}
        for local, name, zone, role in DEMO_PEOPLE:
            email = f"{local}@{DEMO_DOMAIN}"
            user, created = User.objects.get_or_create(
                email=email,
                defaults={
                    "full_name": name,
                    "time_zone": zone,
                    "profile_completed_at": timezone.now(),
                    "is_staff": role in (None, Role.PROGRAM_ADMIN),
                    "is_superuser": role is None,
                    "managed_organization": organization if role == Role.PROGRAM_ADMIN else None,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            EmailAddress.objects.get_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
            if role is not None:
                membership_ensure(user=user, program=program, role=role)
            people[local] = user
        demo_seeded.send(sender=self.__class__, program=program, people=people)

        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"Log in at http://127.0.0.1:8000/ with password '{DEMO_PASSWORD}' as:")
        for local, name, _zone, role in DEMO_PEOPLE:
            label = role.label if role else "Superuser (/admin/)"
            self.stdout.write(f"  {local + '@' + DEMO_DOMAIN:<30} {name:<18} {label}")
