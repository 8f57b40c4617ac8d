"""`custodia backup`: run, list, verify, restore, prune, drill (docs/backups.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupError, BackupStore
from custodia.ops import backup_pgbackrest
from custodia.ops.maintenance import run_daily

logger = logging.getLogger(__name__)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    raise AssertionError


class Command(BaseCommand):
    help = (
        "Encrypted backups: run, list, verify ID, restore ID, prune, drill, maintain; "
        "pgbackrest ACTION (the production engine)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dir", type=Path, help="the backup directory (default CUSTODIA_BACKUP_DIR)"
        )
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("run", help="back the database up now (encrypted, signed manifest)")
        commands.add_parser("list", help="the backups, oldest first, and any problem seen")
        verify = commands.add_parser(
            "verify", help="check a backup's signature and checksum (with --identity: decrypt)"
        )
        verify.add_argument("id")
        verify.add_argument("--identity", type=Path, help="an age identity file")
        restore = commands.add_parser(
            "restore", help="restore a backup into a new database, checked against its manifest"
        )
        restore.add_argument("id")
        restore.add_argument("--into", required=True, help="the new database's name")
        restore.add_argument("--identity", type=Path, help="an age identity file")
        prune = commands.add_parser(
            "prune", help="delete backups older than CUSTODIA_BACKUP_RETENTION_DAYS"
        )
        prune.add_argument("--dry-run", action="store_true", help="say what would go")
        drill = commands.add_parser(
            "drill", help="restore the newest backup into a scratch database and check it"
        )
        drill.add_argument("--identity", type=Path, help="an age identity file")
        maintain = commands.add_parser(
            "maintain", help="run and prune now, then once a day (`custodia serve` runs it)"
        )
        maintain.add_argument("--once", action="store_true", help="one round, then exit")
        backup_pgbackrest.add_parser(commands)

    def handle(self, *args: Any, **options: Any) -> None:
        engine_command = options["command"] in backup_pgbackrest.ENGINE_COMMANDS
        if options["command"] == "pgbackrest" or (
            settings.BACKUP_ENGINE == "pgbackrest" and engine_command
        ):
            backup_pgbackrest.handle(self, options)
            return
        store = BackupStore(options["dir"])
        try:
            getattr(self, "_" + options["command"])(store, options)
        except BackupError as exc:
            raise CommandError(str(exc)) from None

    def _warn_development_key(self) -> None:
        if backups.uses_development_key():
            identity = settings.BACKUP_DEV_IDENTITY_FILE
            self.stderr.write(
                "Warning: CUSTODIA_BACKUP_RECIPIENTS is not set, so backups are encrypted to a "
                f"development key whose identity is on this host ({identity}). In production, "
                "give recipients whose identities are kept elsewhere."
            )

    def _run(self, store: BackupStore, options: dict[str, Any]) -> None:
        self._warn_development_key()
        backup = backups.run_backup(store)
        manifest = backup.manifest
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            f"backup {backup.id}: {_size(manifest['dump']['size'])}, "
            f"{len(manifest['tables'])} tables, {rows:,} rows, in {store.directory}"
        )

    def _list(self, store: BackupStore, options: dict[str, Any]) -> None:
        found = store.backups()
        if not found:
            self.stdout.write(f"No backups in {store.directory}.")
        for backup in found:
            if backup.problem is not None:
                self.stdout.write(f"{backup.id}  PROBLEM: {backup.problem}")
                continue
            manifest = backup.manifest
            self.stdout.write(
                f"{backup.id}  {manifest['engine']}  {_size(manifest['dump']['size']):>11}  "
                f"{sum(manifest['tables'].values()):>10,} rows  {manifest['database']}"
            )

    def _verify(self, store: BackupStore, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        identity = options["identity"]
        backups.verify_backup(backup, backups.load_identity(identity) if identity else None)
        checked = "signature, checksum and archive" if identity else "signature and checksum"
        self.stdout.write(f"backup {backup.id}: {checked} OK")

    def _restore(self, store: BackupStore, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        identities = backups.default_identity(options["identity"])
        counts = backups.restore_backup(backup, identities, options["into"])
        self.stdout.write(
            f"backup {backup.id} restored into {options['into']}: {len(counts)} tables, "
            f"{sum(counts.values()):,} rows, as its manifest says"
        )

    def _prune(self, store: BackupStore, options: dict[str, Any]) -> None:
        result = backups.prune(store, dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        for backup in result.deleted:
            self.stdout.write(f"{verb} {backup.id}")
        for backup in result.unsure:
            self.stderr.write(f"kept {backup.id}: {backup.problem}; check it by hand")
        self.stdout.write(
            f"{len(result.deleted)} {verb}, {len(result.kept)} kept "
            f"(retention {settings.BACKUP_RETENTION_DAYS} days)"
        )

    def _maintain(self, store: BackupStore, options: dict[str, Any]) -> None:
        """Beside the server (`custodia serve`): a backup and a prune at start, then daily."""
        backups.recipients()  # production without recipients stops here, before any round

        def step(command: str) -> Any:
            def run() -> None:
                try:
                    getattr(self, f"_{command}")(store, {"dry_run": False})
                except BackupError as exc:
                    raise CommandError(str(exc)) from None

            return run

        run_daily("backups", [step("run"), step("prune")], once=options["once"], logger=logger)

    def _drill(self, store: BackupStore, options: dict[str, Any]) -> None:
        result = backups.drill(store, backups.default_identity(options["identity"]))
        if not result.ok:
            raise CommandError(f"restore drill of {result.backup_id} FAILED: {result.detail}")
        self.stdout.write(f"restore drill of {result.backup_id}: OK, {result.detail}")
