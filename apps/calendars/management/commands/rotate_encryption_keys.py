from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.calendars.models import CalendarAccount


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential under the first key of ENCRYPTION_KEYS. "
        "Run after prepending a new key; then the old key can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        with transaction.atomic():
            # Reading decrypts with whichever key matches; writing encrypts with the first.
            rows = CalendarAccount.objects.select_for_update().exclude(credentials="")
            for pk, credentials in rows.values_list("pk", "credentials").iterator():
                CalendarAccount.objects.filter(pk=pk).update(credentials=credentials)
                rotated += 1
        self.stdout.write(f"Re-encrypted the credentials of {rotated} calendar account(s).")
