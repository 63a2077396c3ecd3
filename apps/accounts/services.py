"""Writes for accounts. Every function is keyword-only and transactional."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organization, OrganizationDomain, Program, Role, User
from apps.accounts.timezones import validate_time_zone


@transaction.atomic
def user_update_profile(*, user: User, full_name: str, time_zone: str) -> User:
    """Save a person's name and time zone; completing them completes the profile."""
    validate_time_zone(time_zone)
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    fields = ["full_name", "time_zone"]
    if user.profile_completed_at is None and user.full_name:
        user.profile_completed_at = timezone.now()
        fields.append("profile_completed_at")
    user.save(update_fields=fields)
    return user


@transaction.atomic
def organization_ensure(*, name: str, slug: str, domains: list[str]) -> Organization:
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    for domain in domains:
        OrganizationDomain.objects.get_or_create(
            domain=domain.lower(), defaults={"organization": organization}
        )
    return organization


@transaction.atomic
def membership_ensure(*, user: User, program: Program, role: Role) -> Membership:
    membership, _ = Membership.objects.get_or_create(user=user, program=program, role=role)
    return membership
