"""The backups' periodic tasks (the jobs contract: custodia.jobs.registry.periodic_task).

Platform-wide work, no business's context: the database backup and the keystore backup daily
and at start, each followed by its prune (CUSTODIA_BACKUP_RETENTION_DAYS and its tiers; the
keystore's CUSTODIA_KEYSTORE_BACKUP_RETENTION_DAYS), and the restore drill weekly (checked
daily, run when the newest recorded drill is a week old). Each task raises on
failure so the scheduler records it; a failed drill also emails the operators (drill.py).
"""

from __future__ import annotations

import logging

from django.conf import settings

from custodia.jobs.registry import periodic_task
from custodia.lifecycle import backups, pgbackrest
from custodia.lifecycle.backups.drill import drill_identity, weekly_drill_due
from custodia.lifecycle.backups.retention import database_policy, keystore_policy

logger = logging.getLogger(__name__)

BACKUPS = "backups"
KEYSTORE_BACKUPS = "keystore-backups"
BACKUP_DRILL = "backup-drill"
# What `custodia serve --no-backups` (`custodia worker --without ...`) leaves to another host.
BACKUP_TASKS = (BACKUPS, KEYSTORE_BACKUPS, BACKUP_DRILL)


@periodic_task(BACKUPS, cron="0 1 * * *", run_at_start=True)
def backup_database() -> None:
    """The daily database backup, then the prune of what is due; with
    CUSTODIA_BACKUP_ENGINE=pgbackrest, its scheduled backup (pgbackrest expires its own)."""
    if settings.BACKUP_ENGINE == "pgbackrest":
        made = pgbackrest.scheduled_backup()
        logger.info("pgbackrest %s backup %s written", made.type, made.label)
        return
    store = backups.database_store()
    backup = backups.run_backup(store)
    logger.info("backup %s written to %s", backup.id, store.label)
    pruned = backups.prune(store, database_policy())
    logger.info("backup prune: %d deleted, %d kept", len(pruned.deleted), len(pruned.kept))


@periodic_task(KEYSTORE_BACKUPS, cron="15 1 * * *", run_at_start=True)
def backup_keystore() -> None:
    """The daily keystore backup, then the prune that bounds how long a deleted business's keys
    survive (keystore.unreadable_everywhere_days)."""
    store = backups.keystore_store()
    backup = backups.run_keystore_backup(store)
    logger.info("keystore backup %s written to %s", backup.id, store.label)
    pruned = backups.prune(store, keystore_policy())
    logger.info("keystore prune: %d deleted, %d kept", len(pruned.deleted), len(pruned.kept))


@periodic_task(BACKUP_DRILL, cron="30 4 * * *")
def restore_drill() -> None:
    """The restore drill of the newest backup, checked daily, run when a week has passed since
    the last one (so a day the worker was down is caught up); skipped without an identity on
    this host. Not at start: a restore is too heavy to add to every start."""
    if settings.BACKUP_ENGINE == "pgbackrest" or not weekly_drill_due():
        return  # the drill restores logical backups only
    identities = drill_identity()
    if identities is None:
        return
    result = backups.drill(backups.database_store(), identities)
    if not result.ok:
        raise backups.BackupError(f"restore drill of {result.backup_id} FAILED: {result.detail}")
