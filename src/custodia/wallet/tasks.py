"""The wallet's periodic task: passes that expired, and cancelled memberships whose last period
ended, since their wallet pass last changed move their tags and push their devices, hourly, one
business at a time in its own context."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils import timezone

from custodia.jobs.registry import for_each_business, periodic_task
from custodia.payments.models import MembershipStatus
from custodia.tenancy.actors import SystemActor
from custodia.wallet.models import WalletPass
from custodia.wallet.updates import sources_changed

logger = logging.getLogger(__name__)

EXPIRY_TASK = "wallet-expiry"


def push_expired(actor: SystemActor) -> int:
    """This business's wallet passes whose pass expired, or whose cancelled membership's last
    period ended, since they last moved: moved, pushed."""
    now = timezone.now()
    passes = list(
        WalletPass.objects.filter(
            tenant_id=actor.tenant_id,
            client_pass__expires_at__lte=now,
            updated_at__lt=F("client_pass__expires_at"),
        ).values_list("client_pass_id", flat=True)
    )
    # An active or past-due membership renews at its period's end (a change of its own).
    memberships = list(
        WalletPass.objects.filter(
            tenant_id=actor.tenant_id,
            membership__status=MembershipStatus.CANCELLED,
            membership__current_period_end__lte=now,
            updated_at__lt=F("membership__current_period_end"),
        ).values_list("membership_id", flat=True)
    )
    if not passes and not memberships:
        return 0
    return sources_changed(
        actor.tenant_id,
        client_pass_ids=[key for key in passes if key is not None],
        membership_ids=[key for key in memberships if key is not None],
    )


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
