"""API endpoints (django-ninja): thin doors onto access.py and actions.py."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from custodia.api.clients.schemas import (
    AssignStaffIn,
    ClientDetailOut,
    ClientIn,
    ClientOut,
    ClientPatch,
)
from custodia.api.core import actor_of, paginated, resolve_reference
from custodia.api.tenancy.schemas import MemberOut
from custodia.clients import access, actions
from custodia.clients.models import Client
from custodia.core.permissions import Permission
from custodia.tenancy.access import access_member_by_id
from custodia.tenancy.models import Membership

router = Router(tags=["clients"])


@router.get("", response=list[ClientOut])
@paginated
def list_clients(
    request: HttpRequest,
    # PostgreSQL text cannot hold NUL: refuse it here (a 422) rather than fail in the query (a 500).
    q: str = Query("", max_length=120, pattern=r"^[^\x00]*$"),
) -> QuerySet[Client]:
    """Clients you may see (staff: assigned ones; a client: themself), searched by `q`.

    `q` with "@" matches an email exactly, mostly digits a phone exactly, else a name prefix.
    """
    return access.list_clients(actor_of(request), query=q)


@router.post("", response={201: ClientDetailOut})
def create_client(request: HttpRequest, payload: ClientIn) -> ClientDetailOut:
    """Create a client record (with home access, if given)."""
    actor = actor_of(request)
    client = actions.do_create_client(actor=actor, **payload.model_dump())
    return ClientDetailOut.build(client, access.home_access_for(actor, client))


@router.get("/{client_id}", response=ClientDetailOut)
def get_client(request: HttpRequest, client_id: str) -> ClientDetailOut:
    """One client; `home_access` only when you may see the codes now: near a visit (staff: their
    own), or for owners and managers after a fresh step-up, which an API token never has."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id)
    return ClientDetailOut.build(client, access.home_access_for(actor, client))


@router.patch("/{client_id}", response=ClientDetailOut)
def update_client(request: HttpRequest, client_id: str, payload: ClientPatch) -> ClientDetailOut:
    """Change the fields sent (home-access fields included)."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, record_read=False)
    client = actions.do_update_client(client, actor=actor, **payload.model_dump(exclude_unset=True))
    return ClientDetailOut.build(client, access.home_access_for(actor, client))


@router.delete("/{client_id}", response={204: None})
def delete_client(request: HttpRequest, client_id: str) -> None:
    """Delete a client with their visits, assignments, home access and portal login."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, record_read=False)
    actions.do_delete_client(client, actor=actor)


@router.get("/{client_id}/staff", response=list[MemberOut])
def list_client_staff(request: HttpRequest, client_id: str) -> QuerySet[Membership]:
    """The people assigned to serve this client."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id)
    # Clients read their own record but not the business's staff list.
    actor.require(Permission.STAFF_MEMBER_READ)
    return access.assigned_staff(actor, client)


@router.post("/{client_id}/staff", response={201: MemberOut})
def assign_staff(request: HttpRequest, client_id: str, payload: AssignStaffIn) -> Membership:
    """Assign a member of the business to this client (idempotent)."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, record_read=False)
    member = resolve_reference("membership_id", access_member_by_id, actor, payload.membership_id)
    actions.do_assign_staff(client, member, actor=actor)
    return member


@router.delete("/{client_id}/staff/{membership_id}", response={204: None})
def unassign_staff(request: HttpRequest, client_id: str, membership_id: str) -> None:
    """The member no longer serves (nor sees) this client."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, record_read=False)
    member = access_member_by_id(actor, membership_id)
    actions.do_unassign_staff(client, member, actor=actor)
