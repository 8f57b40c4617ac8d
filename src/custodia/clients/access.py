"""Reads of clients: the actor's business, the actor's role, 404 for anything else."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from custodia.clients.models import Assignment, Client, HomeAccess, email_key, name_key, phone_key
from custodia.tenancy.access import parse_id
from custodia.tenancy.context import Actor
from custodia.tenancy.models import Membership
from custodia.tenancy.permissions import Permission, Role


def _visible_clients(actor: Actor) -> QuerySet[Client]:
    clients = Client.objects.filter(tenant_id=actor.tenant_id)
    if actor.role == Role.CLIENT:
        actor.require(Permission.CLIENTS_SELF_READ)
        own = actor.membership.client_id
        return clients.none() if own is None else clients.filter(id=own)
    actor.require(Permission.CLIENTS_RECORD_READ)
    if actor.role == Role.STAFF:
        return clients.filter(assignments__staff_id=actor.membership.pk)
    return clients


def list_clients(actor: Actor, *, query: str = "") -> QuerySet[Client]:
    """Clients the actor may see, optionally searched.

    A query with "@" matches the email exactly, one of mostly digits matches the phone exactly,
    anything else is a name prefix; each is an index lookup that leads with tenant_id.
    """
    clients = _visible_clients(actor)
    query = query.strip()[:120]
    if query:
        digits = phone_key(query)
        if "@" in query:
            clients = clients.filter(email_search=email_key(query))
        elif len(digits) >= 5 and not any(char.isalpha() for char in query):
            clients = clients.filter(phone_search=digits)
        else:
            clients = clients.filter(name_search__prefix=name_key(query))
    return clients.order_by("name_search", "id")


def access_client_by_id(actor: Actor, client_id: object) -> Client:
    """One client the actor may see, or 404 (never 403: existence is not revealed)."""
    try:
        return _visible_clients(actor).get(id=parse_id(client_id))
    except Client.DoesNotExist:
        raise Http404("No such client.") from None


def home_access_for(actor: Actor, client: Client) -> HomeAccess | None:
    """Door and alarm codes, when the actor may see them now (RLS applies the visit window)."""
    if not actor.can(Permission.CLIENTS_ACCESS_READ):
        return None
    return HomeAccess.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).first()


def assigned_staff(actor: Actor, client: Client) -> QuerySet[Membership]:
    """Staff assigned to a client the actor can see."""
    actor.require(Permission.CLIENTS_RECORD_READ)
    return (
        Membership.objects.filter(tenant_id=actor.tenant_id, assignments__client_id=client.pk)
        .select_related("user")
        .order_by("user__full_name")
    )


def list_assignments(actor: Actor, client: Client) -> QuerySet[Assignment]:
    """Assignment rows of a client (managers see all; staff see their own)."""
    actor.require(Permission.CLIENTS_RECORD_READ)
    return Assignment.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).select_related(
        "staff__user"
    )
