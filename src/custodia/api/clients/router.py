"""API endpoints (django-ninja): thin doors onto access.py and actions.py."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from custodia.api.auth import actor_of
from custodia.api.clients.schemas import (
    AssignStaffIn,
    ClientDetailOut,
    ClientIn,
    ClientPageOut,
    ClientPatch,
)
from custodia.api.inputs import resolve_reference
from custodia.api.pagination import CURSOR_ERROR, CursorParams
from custodia.api.tenancy.schemas import MemberOut
from custodia.clients import access, actions
from custodia.clients.limits import SEARCH_MAX_LENGTH
from custodia.clients.models import Client
from custodia.core.permissions import Permission
from custodia.tenancy.access import access_member_by_id
from custodia.tenancy.models import Membership
from custodia.tenancy.paging import Page
from custodia.tenancy.reads import Intent

router = Router(tags=["clients"])


@router.get("", response=ClientPageOut, openapi_extra=CURSOR_ERROR)
def list_clients(
    request: HttpRequest,
    paging: Query[CursorParams],
    # PostgreSQL text cannot hold NUL: refuse it here (a 422) rather than fail in the query (a 500).
    q: str = Query("", max_length=SEARCH_MAX_LENGTH, pattern=r"^[^\x00]*$"),
) -> Page[Client]:
    """Clients you may see (staff: assigned ones; a client: themself), searched by `q`, in name
    order, a page at a time (`next_cursor`).

    `q` with "@" matches an email exactly, mostly digits a phone exactly, else the beginning of
    any word of the name ("lee" finds "Kim Lee" and "Ashley Leeds"; at least 2 characters, or
    a 422).
    """
    return access.page_of_clients(
        actor_of(request), query=q, cursor=paging.cursor, size=paging.limit
    )


@router.post("", response={201: ClientDetailOut})
def create_client(request: HttpRequest, payload: ClientIn) -> ClientDetailOut:
    """Create a client record (with home access, if given)."""
    actor = actor_of(request)
    client = actions.do_create_client(actor=actor, **payload.model_dump())
    return ClientDetailOut.build(access.client_view(actor, client, intent=Intent.CHANGE))


@router.get("/{client_id}", response=ClientDetailOut)
def get_client(request: HttpRequest, client_id: str) -> ClientDetailOut:
    """One client; `home_access` only when you may see the codes now: near a visit (staff: their
    own), or for owners and managers after a fresh step-up, which an API token never has."""
    return ClientDetailOut.build(access.view_client(actor_of(request), client_id))


@router.patch("/{client_id}", response=ClientDetailOut)
def update_client(request: HttpRequest, client_id: str, payload: ClientPatch) -> ClientDetailOut:
    """Change the fields sent (home-access fields included)."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    client = actions.do_update_client(client, actor=actor, **payload.model_dump(exclude_unset=True))
    return ClientDetailOut.build(access.client_view(actor, client, intent=Intent.CHANGE))


@router.delete("/{client_id}", response={204: None})
def delete_client(request: HttpRequest, client_id: str) -> None:
    """Delete a client with their visits, assignments, home access and portal login."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    actions.do_delete_client(client, actor=actor)


@router.get("/{client_id}/staff", response=list[MemberOut])
def list_client_staff(request: HttpRequest, client_id: str) -> QuerySet[Membership]:
    """The people assigned to serve this client."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, intent=Intent.SHOW)
    # Clients read their own record but not the business's staff list.
    actor.require(Permission.STAFF_MEMBER_READ)
    return access.assigned_staff(actor, client)


@router.post("/{client_id}/staff", response={201: MemberOut})
def assign_staff(request: HttpRequest, client_id: str, payload: AssignStaffIn) -> Membership:
    """Assign a member of the business to this client (idempotent)."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    member = resolve_reference("membership_id", access_member_by_id, actor, payload.membership_id)
    actions.do_assign_staff(client, member, actor=actor)
    return member


@router.delete("/{client_id}/staff/{membership_id}", response={204: None})
def unassign_staff(request: HttpRequest, client_id: str, membership_id: str) -> None:
    """The member no longer serves (nor sees) this client."""
    actor = actor_of(request)
    client = access.access_client_by_id(actor, client_id, intent=Intent.CHANGE)
    member = access_member_by_id(actor, membership_id)
    actions.do_unassign_staff(client, member, actor=actor)
