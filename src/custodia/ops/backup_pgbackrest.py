"""`custodia backup pgbackrest ...`, and `custodia backup run|list` when
CUSTODIA_BACKUP_ENGINE=pgbackrest (docs/backups.md, "Production: pgbackrest")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from custodia.lifecycle import pgbackrest
from custodia.lifecycle.backups import BackupError
from custodia.lifecycle.pgbackrest import Setup

logger = logging.getLogger(__name__)

# The `custodia backup` subcommands that go to this engine when it is the configured one
# (`maintain` and the worker's `backups` task call it for the database's part of their round).
ENGINE_COMMANDS = {"run", "list"}


def add_parser(commands: Any) -> None:
    """`pgbackrest` and its actions, under `custodia backup`."""
    parser = commands.add_parser(
        "pgbackrest", help="production engine: physical backups, WAL archiving, PITR"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "configure", help="write pgbackrest.conf; print the postgresql.conf lines it needs"
    )
    actions.add_parser("stanza-create", help="create the stanza in the repository (once)")
    actions.add_parser("check", help="configuration, connection and WAL archiving work")
    backup = actions.add_parser("backup", help="a backup now, with its signed manifest")
    backup.add_argument("--type", choices=pgbackrest.TYPES, default="incr")
    actions.add_parser("info", help="the repository's backups and their manifests")
    restore = actions.add_parser(
        "restore", help="restore into a new directory, as of --target-time (the live one stays)"
    )
    restore.add_argument("--to", type=Path, required=True, help="a new or empty directory")
    restore.add_argument(
        "--target-time", help="ISO 8601 with a zone (default: the end of the chosen backup)"
    )
    restore.add_argument("--set", help="a backup label (default: the newest that fits)")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    """Run `custodia backup pgbackrest ACTION` (or run/list/maintain for this engine)."""
    action = options.get("action") or options["command"]
    action = {"run": "scheduled", "list": "info"}.get(action, action)
    try:
        setup = Setup.from_settings()
        ACTIONS[action](command, setup, options)
    except BackupError as exc:
        raise CommandError(str(exc)) from None


def _configure(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    pgbackrest.passphrase(setup)
    path = pgbackrest.write_config(setup)
    command.stdout.write(
        f"wrote {path}\nAdd to the live cluster's postgresql.conf, restart PostgreSQL, then "
        "run `custodia backup pgbackrest stanza-create`:\n\n" + pgbackrest.postgresql_conf(setup)
    )


def _stanza_create(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    pgbackrest.stanza_create(setup)
    command.stdout.write(f"stanza {setup.stanza} ready in {setup.repo_path}")


def _check(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    pgbackrest.check(setup)
    command.stdout.write(f"stanza {setup.stanza}: configuration and WAL archiving OK")


def _report(command: BaseCommand, backup: pgbackrest.PgbackrestBackup) -> None:
    rows = sum(backup.manifest.get("tables", {}).values())
    size = backup.info["info"]["repository"]["delta"]
    command.stdout.write(
        f"pgbackrest {backup.type} backup {backup.label}: {size:,} bytes added to the "
        f"repository, {len(backup.manifest.get('tables', {}))} tables, {rows:,} rows"
    )


def _backup(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    _report(command, pgbackrest.run_backup(setup, options["type"]))


def _scheduled(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    _report(command, pgbackrest.scheduled_backup(setup))


def _info(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    found = pgbackrest.list_backups(setup)
    if not found:
        command.stdout.write(f"No pgbackrest backups of stanza {setup.stanza}.")
    for backup in found:
        state = f"PROBLEM: {backup.problem}" if backup.problem else "manifest OK"
        rows = sum(backup.manifest.get("tables", {}).values())
        command.stdout.write(
            f"{backup.label}  {backup.type:4}  {backup.info['info']['repository']['delta']:>14,} B"
            f"  {rows:>10,} rows  {state}"
        )
    if found:
        oldest = pgbackrest.timestamp(found[0].info["timestamp"]["stop"])
        command.stdout.write(
            f"Restorable to any moment from {oldest} up to the newest archived WAL "
            "(`custodia backup pgbackrest check` archives the current one)."
        )


def _restore(command: BaseCommand, setup: Setup, options: dict[str, Any]) -> None:
    target = options.get("target_time")
    moment = pgbackrest.parse_time(target) if target else None
    into = pgbackrest.restore(setup, into=options["to"], target_time=moment, label=options["set"])
    when = f"as of {moment.isoformat()}" if moment else "as of the end of the backup"
    command.stdout.write(
        f"restored into {into} ({when}). It holds no postgresql.conf of its own when the live "
        "one is outside the data directory (Debian): give it one with another port, start it "
        "with pg_ctl as PostgreSQL's OS user; it recovers, then opens read-write. Archiving "
        "is off in it."
    )


ACTIONS = {
    "configure": _configure,
    "stanza-create": _stanza_create,
    "check": _check,
    "backup": _backup,
    "scheduled": _scheduled,
    "info": _info,
    "restore": _restore,
}
