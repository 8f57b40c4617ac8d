"""The platform's daily maintenance, as periodic tasks of the one scheduler (`custodia worker`,
which `custodia serve` starts): each at start and once a day (UTC times below).

Each is one round of its operator command, so a round by hand (`custodia audit maintain`) and
the scheduled one are the same code. Each command works through the businesses one at a time:
the audit chains as the operator role that owns them (as before), key rotation business by
business. The backups' tasks (database, keystore, drill) are lifecycle/tasks.py's. The owners'
weekly security digest (audit/digest.py) runs hourly, each business as its system actor, and
mails each owner once a week.
"""

from __future__ import annotations

import logging

from django.core.management import call_command

from custodia.audit.digest import send_weekly_digest
from custodia.jobs.registry import for_each_business, periodic_task
from custodia.lifecycle.tasks import BACKUP_TASKS, BACKUPS
from custodia.tenancy.actors import SystemActor

AUDIT_MAINTENANCE = "audit-maintenance"
AUDIT_DIGEST = "audit-digest"
KEY_MAINTENANCE = "key-maintenance"
RETENTION = "retention"

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIT_DIGEST",
    "AUDIT_MAINTENANCE",
    "BACKUPS",
    "BACKUP_TASKS",
    "KEY_MAINTENANCE",
    "RETENTION",
]


@periodic_task(AUDIT_MAINTENANCE, cron="30 2 * * *", run_at_start=True)
def audit_maintenance() -> None:
    """Signed checkpoints and housekeeping (`audit maintain`); the purge is the retention task's."""
    call_command("audit", "maintain")


# Hourly, though each owner gets one digest a week (audit/digest.py keeps a record): a digest
# whose mail failed, or that a stopped worker missed, goes out on the next run.
@periodic_task(AUDIT_DIGEST, cron="5 * * * *", run_at_start=True)
def audit_digest() -> None:
    """Last week's security digest to every business's owners who have not had it."""
    sent = failed = 0

    def work(actor: SystemActor) -> None:
        nonlocal sent, failed
        result = send_weekly_digest(actor)
        sent, failed = sent + result.sent, failed + result.failed

    done, broken = for_each_business(AUDIT_DIGEST, work)
    logger.info("weekly digests sent: %d in %d businesses", sent, done)
    if failed or broken:
        raise RuntimeError(f"{failed} digest(s) and {broken} business(es) failed; retried hourly")


@periodic_task(KEY_MAINTENANCE, cron="0 3 * * *", run_at_start=True)
def key_maintenance() -> None:
    """Key rotation and destruction (`custodia keys maintain`)."""
    call_command("keys", "maintain")


@periodic_task(RETENTION, cron="15 3 * * *", run_at_start=True)
def retention() -> None:
    """The retention policy, every rule (`custodia retention run`, docs/retention.md)."""
    call_command("retention", "run")
