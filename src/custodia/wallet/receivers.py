"""Payments' passes and memberships changed: the wallet passes showing them move their tags
(wallet/updates.py).

A pass: Django's own `post_save` of a ClientPass, sent inside the action's transaction: a credit
used (a visit completed) or given back (a visit cancelled), a pass voided, whatever saves it.
The daily expiry updates rows in bulk without it; the wallet's own task covers expiry
(wallet/tasks.py).

A membership: payments announce every change of one to webhooks (started, credit used or given
back, renewed, reactivated, cancelled), and send `membership_announced` with it, inside the
action's transaction; a reactivation updates the row in bulk, so `post_save` would miss it. A
cancelled membership's last period ending is no action at all: the wallet's task covers it.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from custodia.core.actor import current_actor
from custodia.payments.events import membership_announced
from custodia.payments.models import ClientMembership, ClientPass
from custodia.wallet.updates import sources_changed

# What a wallet pass shows of a ClientPass.
SHOWN = frozenset({"credits_left", "credits_total", "status", "expires_at", "name"})


@receiver(post_save, sender=ClientPass, dispatch_uid="wallet.pass_saved")
def pass_saved(
    sender: Any,
    *,
    instance: ClientPass,
    created: bool,
    update_fields: frozenset[str] | None,
    using: str,
    **kwargs: Any,
) -> None:
    """A saved pass whose shown fields may have changed moves its wallet pass's tag."""
    if created or (update_fields is not None and not (SHOWN & set(update_fields))):
        return
    if current_actor() is None:
        # Outside any actor (an operator's console on the owner connection): nothing issued a
        # wallet pass in this transaction's context to move.
        return
    sources_changed(instance.tenant_id, client_pass_ids=[instance.pk], using=using)


@receiver(membership_announced, dispatch_uid="wallet.membership_announced")
def membership_announced_to_wallet(
    sender: Any, *, membership: ClientMembership, **kwargs: Any
) -> None:
    """An announced membership change moves its wallet pass's tag."""
    if current_actor() is None:
        return
    sources_changed(membership.tenant_id, membership_ids=[membership.pk])
