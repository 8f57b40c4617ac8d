"""Reads of services and visits, narrowed to the actor's business and role."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.http import Http404

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.permissions import Permission, Role
from custodia.scheduling.models import Service, Visit
from custodia.tenancy.access import parse_id


def list_services(actor: Actor, *, include_inactive: bool = False) -> QuerySet[Service]:
    """The business's services (clients see the active ones to request visits)."""
    actor.require(Permission.SERVICES_READ)
    services = Service.objects.filter(tenant_id=actor.tenant_id)
    if not include_inactive or actor.role == Role.CLIENT:
        services = services.filter(is_active=True)
    return services.order_by("name", "id")


def access_service_by_id(actor: Actor, service_id: object) -> Service:
    """One service of the actor's business, or 404."""
    try:
        return list_services(actor, include_inactive=True).get(id=parse_id(service_id))
    except Service.DoesNotExist:
        raise Http404("No such service.") from None


def _visible_visits(actor: Actor) -> QuerySet[Visit]:
    actor.require(Permission.VISITS_READ)
    visits = Visit.objects.filter(tenant_id=actor.tenant_id).select_related(
        "client", "staff__user", "service"
    )
    if actor.role == Role.STAFF:
        return visits.filter(staff_id=actor.membership.pk)
    if actor.role == Role.CLIENT:
        own = actor.membership.client_id
        return visits.none() if own is None else visits.filter(client_id=own)
    return visits


def list_visits(
    actor: Actor,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    client_id: object = None,
    staff_id: object = None,
) -> QuerySet[Visit]:
    """Visits the actor may see, optionally within [start, end) and for one client or staff."""
    visits = _visible_visits(actor)
    if start is not None:
        visits = visits.filter(ends_at__gt=start)
    if end is not None:
        visits = visits.filter(starts_at__lt=end)
    if client_id is not None:
        visits = visits.filter(client_id=parse_id(client_id))
    if staff_id is not None:
        visits = visits.filter(staff_id=parse_id(staff_id))
    return visits.order_by("starts_at", "id")


def access_visit_by_id(actor: Actor, visit_id: object, *, record_read: bool = True) -> Visit:
    """One visit the actor may see, or 404; the read (unless a write follows, which records
    itself) and a refusal are audit events."""
    key = parse_id(visit_id)
    try:
        visit = _visible_visits(actor).get(id=key)
    except Visit.DoesNotExist:
        note_refusal("visit", key)
        raise Http404("No such visit.") from None
    if record_read:
        record(AuditAction.VISIT_READ, actor=actor, target=visit)
    return visit
