"""Reads for accounts: who belongs where, and what an admin may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts.models import (
    Membership,
    Organization,
    OrganizationDomain,
    Program,
    Role,
    User,
)


def user_memberships(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user, program__is_active=True)
        .select_related("program__organization")
        .order_by("program__organization__name", "program__name", "role")
    )


def admin_programs(*, user: User) -> QuerySet[Program]:
    """Programmes a staff user may administer in the Django admin.

    Superusers see everything; an organization admin sees their organization's
    programmes; a programme admin sees the programmes they administer.
    """
    programs = Program.objects.all()
    if user.is_superuser:
        return programs
    if not user.is_active or not user.is_staff:
        return programs.none()
    return programs.filter(
        Q(organization_id=user.managed_organization_id)
        | Q(memberships__user=user, memberships__role=Role.PROGRAM_ADMIN)
    ).distinct()


def admin_organizations(*, user: User) -> QuerySet[Organization]:
    if user.is_superuser:
        return Organization.objects.all()
    if not user.is_active or not user.is_staff or user.managed_organization_id is None:
        return Organization.objects.none()
    return Organization.objects.filter(pk=user.managed_organization_id)


def admin_users(*, user: User) -> QuerySet[User]:
    """People a staff user may see in the admin.

    Members of the programmes they administer, plus, for an organization admin, the
    people whose email is on the organization's domains (so they can be enrolled) and
    the organization's other admins. Never people of other organizations.
    """
    if user.is_superuser:
        return User.objects.all()
    visible = Q(memberships__program__in=admin_programs(user=user))
    if user.is_active and user.is_staff and user.managed_organization_id is not None:
        visible |= Q(managed_organization_id=user.managed_organization_id)
        domains = OrganizationDomain.objects.filter(
            organization_id=user.managed_organization_id
        ).values_list("domain", flat=True)
        for domain in domains:
            visible |= Q(email__iendswith=f"@{domain}")
    return User.objects.filter(visible).distinct()
