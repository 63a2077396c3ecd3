"""What the mentoring pages share."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from apps.accounts.models import User
from apps.appointments.availability import SyncStatus


def status_note(user: User, status: SyncStatus | str | None) -> str:
    """Why someone's availability cannot be trusted, or "" when it can."""
    if status == SyncStatus.UNKNOWN:
        return f"{user} has not connected a calendar, so their availability is unknown."
    if status == SyncStatus.DISCONNECTED:
        return f"{user}'s calendar is disconnected, so their availability is unknown."
    if status == SyncStatus.STALE:
        return (
            f"{user}'s calendar has not synced recently, so their availability may be out of date."
        )
    return ""


def error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- groups ------------------------------------------------------------------------------
