"""Admin for mentoring groups (with a CSV import), polls, options and votes, scoped
to the programmes a staff user administers. Actions go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from apps.accounts.admin import ScopedAdmin, ScopedInline
from apps.accounts.selectors import admin_programs
from apps.accounts.types import request_user
from apps.appointments.models import Appointment
from apps.mentoring.forms import GroupImportForm
from apps.mentoring.groups import group_member_errors, groups_import
from apps.mentoring.models import (
    GroupMember,
    MeetingPoll,
    MentoringGroup,
    PollInvitation,
    PollOption,
    Vote,
)
from apps.mentoring.services import poll_cancel, poll_close, poll_remind


class GroupMemberFormSet(BaseInlineFormSet):
    """Checks the whole group (pair or circle, programme roles) with the same rules as
    the CSV import."""

    def clean(self) -> None:
        super().clean()
        group = self.instance
        if any(self.errors) or not getattr(group, "program_id", None):
            return
        members = [
            (form.cleaned_data["user"], form.cleaned_data["role"])
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("user")
        ]
        errors = group_member_errors(program=group.program, kind=group.kind, members=members)
        if errors:
            raise ValidationError(errors)


class GroupMemberInline(ScopedInline):
    model = GroupMember
    formset = GroupMemberFormSet
    autocomplete_fields = ["user"]
    fields = ["user", "role"]
    extra = 2


@admin.register(MentoringGroup)
class MentoringGroupAdmin(ScopedAdmin):
    list_display = ["name", "kind", "program", "member_count", "last_met", "open_polls"]
    list_filter = ["kind", "is_active", "program__organization", "program"]
    search_fields = ["name", "memberships__user__email", "memberships__user__full_name"]
    list_select_related = ["program"]
    inlines = [GroupMemberInline]
    change_list_template = "mentoring/admin/group_change_list.html"

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[MentoringGroup]:
        return MentoringGroup.objects.filter(program__in=admin_programs(user=request_user(request)))

    def get_queryset(self, request: HttpRequest) -> QuerySet[MentoringGroup]:
        # "Last met": the latest past appointment whose host and an attendee are both
        # in the group (a pair's own bookings as well as finalised polls).
        met = Appointment.objects.filter(
            host__group_memberships__group=OuterRef("pk"),
            attendees__group_memberships__group=OuterRef("pk"),
            status__in=[
                Appointment.Status.APPROVED,
                Appointment.Status.STARTED,
                Appointment.Status.COMPLETED,
            ],
            start__lt=timezone.now(),
        ).order_by("-start")
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=Count("memberships", distinct=True),
                open_total=Count(
                    "polls", filter=Q(polls__status=MeetingPoll.Status.OPEN), distinct=True
                ),
                last_met_at=Subquery(met.values("start")[:1]),
            )
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "program" and not request.user.is_superuser:
            kwargs["queryset"] = admin_programs(user=request_user(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj: Any) -> int:
        return int(obj.member_total)

    @admin.display(description="Last met", ordering="last_met_at")
    def last_met(self, obj: Any) -> str:
        if obj.last_met_at is None:
            return "Not yet"
        return timezone.localtime(obj.last_met_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Open polls", ordering="open_total")
    def open_polls(self, obj: Any) -> int:
        return int(obj.open_total)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="mentoring_mentoringgroup_import",
            )
        ]
        return custom + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Create or update groups from a CSV file, all or nothing."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        programs = admin_programs(user=request_user(request))
        form = GroupImportForm(request.POST or None, request.FILES or None, programs=programs)
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            result = groups_import(
                program=form.cleaned_data["program"],
                csv_text=form.cleaned_data["file"],
                actor=request_user(request),
            )
            if not result.errors:
                messages.success(
                    request,
                    f"Imported: {len(result.created)} groups created, "
                    f"{len(result.updated)} updated.",
                )
                return redirect("admin:mentoring_mentoringgroup_changelist")
            errors = result.errors
        return TemplateResponse(
            request,
            "mentoring/admin/import.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Import mentoring groups from CSV",
                "form": form,
                "import_errors": errors,
            },
        )


class PollOptionInline(ScopedInline):
    model = PollOption
    fields = readonly_fields = ("start", "end", "known_free", "added_by_mentor")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PollInvitationInline(ScopedInline):
    model = PollInvitation
    # Never the token hash: it is of no use to anyone reading the admin.
    fields = readonly_fields = ("invitee", "answered_at", "reminded_at", "revoked_at")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _run(request: HttpRequest, queryset: QuerySet[MeetingPoll], action: Any, done: str) -> None:
    count = 0
    for poll in queryset:
        try:
            action(poll=poll, actor=request_user(request))
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, f"{poll}: {' '.join(getattr(error, 'messages', [str(error)]))}")
        else:
            count += 1
    if count:
        messages.success(request, f"{count} poll{'s' if count != 1 else ''} {done}.")


@admin.register(MeetingPoll)
class MeetingPollAdmin(ScopedAdmin):
    list_display = ["title", "group", "status", "deadline", "option_count", "created_by"]
    list_filter = ["status", "group__program"]
    search_fields = ["title", "group__name", "created_by__email"]
    list_select_related = ["group", "created_by"]
    readonly_fields = [
        "group",
        "created_by",
        "status",
        "time_zone",
        "date_from",
        "date_to",
        "day_start",
        "day_end",
        "required",
        "published_at",
        "closed_at",
        "reminded_at",
        "final_option",
        "appointment",
        "created_at",
    ]
    fields = ["title", "description", "location", "duration_minutes", "deadline", *readonly_fields]
    inlines = [PollOptionInline, PollInvitationInline]
    actions = ["close", "cancel", "remind"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[MeetingPoll]:
        return MeetingPoll.objects.filter(
            group__program__in=admin_programs(user=request_user(request))
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[MeetingPoll]:
        return super().get_queryset(request).annotate(option_total=Count("options"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # mentors create polls on the site, where slots are proposed

    @admin.display(description="Options", ordering="option_total")
    def option_count(self, obj: Any) -> int:
        return int(obj.option_total)

    @admin.action(description="Close the selected polls")
    def close(self, request: HttpRequest, queryset: QuerySet[MeetingPoll]) -> None:
        _run(request, queryset, poll_close, "closed")

    @admin.action(description="Cancel the selected polls")
    def cancel(self, request: HttpRequest, queryset: QuerySet[MeetingPoll]) -> None:
        _run(request, queryset, poll_cancel, "canceled")

    @admin.action(description="Remind invitees who have not answered")
    def remind(self, request: HttpRequest, queryset: QuerySet[MeetingPoll]) -> None:
        _run(request, queryset, poll_remind, "sent reminders")


@admin.register(PollOption)
class PollOptionAdmin(ScopedAdmin):
    list_display = ["poll", "start", "end", "known_free", "added_by_mentor"]
    list_filter = ["poll__group__program"]
    list_select_related = ["poll"]
    readonly_fields = ["poll", "start", "end", "known_free", "added_by_mentor"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[PollOption]:
        return PollOption.objects.filter(
            poll__group__program__in=admin_programs(user=request_user(request))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Vote)
class VoteAdmin(ScopedAdmin):
    list_display = ["voter", "option", "answer", "updated_at"]
    list_filter = ["answer", "option__poll__group__program"]
    search_fields = ["voter__email", "option__poll__title"]
    list_select_related = ["voter", "option__poll"]
    readonly_fields = ["voter", "option", "answer", "updated_at"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Vote]:
        return Vote.objects.filter(
            option__poll__group__program__in=admin_programs(user=request_user(request))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invitees answer for themselves

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
