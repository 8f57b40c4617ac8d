"""The payments domain's periodic task: passes past their expiry are marked expired, daily and
at start, one business at a time in that business's own context (jobs/registry.py)."""

from __future__ import annotations

import logging

from custodia.core.actor import Actor
from custodia.jobs.registry import for_each_business, periodic_task
from custodia.payments.actions.passes import do_expire_passes

logger = logging.getLogger(__name__)

EXPIRY_TASK = "pass-expiry"


@periodic_task(EXPIRY_TASK, cron="5 0 * * *", run_at_start=True)
def expire_passes() -> None:
    """Mark every business's passes past their expiry as expired."""
    expired = 0

    def expire(actor: Actor) -> None:
        nonlocal expired
        expired += do_expire_passes(actor=actor)

    done, failed = for_each_business(EXPIRY_TASK, expire)
    logger.info("passes expired: %d in %d businesses", expired, done)
    if failed:
        raise RuntimeError(f"passes of {failed} business(es) could not be expired")
