"""`custodia backup`: run, list, verify, restore, prune, drill, maintain, and the keystore's own
backups (`custodia backup keystore run|list|verify|restore|prune`), and the card vault's
(`custodia backup vault ...`, `custodia backup vault-keystore ...`); docs/backups.md."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupError, Store
from custodia.lifecycle.backups.drill import VAULT, drill_identity, weekly_drill_due
from custodia.lifecycle.backups.retention import database_policy, keystore_policy
from custodia.ops import backup_pgbackrest
from custodia.ops.maintenance import run_round

logger = logging.getLogger(__name__)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    raise AssertionError


def _keystore_parser(commands: Any, name: str, about: str, keystore: str, due: str) -> None:
    """`backup NAME run|list|verify|restore|prune`: a keystore's backups (the app's or the
    vault's), the same commands for both."""
    parser = commands.add_parser(name, help=about)
    actions = parser.add_subparsers(dest=name.replace("-", "_") + "_command", required=True)
    actions.add_parser("run", help=f"back {keystore} up now (under its lock)")
    actions.add_parser("list", help=f"{keystore}'s backups, oldest first")
    verify = actions.add_parser("verify", help=f"check a backup of {keystore}")
    verify.add_argument("id")
    verify.add_argument("--identity", type=Path, help="an age identity file")
    restore = actions.add_parser(
        "restore",
        help=f"put key files back into {keystore} (never over an existing file), or --into a "
        "new directory",
    )
    restore.add_argument("id")
    restore.add_argument("--identity", type=Path, help="an age identity file")
    restore.add_argument(
        "--business", action="append", help="only this business's keys (its id; repeatable)"
    )
    restore.add_argument("--into", type=Path, help="a new directory instead of the keystore")
    prune = actions.add_parser("prune", help=f"delete {keystore}'s backups {due}")
    prune.add_argument("--dry-run", action="store_true", help="say what would go")


class Command(BaseCommand):
    help = (
        "Encrypted backups: run, list, verify ID, restore ID, prune, drill, maintain; "
        "keystore run|list|verify|restore|prune; vault run|list|verify|restore|prune|drill and "
        "vault-keystore run|list|verify|restore|prune (the card vault's); pgbackrest ACTION "
        "(the production engine)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dir",
            type=Path,
            help="a local backup directory (default CUSTODIA_BACKUP_DIR, or the S3 bucket "
            "CUSTODIA_BACKUP_S3_BUCKET; for `keystore`, CUSTODIA_KEYSTORE_BACKUP_DIR)",
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
            "prune", help="delete backups past CUSTODIA_BACKUP_RETENTION_DAYS and its tiers"
        )
        prune.add_argument("--dry-run", action="store_true", help="say what would go")
        drill = commands.add_parser(
            "drill", help="restore the newest backup into a scratch database and check it"
        )
        drill.add_argument("--identity", type=Path, help="an age identity file")
        maintain = commands.add_parser(
            "maintain",
            help="one round: back up the database and the keystore, prune both, and drill if a "
            "week has passed (the job worker runs these as periodic tasks: lifecycle/tasks.py)",
        )
        # Accepted for the scripts of the days when `maintain` looped: a round is all it does.
        maintain.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
        _keystore_parser(
            commands,
            "keystore",
            "the keystore's own backups (short retention: docs/keys.md)",
            "the keystore",
            "past CUSTODIA_KEYSTORE_BACKUP_RETENTION_DAYS",
        )
        vault = commands.add_parser(
            "vault", help="the card vault's database backups (its own store and recipients)"
        )
        vactions = vault.add_subparsers(dest="vault_command", required=True)
        vactions.add_parser("run", help="back the vault's database up now")
        vactions.add_parser("list", help="the vault's backups, oldest first")
        vverify = vactions.add_parser("verify", help="check a vault backup")
        vverify.add_argument("id")
        vverify.add_argument("--identity", type=Path, help="an age identity file")
        vrestore = vactions.add_parser(
            "restore", help="restore a vault backup into a new database (the vault role's alone)"
        )
        vrestore.add_argument("id")
        vrestore.add_argument("--into", required=True, help="the new database's name")
        vrestore.add_argument("--identity", type=Path, help="an age identity file")
        vprune = vactions.add_parser("prune", help="delete vault backups past the retention")
        vprune.add_argument("--dry-run", action="store_true", help="say what would go")
        vdrill = vactions.add_parser(
            "drill", help="restore the newest vault backup into a scratch database and check it"
        )
        vdrill.add_argument("--identity", type=Path, help="an age identity file")
        _keystore_parser(
            commands,
            "vault-keystore",
            "the card vault keystore's backups (short retention)",
            "the vault's keystore",
            "past the keystore backups' retention",
        )
        backup_pgbackrest.add_parser(commands)

    def handle(self, *args: Any, **options: Any) -> None:
        engine_command = options["command"] in backup_pgbackrest.ENGINE_COMMANDS
        if options["command"] == "pgbackrest" or (
            settings.BACKUP_ENGINE == "pgbackrest" and engine_command
        ):
            backup_pgbackrest.handle(self, options)
            return
        try:
            if options["command"] == "keystore":
                store = backups.keystore_store(options["dir"])
                getattr(self, "_keystore_" + options["keystore_command"])(store, options)
            elif options["command"] == "vault":
                store = backups.vault_store(options["dir"])
                getattr(self, "_vault_" + options["vault_command"])(store, options)
            elif options["command"] == "vault-keystore":
                store = backups.vault_keystore_store(options["dir"])
                action = options["vault_keystore_command"]
                getattr(self, "_vault_keystore_" + action)(store, options)
            else:
                store = backups.database_store(options["dir"])
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

    def _run(self, store: Store, options: dict[str, Any]) -> None:
        self._warn_development_key()
        backup = backups.run_backup(store)
        manifest = backup.manifest
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            f"backup {backup.id}: {_size(manifest['dump']['size'])}, "
            f"{len(manifest['tables'])} tables, {rows:,} rows, in {store.label}"
        )

    def _list(self, store: Store, options: dict[str, Any]) -> None:
        found = store.backups()
        if not found:
            self.stdout.write(f"No backups in {store.label}.")
        for backup in found:
            if backup.problem is not None:
                self.stdout.write(f"{backup.id}  PROBLEM: {backup.problem}")
                continue
            manifest = backup.manifest
            self.stdout.write(
                f"{backup.id}  {manifest['engine']}  {_size(manifest['dump']['size']):>11}  "
                f"{sum(manifest['tables'].values()):>10,} rows  {manifest['database']}"
            )

    def _verify(self, store: Store, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        identity = options["identity"]
        backups.verify_backup(backup, backups.load_identity(identity) if identity else None)
        checked = "signature, checksum and archive" if identity else "signature and checksum"
        self.stdout.write(f"backup {backup.id}: {checked} OK")

    def _restore(self, store: Store, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        identities = backups.default_identity(options["identity"])
        counts = backups.restore_backup(backup, identities, options["into"])
        self.stdout.write(
            f"backup {backup.id} restored into {options['into']}: {len(counts)} tables, "
            f"{sum(counts.values()):,} rows, with its manifest's counts and checksums"
        )

    def _prune(self, store: Store, options: dict[str, Any]) -> None:
        policy = database_policy()
        self._report_prune(
            backups.prune(store, policy, dry_run=options["dry_run"]), policy, options
        )

    def _report_prune(self, result: Any, policy: Any, options: dict[str, Any]) -> None:
        verb = "would delete" if options["dry_run"] else "deleted"
        for backup in result.deleted:
            self.stdout.write(f"{verb} {backup.id}")
        for backup in result.unsure:
            self.stderr.write(f"kept {backup.id}: {backup.problem}; check it by hand")
        self.stdout.write(
            f"{len(result.deleted)} {verb}, {len(result.kept)} kept (retention {policy.describe()})"
        )

    def _drill(self, store: Store, options: dict[str, Any]) -> None:
        result = backups.drill(store, backups.default_identity(options["identity"]))
        if not result.ok:
            raise CommandError(f"restore drill of {result.backup_id} FAILED: {result.detail}")
        self.stdout.write(f"restore drill of {result.backup_id}: OK, {result.detail}")

    def _maintain(self, store: Store, options: dict[str, Any]) -> None:
        """One round by hand: backups and prunes, and the drill when a week has passed since the
        last one and an identity is at hand (the worker's periodic tasks do the same)."""
        backups.recipients()  # production without recipients stops here, before any round
        keystore_store = backups.keystore_store(options["dir"] and options["dir"] / "keystore")

        def step(run: Any) -> Any:
            def guarded() -> None:
                try:
                    run()
                except BackupError as exc:
                    raise CommandError(str(exc)) from None

            return guarded

        def weekly_drill() -> None:
            identities = drill_identity()
            if identities is not None and weekly_drill_due():
                self._drill_with(store, identities)

        if settings.BACKUP_ENGINE == "pgbackrest":
            # pgbackrest expires its own backups; the drill restores logical backups only.
            database_steps = [step(lambda: backup_pgbackrest.handle(self, {"command": "run"}))]
        else:
            database_steps = [
                step(lambda: self._run(store, {})),
                step(lambda: self._prune(store, {"dry_run": False})),
                step(weekly_drill),
            ]
        steps = [
            *database_steps,
            step(lambda: self._keystore_run(keystore_store, {})),
            step(lambda: self._keystore_prune(keystore_store, {"dry_run": False})),
        ]
        if settings.VAULT_BACKUPS:
            vault_store = backups.vault_store(options["dir"] and options["dir"] / "vault")
            vault_keys = backups.vault_keystore_store(
                options["dir"] and options["dir"] / "keystore" / "vault"
            )

            def weekly_vault_drill() -> None:
                identities = drill_identity()
                if identities is not None and weekly_drill_due(kind=VAULT):
                    self._vault_drill_with(vault_store, identities)

            steps += [
                step(lambda: self._vault_run(vault_store, {})),
                step(lambda: self._vault_prune(vault_store, {"dry_run": False})),
                step(weekly_vault_drill),
                step(lambda: self._vault_keystore_run(vault_keys, {})),
                step(lambda: self._vault_keystore_prune(vault_keys, {"dry_run": False})),
            ]
        run_round("backups", steps, logger=logger)

    def _drill_with(self, store: Store, identities: Any) -> None:
        result = backups.drill(store, identities)
        if not result.ok:
            raise CommandError(f"restore drill of {result.backup_id} FAILED: {result.detail}")
        self.stdout.write(f"restore drill of {result.backup_id}: OK")

    # --- The keystore's backups ---

    def _keystore_run(self, store: Store, options: dict[str, Any]) -> None:
        backup = backups.run_keystore_backup(store)
        self.stdout.write(
            f"keystore backup {backup.id}: {len(backup.manifest['businesses'])} businesses, "
            f"in {store.label} (kept {settings.KEYSTORE_BACKUP_RETENTION_DAYS} days)"
        )

    def _keystore_list(self, store: Store, options: dict[str, Any]) -> None:
        found = store.backups()
        if not found:
            self.stdout.write(f"No keystore backups in {store.label}.")
        for backup in found:
            if backup.problem is not None:
                self.stdout.write(f"{backup.id}  PROBLEM: {backup.problem}")
                continue
            self.stdout.write(
                f"{backup.id}  {len(backup.manifest['businesses']):>6} businesses  "
                f"{_size(backup.manifest['dump']['size']):>11}"
            )

    def _keystore_verify(self, store: Store, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        identity = options["identity"]
        held = backups.verify_keystore_backup(
            backup, backups.load_identity(identity) if identity else None
        )
        checked = "signature, checksum and key files" if identity else "signature and checksum"
        self.stdout.write(f"keystore backup {backup.id}: {checked} OK ({held} businesses)")

    def _keystore_restore(self, store: Store, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        result = backups.restore_keystore(
            backup,
            backups.default_identity(options["identity"]),
            businesses=options["business"],
            into=options["into"],
        )
        where = options["into"] or settings.KEYSTORE_DIR
        for name in result.kept:
            self.stderr.write(f"kept {name}: its key file exists in {where} (never overwritten)")
        self.stdout.write(f"restored the keys of {len(result.restored)} businesses into {where}")

    def _keystore_prune(self, store: Store, options: dict[str, Any]) -> None:
        policy = keystore_policy()
        self._report_prune(
            backups.prune(store, policy, dry_run=options["dry_run"]), policy, options
        )

    # --- The card vault's backups (its database and its keystore) ---

    def _warn_vault_key(self) -> None:
        if not settings.VAULT_BACKUP_RECIPIENTS:
            self._warn_development_key()

    def _vault_run(self, store: Store, options: dict[str, Any]) -> None:
        self._warn_vault_key()
        backup = backups.run_vault_backup(store)
        manifest = backup.manifest
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            f"vault backup {backup.id}: {_size(manifest['dump']['size'])}, "
            f"{len(manifest['tables'])} tables, {rows:,} rows, in {store.label}"
        )

    def _vault_list(self, store: Store, options: dict[str, Any]) -> None:
        self._list(store, options)

    def _vault_verify(self, store: Store, options: dict[str, Any]) -> None:
        self._verify(store, options)

    def _vault_restore(self, store: Store, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        identities = backups.default_identity(options["identity"])
        counts = backups.restore_vault_backup(backup, identities, options["into"])
        self.stdout.write(
            f"vault backup {backup.id} restored into {options['into']} (the vault role's "
            f"alone): {len(counts)} tables, {sum(counts.values()):,} rows, with its manifest's "
            "counts and checksums"
        )

    def _vault_prune(self, store: Store, options: dict[str, Any]) -> None:
        self._prune(store, options)

    def _vault_drill(self, store: Store, options: dict[str, Any]) -> None:
        result = backups.vault_drill(store, backups.default_identity(options["identity"]))
        if not result.ok:
            raise CommandError(f"vault restore drill of {result.backup_id} FAILED: {result.detail}")
        self.stdout.write(f"vault restore drill of {result.backup_id}: OK, {result.detail}")

    def _vault_drill_with(self, store: Store, identities: Any) -> None:
        result = backups.vault_drill(store, identities)
        if not result.ok:
            raise CommandError(f"vault restore drill of {result.backup_id} FAILED: {result.detail}")
        self.stdout.write(f"vault restore drill of {result.backup_id}: OK")

    def _vault_keystore_run(self, store: Store, options: dict[str, Any]) -> None:
        self._warn_vault_key()
        backup = backups.run_vault_keystore_backup(store)
        self.stdout.write(
            f"vault keystore backup {backup.id}: {len(backup.manifest['businesses'])} "
            f"businesses, in {store.label} (kept {settings.KEYSTORE_BACKUP_RETENTION_DAYS} days)"
        )

    def _vault_keystore_list(self, store: Store, options: dict[str, Any]) -> None:
        self._keystore_list(store, options)

    def _vault_keystore_verify(self, store: Store, options: dict[str, Any]) -> None:
        self._keystore_verify(store, options)

    def _vault_keystore_restore(self, store: Store, options: dict[str, Any]) -> None:
        backup = store.get(options["id"])
        result = backups.restore_vault_keystore(
            backup,
            backups.default_identity(options["identity"]),
            businesses=options["business"],
            into=options["into"],
        )
        where = options["into"] or settings.VAULT_KEYSTORE_DIR
        for name in result.kept:
            self.stderr.write(f"kept {name}: its key file exists in {where} (never overwritten)")
        self.stdout.write(
            f"restored the vault keys of {len(result.restored)} businesses into {where}"
        )

    def _vault_keystore_prune(self, store: Store, options: dict[str, Any]) -> None:
        self._keystore_prune(store, options)
