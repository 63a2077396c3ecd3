"""Admin for calendar connections: status at a glance, errors, and "sync now".

Credentials never appear here: the field is not editable and is not listed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.admin import ScopedAdmin, ScopedInline
from apps.accounts.selectors import admin_users
from apps.accounts.types import request_user
from apps.calendars.models import (
    BusyBlock,
    Calendar,
    CalendarAccount,
    OutboundAllowRule,
    PushChannel,
    SyncRun,
)
from apps.calendars.push import push_enabled
from apps.calendars.tasks import sync_account_task

REALTIME_OFF = (
    "Real-time updates are off: PUBLIC_BASE_URL is not set to this site's public HTTPS "
    "address, so Google and Microsoft calendars are polled every few minutes instead "
    "of being synced as soon as they change."
)


def _accounts_in_scope(request: HttpRequest) -> QuerySet[CalendarAccount]:
    return CalendarAccount.objects.filter(owner__in=admin_users(user=request_user(request)))


class RealtimeNoticeMixin:
    """Says on the list when Google and Microsoft calendars are polled, not pushed."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        if not push_enabled():
            messages.warning(request, REALTIME_OFF)
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CalendarInline(ReadOnlyMixin, ScopedInline):
    model = Calendar
    fields = readonly_fields = (
        "name",
        "is_primary",
        "is_read_only",
        "is_deleted",
        "check_conflicts",
        "is_write_target",
        "last_synced_at",
    )
    can_delete = False
    show_change_link = True


@admin.register(CalendarAccount)
class CalendarAccountAdmin(RealtimeNoticeMixin, ScopedAdmin):
    list_display = [
        "identity",
        "owner",
        "provider",
        "source",
        "status",
        "last_synced_at",
        "consecutive_failures",
        "short_detail",
    ]
    list_filter = ["status", "provider", "source", "owner__memberships__program__organization"]
    search_fields = ["identity", "owner__email", "owner__full_name", "status_detail"]
    list_select_related = ["owner"]
    readonly_fields = [
        "owner",
        "provider",
        "source",
        "identity",
        "server_url",
        "status",
        "status_detail",
        "last_synced_at",
        "last_attempt_at",
        "consecutive_failures",
        "disconnect_notified_at",
        "created_at",
    ]
    exclude = ["credentials", "social_account"]
    inlines = [CalendarInline]
    actions = ["sync_now", "full_sync_now"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[CalendarAccount]:
        return _accounts_in_scope(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Admins never connect a calendar with someone else's credentials.
        return False

    @admin.display(description="Detail")
    def short_detail(self, obj: CalendarAccount) -> str:
        return obj.status_detail[:80]

    def _queue(
        self, request: HttpRequest, queryset: QuerySet[CalendarAccount], *, full: bool
    ) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        for account_id in ids:
            sync_account_task.delay(
                account_id=account_id, full=full, trigger=SyncRun.Trigger.MANUAL
            )
        self.message_user(request, f"Queued a sync of {len(ids)} account(s).", messages.SUCCESS)

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[CalendarAccount]) -> None:
        self._queue(request, queryset, full=False)

    @admin.action(description="Full reconciling sync now")
    def full_sync_now(self, request: HttpRequest, queryset: QuerySet[CalendarAccount]) -> None:
        self._queue(request, queryset, full=True)


@admin.register(Calendar)
class CalendarAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = [
        "name",
        "account",
        "owner",
        "is_primary",
        "check_conflicts",
        "is_write_target",
        "is_deleted",
        "last_synced_at",
    ]
    list_filter = ["check_conflicts", "is_write_target", "is_deleted", "account__provider"]
    search_fields = ["name", "owner__email", "account__identity"]
    list_select_related = ["account", "owner"]
    exclude = ["sync_state"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Calendar]:
        return Calendar.objects.filter(account__in=_accounts_in_scope(request))


@admin.register(BusyBlock)
class BusyBlockAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = ["owner", "calendar", "start", "end", "all_day", "kind"]
    list_filter = ["kind", "all_day"]
    search_fields = ["owner__email"]
    date_hierarchy = "start"
    list_select_related = ["owner", "calendar"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[BusyBlock]:
        return BusyBlock.objects.filter(calendar__account__in=_accounts_in_scope(request))


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = [
        "started_at",
        "account",
        "calendar",
        "trigger",
        "full",
        "outcome",
        "upserted",
        "deleted",
        "skipped",
        "requests",
        "duration",
    ]
    list_filter = ["outcome", "trigger", "full", "account__provider"]
    search_fields = ["account__identity", "account__owner__email", "error"]
    date_hierarchy = "started_at"
    list_select_related = ["account", "calendar"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[SyncRun]:
        return SyncRun.objects.filter(account__in=_accounts_in_scope(request))


@admin.register(PushChannel)
class PushChannelAdmin(RealtimeNoticeMixin, ReadOnlyMixin, ScopedAdmin):
    """Real-time update channels: when each expires and when it was last used."""

    list_display = [
        "calendar",
        "expires_at",
        "renewed_at",
        "last_notified_at",
        "notifications",
    ]
    list_filter = ["calendar__account__provider"]
    search_fields = ["calendar__account__identity", "calendar__owner__email"]
    list_select_related = ["calendar"]
    exclude = ["token_hash"]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[PushChannel]:
        return PushChannel.objects.filter(calendar__account__in=_accounts_in_scope(request))


@admin.register(OutboundAllowRule)
class OutboundAllowRuleAdmin(admin.ModelAdmin):
    """A security setting of the whole installation: superusers only."""

    list_display = ["value", "note", "created_at"]
    search_fields = ["value", "note"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser
