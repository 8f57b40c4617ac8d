"""The backups' periodic tasks (the jobs contract: custodia.jobs.registry.periodic_task).

Platform-wide work, no business's context: the database backup and the keystore backup daily
and at start (each with the card vault's: its database and its keystore), each followed by its
prune (CUSTODIA_BACKUP_RETENTION_DAYS and its tiers; the
keystore's CUSTODIA_KEYSTORE_BACKUP_RETENTION_DAYS), and the restore drill weekly (checked
daily, run when the newest recorded drill is a week old). Each task raises on
failure so the scheduler records it; a failed drill also emails the operators (drill.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from custodia.jobs.registry import periodic_task
from custodia.lifecycle import backups, pgbackrest
from custodia.lifecycle.backups.drill import VAULT, drill_identity, weekly_drill_due
from custodia.lifecycle.backups.retention import database_policy, keystore_policy

logger = logging.getLogger(__name__)

BACKUPS = "backups"
KEYSTORE_BACKUPS = "keystore-backups"
BACKUP_DRILL = "backup-drill"
# What `custodia serve --no-backups` (`custodia worker --without ...`) leaves to another host.
BACKUP_TASKS = (BACKUPS, KEYSTORE_BACKUPS, BACKUP_DRILL)


def _all(steps: list[Callable[[], None]]) -> None:
    """Every step, even after one failed (the vault's backup does not wait on the app's, nor
    the other way round); then the first failure, so the scheduler records it."""
    failures = []
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 (re-raised below, after the other steps)
            logger.error("%s failed: %s", step.__doc__ or step.__name__, exc)
            failures.append(exc)
    if failures:
        raise failures[0]


def _database() -> None:
    """the database backup"""
    if settings.BACKUP_ENGINE == "pgbackrest":
        made = pgbackrest.scheduled_backup()
        logger.info("pgbackrest %s backup %s written", made.type, made.label)
        return
    store = backups.database_store()
    backup = backups.run_backup(store)
    logger.info("backup %s written to %s", backup.id, store.label)
    pruned = backups.prune(store, database_policy())
    logger.info("backup prune: %d deleted, %d kept", len(pruned.deleted), len(pruned.kept))


def _vault_database() -> None:
    """the card vault's database backup"""
    store = backups.vault_store()
    backup = backups.run_vault_backup(store)
    logger.info("vault backup %s written to %s", backup.id, store.label)
    pruned = backups.prune(store, database_policy())
    logger.info("vault backup prune: %d deleted, %d kept", len(pruned.deleted), len(pruned.kept))


@periodic_task(BACKUPS, cron="0 1 * * *", run_at_start=True)
def backup_database() -> None:
    """The daily database backup, then the prune of what is due; with
    CUSTODIA_BACKUP_ENGINE=pgbackrest, its scheduled backup (pgbackrest expires its own). Then
    (CUSTODIA_VAULT_BACKUPS, with either engine) the card vault's database backup and prune."""
    _all([_database, *([_vault_database] if settings.VAULT_BACKUPS else [])])


def _keystore() -> None:
    """the keystore backup"""
    store = backups.keystore_store()
    backup = backups.run_keystore_backup(store)
    logger.info("keystore backup %s written to %s", backup.id, store.label)
    pruned = backups.prune(store, keystore_policy())
    logger.info("keystore prune: %d deleted, %d kept", len(pruned.deleted), len(pruned.kept))


def _vault_keystore() -> None:
    """the card vault's keystore backup"""
    store = backups.vault_keystore_store()
    backup = backups.run_vault_keystore_backup(store)
    logger.info("vault keystore backup %s written to %s", backup.id, store.label)
    pruned = backups.prune(store, keystore_policy())
    logger.info("vault keystore prune: %d deleted, %d kept", len(pruned.deleted), len(pruned.kept))


@periodic_task(KEYSTORE_BACKUPS, cron="15 1 * * *", run_at_start=True)
def backup_keystore() -> None:
    """The daily keystore backup, then the prune that bounds how long a deleted business's keys
    survive (keystore.unreadable_everywhere_days); the same for the card vault's keystore."""
    _all([_keystore, *([_vault_keystore] if settings.VAULT_BACKUPS else [])])


@periodic_task(BACKUP_DRILL, cron="30 4 * * *")
def restore_drill() -> None:
    """The restore drills of the newest backups (the database's, the card vault's), checked
    daily, each run when a week has passed since its last one (so a day the worker was down is
    caught up); skipped without an identity on this host. Not at start: a restore is too heavy
    to add to every start."""
    database_due = settings.BACKUP_ENGINE != "pgbackrest" and weekly_drill_due()
    vault_due = settings.VAULT_BACKUPS and weekly_drill_due(kind=VAULT)
    if not (database_due or vault_due):
        return  # (the database drill restores logical backups only)
    identities = drill_identity()
    if identities is None:
        return
    found = identities

    def database() -> None:
        """the restore drill"""
        result = backups.drill(backups.database_store(), found)
        if not result.ok:
            raise backups.BackupError(
                f"restore drill of {result.backup_id} FAILED: {result.detail}"
            )

    def vault() -> None:
        """the card vault's restore drill"""
        result = backups.vault_drill(backups.vault_store(), found)
        if not result.ok:
            raise backups.BackupError(
                f"vault restore drill of {result.backup_id} FAILED: {result.detail}"
            )
        logger.info("vault restore drill of %s: OK, %s", result.backup_id, result.detail)

    _all([*([database] if database_due else []), *([vault] if vault_due else [])])
