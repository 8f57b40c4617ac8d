"""`custodia upgrade-embedded`: bring var/pgdata to the embedded server's major version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia import embedded


class Command(BaseCommand):
    help = (
        "Upgrade var/pgdata, made by an older PostgreSQL (e.g. 16 from the former pgserver"
        " wheel), to the embedded PostgreSQL with pg_upgrade; the old directory is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--old-bin",
            required=True,
            type=Path,
            help="the directory of the old major version's programs (postgres, pg_ctl, ...)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.EMBEDDED_DATABASE:
            raise CommandError(
                "DATABASE_URL is set: an external server is upgraded by its own tools"
                " (pg_upgrade or your provider's major-version upgrade)"
            )
        try:
            kept = embedded.upgrade_embedded(settings.EMBEDDED_PGDATA, options["old_bin"])
        except embedded.DatabaseServerError as exc:
            raise CommandError(str(exc)) from None
        major = embedded.embedded_major()
        self.stdout.write(
            f"{settings.EMBEDDED_PGDATA} is now PostgreSQL {major}; the old directory is {kept}"
            " (delete it once `custodia setup` and your checks pass)"
        )
