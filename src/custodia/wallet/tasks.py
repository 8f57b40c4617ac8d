"""The wallet's periodic task: passes that expired since their wallet pass last changed move
their tags and push their devices, hourly, one business at a time in its own context."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils import timezone

from custodia.jobs.registry import for_each_business, periodic_task
from custodia.tenancy.actors import SystemActor
from custodia.wallet.models import WalletPass
from custodia.wallet.updates import pass_changed

logger = logging.getLogger(__name__)

EXPIRY_TASK = "wallet-expiry"


def push_expired(actor: SystemActor) -> int:
    """This business's wallet passes whose pass expired since they last moved: moved, pushed."""
    due = list(
        WalletPass.objects.filter(
            tenant_id=actor.tenant_id,
            client_pass__expires_at__lte=timezone.now(),
            updated_at__lt=F("client_pass__expires_at"),
        ).values_list("client_pass_id", flat=True)
    )
    if not due:
        return 0
    return pass_changed(actor.tenant_id, due)


@periodic_task(EXPIRY_TASK, cron="10 * * * *")
def wallet_expiry() -> None:
    """Push the devices of every business's passes that expired."""
    moved = 0

    def work(actor: SystemActor) -> None:
        nonlocal moved
        moved += push_expired(actor)

    done, failed = for_each_business(EXPIRY_TASK, work)
    logger.info("wallet passes expired: %d in %d businesses", moved, done)
    if failed:
        raise RuntimeError(f"wallet passes of {failed} business(es) could not be updated")
