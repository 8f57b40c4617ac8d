"""API endpoints (django-ninja): thin doors onto access.py and actions.py."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router

from custodia.api.auth import actor_of
from custodia.api.pagination import CURSOR_ERROR, CursorParams
from custodia.api.tenancy.schemas import (
    InvitationIn,
    InvitationOut,
    MemberOut,
    MemberPageOut,
    MemberPatch,
)
from custodia.core.permissions import Role
from custodia.tenancy import access, actions
from custodia.tenancy.models import Invitation, Membership
from custodia.tenancy.paging import Page

router = Router(tags=["staff"])


@router.get("", response=MemberPageOut, openapi_extra=CURSOR_ERROR)
def list_staff(request: HttpRequest, paging: Query[CursorParams]) -> Page[Membership]:
    """Owners, managers and staff of the business (active and deactivated), by name, a page at
    a time (`next_cursor`)."""
    return access.page_of_members(actor_of(request), cursor=paging.cursor, size=paging.limit)


@router.post("/invitations", response={201: InvitationOut})
def invite_member(request: HttpRequest, payload: InvitationIn) -> Invitation:
    """Email a single-use, expiring invitation link (only owners invite owners).

    Needs a fresh step-up, so only a browser session can: a staff member sees door codes around
    their visits, and an API token never steps up.
    """
    return actions.do_invite_member(
        actor=actor_of(request), email=payload.email, role=Role(payload.role)
    )


@router.get("/{membership_id}", response=MemberOut)
def get_member(request: HttpRequest, membership_id: str) -> Membership:
    """One member of the business."""
    return access.access_member_by_id(actor_of(request), membership_id)


@router.patch("/{membership_id}", response=MemberOut)
def update_member(request: HttpRequest, membership_id: str, payload: MemberPatch) -> Membership:
    """Change a member's role (owners only) or deactivate them (`is_active: false`)."""
    actor = actor_of(request)
    member = access.access_member_by_id(actor, membership_id)
    changes = payload.model_dump(exclude_unset=True)
    if changes.get("is_active") is True and not member.is_active:
        raise ValidationError({"is_active": "A deactivated member comes back by a new invitation."})
    if "role" in changes:
        member = actions.do_change_role(member, Role(changes["role"]), actor=actor)
    if changes.get("is_active") is False:
        member = actions.do_deactivate_member(member, actor=actor)
    return member
