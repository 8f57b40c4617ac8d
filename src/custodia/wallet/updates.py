"""A pass or membership changed: its wallet pass's update tag moves and its devices are pushed.

Called inside the transaction that changed it (wallet/receivers.py), whoever acts there
(staff completing a visit may not see wallet rows): the tag moves as the wallet's system actor
for that one business (tenancy/actors.py: system_actor), in the same transaction, so it moves
with the change or not at all; the actor before it is current again afterwards. The pushes go out
once the transaction commits (the change stands whatever becomes of them); the registrations of
tokens the push service says are gone are then removed, as the wallet's push task in that one
business, in a transaction of their own.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.db import DatabaseError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from custodia.core.actor import acting_as
from custodia.tenancy.actors import system_actor
from custodia.wallet.actions import PUSH_TASK, do_forget_push_tokens
from custodia.wallet.config import pass_type_id
from custodia.wallet.models import WalletPass, WalletRegistration
from custodia.wallet.push import Push, push_adapter

logger = logging.getLogger(__name__)

TASK = "wallet-update"
ONE_SECOND = dt.timedelta(seconds=1)


def sources_changed(
    tenant_id: uuid.UUID,
    *,
    client_pass_ids: list[uuid.UUID] | None = None,
    membership_ids: list[uuid.UUID] | None = None,
    using: str = "default",
) -> int:
    """Move the tags of the wallet passes of these passes and memberships, and push their
    devices after commit; returns how many wallet passes moved."""
    shown = Q(client_pass_id__in=client_pass_ids or []) | Q(membership_id__in=membership_ids or [])
    now = timezone.now()
    with acting_as(system_actor(tenant_id, task=TASK), using=using):
        moved = WalletPass.objects.using(using).filter(shown, tenant_id=tenant_id)
        # At least a second past the last tag: If-Modified-Since has a second's resolution, so
        # two changes within one second would otherwise look like one to a device.
        count = moved.update(updated_at=Greatest(Value(now), F("updated_at") + ONE_SECOND))
        tokens = (
            sorted(
                set(
                    WalletRegistration.objects.using(using)
                    .filter(tenant_id=tenant_id, wallet_pass__in=moved)
                    .values_list("push_token", flat=True)
                )
            )
            if count
            else []
        )
    if tokens:
        topic = pass_type_id()
        pushes = [Push(topic, token) for token in tokens]
        transaction.on_commit(lambda: _send(tenant_id, pushes, using=using), using=using)
    return count


def _send(tenant_id: uuid.UUID, pushes: list[Push], *, using: str = "default") -> None:
    try:
        gone = push_adapter().send(pushes)
    except Exception as exc:
        # Best effort: a device that misses a push sees the change at its next refresh.
        logger.warning("wallet pushes not sent: %s", type(exc).__name__)
        return
    if not gone:
        return
    try:
        with (
            transaction.atomic(using=using),
            acting_as(system_actor(tenant_id, task=PUSH_TASK), using=using) as actor,
        ):
            removed = do_forget_push_tokens(sorted({push.push_token for push in gone}), actor=actor)
    except DatabaseError as exc:
        # The next push to the same token is answered the same way and tries again.
        logger.warning("wallet registrations of gone devices not removed: %s", type(exc).__name__)
        return
    logger.info("wallet registrations of gone devices removed: %d", removed)
