"""The platform's daily maintenance, as periodic tasks of the one scheduler (`custodia worker`,
which `custodia serve` starts): each at start and once a day (UTC times below).

Each is one round of its operator command, so a round by hand (`custodia audit maintain`) and
the scheduled one are the same code. Each command works through the businesses one at a time:
the audit chains as the operator role that owns them (as before), key rotation business by
business. The backups' tasks (database, keystore, drill) are lifecycle/tasks.py's.
"""

from __future__ import annotations

from django.core.management import call_command

from custodia.jobs.registry import periodic_task
from custodia.lifecycle.tasks import BACKUP_TASKS, BACKUPS

AUDIT_MAINTENANCE = "audit-maintenance"
KEY_MAINTENANCE = "key-maintenance"
RETENTION = "retention"

__all__ = ["AUDIT_MAINTENANCE", "BACKUPS", "BACKUP_TASKS", "KEY_MAINTENANCE", "RETENTION"]


@periodic_task(AUDIT_MAINTENANCE, cron="30 2 * * *", run_at_start=True)
def audit_maintenance() -> None:
    """Signed checkpoints and housekeeping (`audit maintain`); the purge is the retention task's."""
    call_command("audit", "maintain")


@periodic_task(KEY_MAINTENANCE, cron="0 3 * * *", run_at_start=True)
def key_maintenance() -> None:
    """Key rotation and destruction (`custodia keys maintain`)."""
    call_command("keys", "maintain")


@periodic_task(RETENTION, cron="15 3 * * *", run_at_start=True)
def retention() -> None:
    """The retention policy, every rule (`custodia retention run`, docs/retention.md)."""
    call_command("retention", "run")
