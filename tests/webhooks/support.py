"""Small helpers of the webhook tests: an endpoint made as the owner, the deliveries as the
owner sees them, and a worker's attempt run in the test's transaction."""

from __future__ import annotations

from collections.abc import Iterable

from custodia.core.actor import Actor
from custodia.webhooks.actions import do_create_endpoint
from custodia.webhooks.models import SUBSCRIBABLE, Delivery, Endpoint
from custodia.webhooks.tasks import deliver_once
from tests.acting import act


def add_endpoint(
    owner: Actor, url: str, events: Iterable[str] | None = None
) -> tuple[Endpoint, str]:
    """An endpoint of the owner's business (every visit event unless told), and its secret."""
    act(owner)
    chosen = [str(event) for event in (events or SUBSCRIBABLE)]
    return do_create_endpoint(actor=owner, url=url, description="CRM", event_types=chosen)


def deliveries_of(owner: Actor) -> list[Delivery]:
    """The owner's business's deliveries, oldest first (acting as the owner from here on)."""
    act(owner)
    return list(Delivery.objects.order_by("created_at"))


def attempt(owner: Actor, delivery: Delivery) -> Delivery:
    """One worker attempt (tasks.deliver_once), then the row as the owner sees it."""
    deliver_once(delivery.pk, delivery.tenant_id)
    act(owner)
    return Delivery.objects.get(pk=delivery.pk)
