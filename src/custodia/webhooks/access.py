"""Reads of webhook endpoints and their delivery logs: owners of the business only; anything
else is not found (404), never forbidden, so an endpoint's existence is not revealed."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.permissions import Permission, Role
from custodia.tenancy.access import parse_id
from custodia.webhooks.models import Delivery, Endpoint

LOG_LENGTH = 50


def _owner(actor: Actor) -> bool:
    return actor.role == Role.OWNER and actor.can(Permission.WEBHOOKS_MANAGE)


def list_endpoints(actor: Actor) -> QuerySet[Endpoint]:
    """The business's endpoints, newest first (configuration, no customer data)."""
    actor.require(Permission.WEBHOOKS_MANAGE)
    return Endpoint.objects.filter(tenant_id=actor.tenant_id).order_by("-created_at")


def access_endpoint_by_id(actor: Actor, endpoint_id: object) -> Endpoint:
    """An endpoint of the actor's business, or 404."""
    key = parse_id(endpoint_id)
    if not _owner(actor):
        note_refusal("endpoint", key)
        raise Http404("No such webhook endpoint.")
    try:
        return Endpoint.objects.get(tenant_id=actor.tenant_id, pk=key)
    except Endpoint.DoesNotExist:
        note_refusal("endpoint", key)
        raise Http404("No such webhook endpoint.") from None


def access_delivery_by_id(actor: Actor, endpoint: Endpoint, delivery_id: object) -> Delivery:
    """A delivery of that endpoint (already accessed), or 404."""
    key = parse_id(delivery_id)
    try:
        return Delivery.objects.select_related("endpoint").get(
            tenant_id=actor.tenant_id, endpoint_id=endpoint.pk, pk=key
        )
    except Delivery.DoesNotExist:
        note_refusal("delivery", key)
        raise Http404("No such delivery.") from None


def read_delivery_log(actor: Actor, endpoint: Endpoint) -> list[Delivery]:
    """The endpoint's last deliveries, newest first; the read is recorded with its count."""
    deliveries = list(
        Delivery.objects.filter(tenant_id=actor.tenant_id, endpoint_id=endpoint.pk).order_by(
            "-created_at"
        )[:LOG_LENGTH]
    )
    record(
        AuditAction.WEBHOOK_LOG_READ,
        actor=actor,
        target=endpoint,
        detail={"count": len(deliveries)},
    )
    return deliveries
