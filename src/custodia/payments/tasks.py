"""The payments domain's periodic tasks, one business at a time in that business's own context
(jobs/registry.py): passes past their expiry are marked expired (daily and at start), and
memberships whose period ended are renewed (hourly and at start), and renewals with an autopay
card are charged to it, declines retried (in the same hourly run, as the business's
`membership-autopay` system actor: actions/autopay.py)."""

from __future__ import annotations

import logging

from custodia.core.actor import Actor
from custodia.jobs.registry import for_each_business, periodic_task
from custodia.payments.actions.autopay import run_autopay
from custodia.payments.actions.passes import do_expire_passes
from custodia.payments.actions.renewals import do_renew_memberships

logger = logging.getLogger(__name__)

EXPIRY_TASK = "pass-expiry"
RENEWAL_TASK = "membership-renewals"


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


@periodic_task(RENEWAL_TASK, cron="20 * * * *", run_at_start=True)
def renew_memberships() -> None:
    """Renew every business's memberships whose period ended; reactivate those paid since;
    charge the autopay attempts due (the renewals just made among them)."""
    renewed = reactivated = charged = 0

    def renew(actor: Actor) -> None:
        nonlocal renewed, reactivated, charged
        counts = do_renew_memberships(actor=actor)
        renewed += counts[0]
        reactivated += counts[1]
        charged += run_autopay(actor.tenant_id)

    done, failed = for_each_business(RENEWAL_TASK, renew)
    logger.info(
        "memberships renewed: %d, reactivated: %d, autopay charges: %d, in %d businesses",
        renewed,
        reactivated,
        charged,
        done,
    )
    if failed:
        raise RuntimeError(f"memberships of {failed} business(es) could not be renewed")
