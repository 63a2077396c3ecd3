"""Admin for people, organizations and programmes.

Organization admins (staff users with `managed_organization`) and programme admins use
the same screens as superusers, scoped to their own data by `ScopedAdmin`. Their rights
come from that scope, so they need no Django model permissions.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest

from apps.accounts.models import (
    CalendarService,
    Membership,
    Organization,
    OrganizationDomain,
    Program,
    User,
)
from apps.accounts.selectors import admin_organizations, admin_programs, admin_users
from apps.accounts.types import request_user


def is_scoped_admin(user: Any) -> bool:
    """A staff user whose admin rights come from an organization or programme."""
    return bool(user.is_active and user.is_staff and not user.is_superuser)


def _limit_choices(db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    if not is_scoped_admin(request.user):
        return
    scopes = {Organization: admin_organizations, Program: admin_programs, User: admin_users}
    if selector := scopes.get(db_field.related_model):
        kwargs["queryset"] = selector(user=request_user(request))


class ScopedAdmin(admin.ModelAdmin):
    """Shows organization and programme admins only the rows of their scope."""

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if is_scoped_admin(request.user):
            queryset = queryset.filter(pk__in=self.scoped_queryset(request).values("pk"))
        return queryset

    def _allowed(self, request: HttpRequest, obj: Model | None) -> bool:
        user = request_user(request)
        if user.managed_organization_id is None and not admin_programs(user=user).exists():
            return False
        return obj is None or self.scoped_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        if is_scoped_admin(request.user):
            return self._allowed(request, None)
        return super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if is_scoped_admin(request.user):
            return self._allowed(request, obj)
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if is_scoped_admin(request.user):
            return self._allowed(request, obj)
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if is_scoped_admin(request.user):
            return self._allowed(request, None)
        return super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if is_scoped_admin(request.user):
            return self._allowed(request, obj)
        return super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _limit_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedInline(admin.TabularInline):
    """An inline on a scoped page: the page itself has already checked the scope."""

    extra = 0

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_scoped_admin(request.user) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_scoped_admin(request.user) or super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_scoped_admin(request.user) or super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_scoped_admin(request.user) or super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _limit_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OrganizationDomainInline(ScopedInline):
    model = OrganizationDomain
    extra = 1


@admin.register(Organization)
class OrganizationAdmin(ScopedAdmin):
    list_display = ["name", "slug", "domain_list", "program_count", "created_at"]
    search_fields = ["name", "slug", "domains__domain"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [OrganizationDomainInline]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return admin_organizations(user=request_user(request))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("domains")
            .annotate(program_total=Count("programs", distinct=True))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Organizations are created by global admins only.
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="Email domains")
    def domain_list(self, obj: Organization) -> str:
        return ", ".join(d.domain for d in obj.domains.all())

    @admin.display(description="Programmes", ordering="program_total")
    def program_count(self, obj: Any) -> int:
        return int(obj.program_total)


class MembershipInline(ScopedInline):
    model = Membership
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class ProgramAdminForm(forms.ModelForm):
    allowed_calendar_services = forms.MultipleChoiceField(
        label="Calendar services participants may connect",
        choices=CalendarService.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Program
        fields = ["allowed_calendar_services"]  # the rest come from the fieldsets


@admin.register(Program)
class ProgramAdmin(ScopedAdmin):
    form = ProgramAdminForm
    list_display = [
        "name",
        "organization",
        "is_active",
        "weekends_allowed",
        "earliest_start",
        "latest_end",
        "calendar_account_limit",
        "member_count",
    ]
    list_filter = ["organization", "is_active", "weekends_allowed"]
    search_fields = ["name", "slug", "organization__name"]
    prepopulated_fields = {"slug": ["name"]}
    list_select_related = ["organization"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["organization", "name", "slug", "description", "is_active"]}),
        (
            "Scheduling rules",
            {
                "fields": [
                    "weekends_allowed",
                    ("earliest_start", "latest_end"),
                    "minimum_notice",
                    "booking_horizon",
                    "slot_granularity_minutes",
                    ("buffer_before_minutes", "buffer_after_minutes"),
                    "tentative_is_busy",
                ],
                "description": "Day limits apply in each participant's own time zone.",
            },
        ),
        (
            "Calendar connections",
            {"fields": ["allowed_calendar_services", "calendar_account_limit", "sync_window_days"]},
        ),
    ]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Program]:
        return admin_programs(user=request_user(request))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Program]:
        return (
            super()
            .get_queryset(request)
            .annotate(member_total=Count("memberships__user", distinct=True))
        )

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj: Any) -> int:
        return int(obj.member_total)


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    list_display = ["user", "program", "role", "created_at"]
    list_filter = ["role", "program__organization", "program"]
    search_fields = ["user__email", "user__full_name", "program__name"]
    list_select_related = ["user", "program"]
    autocomplete_fields = ["user", "program"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return Membership.objects.filter(program__in=admin_programs(user=request_user(request)))


class UserAddForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name", "time_zone"]


@admin.register(User)
class UserAdmin(ScopedAdmin, DjangoUserAdmin):
    add_form = UserAddForm
    ordering = ["email"]
    list_display = [
        "email",
        "full_name",
        "time_zone",
        "is_staff",
        "managed_organization",
        "last_login",
    ]
    list_filter = [
        "is_staff",
        "is_superuser",
        "is_active",
        "managed_organization",
        "memberships__role",
    ]
    search_fields = ["email", "full_name"]
    list_select_related = ["managed_organization"]
    readonly_fields = ["last_login", "date_joined", "profile_completed_at"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name", "time_zone", "profile_completed_at"]}),
        (
            "Administration",
            {"fields": ["is_active", "is_staff", "managed_organization", "is_superuser", "groups"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "time_zone", "password1", "password2"],
            },
        ),
    ]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return admin_users(user=request_user(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Nobody promotes themselves or others beyond their own scope.
            fields += ["is_staff", "is_superuser", "managed_organization", "groups"]
        return fields
