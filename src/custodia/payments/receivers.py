"""Scheduling's signals (scheduling/signals.py) turned into this app's actions, inside the visit
change's transaction: a completed visit uses a pass credit; a cancelled one that had used one
gets it back when the business's rule says so. Tenancy's `business_deleting` (a business deleted
or purged) destroys its cards at the vault."""

from __future__ import annotations

import uuid
from typing import Any

from django.dispatch import receiver

from custodia.core.actor import Actor
from custodia.payments.actions.cards import destroy_business_at_vault
from custodia.payments.actions.passes import do_return_credit, do_use_credit
from custodia.scheduling.models import Visit, VisitStatus
from custodia.scheduling.signals import visit_cancelled, visit_completed
from custodia.tenancy.signals import business_deleting


@receiver(visit_completed, dispatch_uid="payments.use_credit")
def use_credit(sender: Any, *, visit: Visit, actor: Actor, **kwargs: Any) -> None:
    """A completed visit takes a credit from the client's oldest valid pass, if any."""
    do_use_credit(visit, actor=actor)


@receiver(visit_cancelled, dispatch_uid="payments.return_credit")
def return_credit(
    sender: Any, *, visit: Visit, actor: Actor, previous_status: VisitStatus, **kwargs: Any
) -> None:
    """A cancelled visit that was completed gives its credit back, per the business's rule."""
    if previous_status == VisitStatus.COMPLETED:
        do_return_credit(visit, actor=actor)


@receiver(business_deleting, dispatch_uid="payments.destroy_vault_business")
def destroy_vault_business(sender: Any, *, business_id: uuid.UUID, **kwargs: Any) -> None:
    """A business deleted or purged: its cards at the vault are crypto-shredded first."""
    destroy_business_at_vault(business_id)
