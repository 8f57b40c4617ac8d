"""`custodia export`: a whole-business export for an operator, and checking one (docs/export.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from custodia.audit.chain import key_id
from custodia.core.actor import acting_as
from custodia.core.permissions import Role
from custodia.lifecycle.export.actions import do_export_to_file
from custodia.lifecycle.export.archive import (
    ExportError,
    install_public_key,
    load_public_key,
    public_key_pem,
    verify_archive,
)
from custodia.tenancy.actors import console_actors, find_user


class Command(BaseCommand):
    help = "Exports: create (a business's data into a file), verify FILE, public-key."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        create = commands.add_parser(
            "create", help="export a whole business into a signed zip, acting as one of its owners"
        )
        create.add_argument("--business", required=True, help="the business's slug")
        create.add_argument("--email", required=True, help="the login email of an owner")
        create.add_argument("--out", required=True, type=Path, help="the zip file to write")
        verify = commands.add_parser("verify", help="check an export's signature and every sum")
        verify.add_argument("file", type=Path)
        verify.add_argument(
            "--public-key", type=Path, help="a PEM public key (default: this install's)"
        )
        commands.add_parser("public-key", help="print this install's export signing key (PEM)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "handle_" + options["command"].replace("-", "_"))(options)
        except ExportError as exc:
            raise CommandError(str(exc)) from None

    def handle_create(self, options: dict[str, Any]) -> None:
        out: Path = options["out"]
        if out.exists():
            raise CommandError(f"{out} exists: give a new file.")
        user = find_user(options["email"])
        try:
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror}.") from None
        try:
            with os.fdopen(descriptor, "wb") as handle, transaction.atomic():
                [actor] = console_actors(user, options["business"])
                if actor.role != Role.OWNER:
                    raise CommandError(
                        f"{user.email} is a {actor.role} of {options['business']}, not an owner."
                    )
                with acting_as(actor):
                    built = do_export_to_file(actor=actor, out=handle, progress=self._progress)
        except (CommandError, ExportError, PermissionDenied, ValidationError) as exc:
            out.unlink(missing_ok=True)
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(message) from None
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        sys.stderr.write("\n")
        rows = ", ".join(f"{name} {count}" for name, count in built.rows.items())
        self.stdout.write(f"wrote {out} ({rows}); check it with `custodia export verify {out}`")

    def _progress(self, done: int, total: int, stage: str) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{stage}: {done:,}/{total:,} rows   ")

    def handle_verify(self, options: dict[str, Any]) -> None:
        public = load_public_key(options["public_key"]) if options["public_key"] else None
        manifest = verify_archive(options["file"], public)
        self.stdout.write(
            f"{options['file']}: signature by key {manifest['signing_key_id']} and "
            f"{len(manifest['files'])} files verified ({manifest['kind']} export of "
            f"{manifest['created_at']})."
        )

    def handle_public_key(self, options: dict[str, Any]) -> None:
        public = install_public_key()
        self.stdout.write(f"# key id {key_id(public)}")
        self.stdout.write(public_key_pem(public).decode().rstrip())
