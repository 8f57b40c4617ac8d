"""`custodia clients import`: clients from a CSV file, acting as a member (docs/import.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from custodia.clients.actions import ImportRefused, check_client_rows, do_import_clients
from custodia.clients.importing import MAX_BYTES, ImportFileError, RowError, parse_csv
from custodia.core.actor import acting_as
from custodia.core.closed import BusinessClosed
from custodia.tenancy.actors import console_actors, find_user

# Errors listed before the command stops listing them (the count is always given).
ERRORS_SHOWN = 50


class Command(BaseCommand):
    help = "Clients: import FILE (a CSV file; --dry-run checks it and writes nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, metavar="{import}")
        imports = commands.add_parser(
            "import", help="add the clients of a CSV file, all or none, acting as a member"
        )
        imports.add_argument("--business", required=True, help="the business's slug")
        imports.add_argument(
            "--email", required=True, help="the login email of an owner or manager"
        )
        imports.add_argument("file", type=Path, help="the CSV file (UTF-8, a header row)")
        imports.add_argument(
            "--dry-run", action="store_true", help="check every row and write nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        data = self._read(path)
        user = find_user(options["email"])
        try:
            rows, errors = parse_csv(data)
        except ImportFileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        try:
            with transaction.atomic():
                [actor] = console_actors(user, options["business"])
                with acting_as(actor):
                    errors += check_client_rows(rows, actor=actor)
                    if errors:
                        raise ImportRefused(errors)
                    if options["dry_run"]:
                        self.stdout.write(
                            f"{path}: {len(rows)} clients would be added (dry run: nothing "
                            "was written)."
                        )
                        return
                    created = do_import_clients(rows, actor=actor)
        except ImportRefused as exc:
            self._list_errors(path, exc.row_errors)
            raise CommandError(
                f"{path}: {len(exc.row_errors)} errors; nothing was imported."
            ) from None
        except BusinessClosed as exc:
            raise CommandError(f"{options['business']}: {exc}") from None
        except PermissionDenied:
            raise CommandError(
                f"{user.email} may not add clients to {options['business']}: "
                "an owner or manager can."
            ) from None
        except ValidationError as exc:
            raise CommandError(f"{path}: {'; '.join(exc.messages)}") from None
        self.stdout.write(f"{path}: imported {len(created)} clients into {options['business']}.")

    def _read(self, path: Path) -> bytes:
        try:
            with path.open("rb") as handle:
                # One byte more than allowed, so that parse_csv can say the file is too large.
                return handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None

    def _list_errors(self, path: Path, errors: list[RowError]) -> None:
        for error in errors[:ERRORS_SHOWN]:
            column = f", {error.column}" if error.column else ""
            self.stderr.write(f"{path}: row {error.row}{column}: {error.message}")
        if len(errors) > ERRORS_SHOWN:
            self.stderr.write(f"{path}: ... and {len(errors) - ERRORS_SHOWN} more errors")
