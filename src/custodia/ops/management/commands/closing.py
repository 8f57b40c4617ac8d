"""`custodia closing purge`: purge closed businesses whose grace period is over, now.

The same work the daily retention run does as its rule `closed-businesses`
(lifecycle/retention.py, tenancy/closing.py): one business at a time, each in one transaction,
then its keys destroyed. Safe to run again at any time, also after being killed half-way.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from custodia.tenancy.closing import closing_work, do_purge_closed_businesses


class Command(BaseCommand):
    help = "Closed businesses: `purge` those past their grace period now, or `list` what is due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["purge", "list"])

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "list":
                for work in closing_work(timezone.now()):
                    step = "purge" if work.step == "purge" else "destroy keys"
                    self.stdout.write(f"{work.business_id}  {step}")
                return
            purged = do_purge_closed_businesses()
        except DatabaseError as exc:
            raise CommandError(f"The purge could not run: {type(exc).__name__}.") from None
        for business_id in purged:
            self.stdout.write(f"purged {business_id}")
        self.stdout.write(f"{len(purged)} closed business(es) purged.")
