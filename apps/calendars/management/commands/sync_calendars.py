from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.calendars.models import CalendarAccount, SyncRun
from apps.calendars.providers.base import TransientError
from apps.calendars.sync import calendar_account_sync


class Command(BaseCommand):
    help = "Sync connected calendars now, in this process, and print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Full reconciling sync.")
        parser.add_argument("--user", metavar="EMAIL", help="Only this person's accounts.")
        parser.add_argument("--account", type=int, metavar="ID", help="Only this account.")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = CalendarAccount.objects.exclude(
            status=CalendarAccount.Status.DISCONNECTED
        ).select_related("owner")
        if options["user"]:
            accounts = accounts.filter(owner__email__iexact=options["user"])
        if options["account"]:
            accounts = accounts.filter(pk=options["account"])
        totals = {"accounts": 0, "failed": 0, "upserted": 0, "deleted": 0, "skipped": 0}
        for account in accounts:
            totals["accounts"] += 1
            try:
                runs = calendar_account_sync(
                    account=account, full=options["full"], trigger=SyncRun.Trigger.COMMAND
                )
            except TransientError as error:
                runs = []
                self.stderr.write(f"{account}: {error.message}")
            account.refresh_from_db()
            if account.status != CalendarAccount.Status.ACTIVE:
                totals["failed"] += 1
            for run in runs:
                totals["upserted"] += run.upserted
                totals["deleted"] += run.deleted
                totals["skipped"] += run.skipped
            self.stdout.write(
                f"{account} ({account.owner.email}): {account.get_status_display()}"
                + (f", {account.status_detail}" if account.status_detail else "")
                + f", {len(runs)} calendar(s)"
            )
        self.stdout.write(
            "Synced {accounts} account(s): {upserted} busy blocks upserted, {deleted} deleted, "
            "{skipped} malformed events skipped, {failed} account(s) not active.".format(**totals)
        )
