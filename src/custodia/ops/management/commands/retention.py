"""`custodia retention`: the retention policy (show) and its enforcement now (run)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia.lifecycle import retention


class Command(BaseCommand):
    help = "Retention policy: show what is kept and for how long; run deletes what is due now."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("show", help="the policy with this installation's settings")
        run = commands.add_parser("run", help="delete what is past its time (the daily run)")
        run.add_argument(
            "--only", action="append", metavar="RULE", help="one rule (repeatable); see `show`"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rules = retention.policy()
        if options["command"] == "show":
            for rule in rules:
                self.stdout.write(f"{rule.key:<22} {rule.what}\n{'':<22} kept: {rule.kept}")
            return
        only = set(options["only"]) if options["only"] else None
        unknown = (only or set()) - {rule.key for rule in rules}
        if unknown:
            raise CommandError(
                f"No retention rule named {', '.join(sorted(unknown))}; `custodia retention show`"
                " lists them."
            )
        outcomes = retention.enforce(only=only)
        for outcome in outcomes:
            state = f"FAILED: {outcome.error}" if outcome.error else f"removed {outcome.removed}"
            self.stdout.write(f"{outcome.key:<22} {state}")
        failed = [outcome.key for outcome in outcomes if outcome.error]
        if failed:
            raise CommandError(f"{len(failed)} rule(s) failed: {', '.join(failed)}")
