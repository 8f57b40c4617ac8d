"""The worker's visit emails: every minute, reminders found and the outbox sent
(scheduling/outbox.py). The tick carries no business id: each business's work is read from its
own outbox rows, under its own row-level security."""

from __future__ import annotations

import logging

from custodia.jobs.registry import periodic_task
from custodia.scheduling.outbox import TASK, send_notices

logger = logging.getLogger(__name__)


@periodic_task(TASK, cron="* * * * *", run_at_start=True)
def send_visit_notices() -> None:
    """Every minute: reminders due, new events expanded, due messages sent once."""
    run = send_notices()
    if run.sent or run.skipped or run.failed_businesses:
        logger.info(
            "visit notices: %s sent, %s skipped, %s businesses failed",
            run.sent,
            run.skipped,
            run.failed_businesses,
        )
