"""Reads of businesses and memberships, always through the actor's reach; and, for the
operator's commands (`custodia audit`, `custodia keys`), businesses by id and slug on the owner
connection, which may list them all."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connections
from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils import timezone

from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, record
from custodia.core.dbcontext import ContextGrant
from custodia.core.permissions import Permission, Role
from custodia.tenancy.models import Business, Invitation, Membership
from custodia.tenancy.paging import Page, keyset_page

MEMBERS_PER_PAGE = 50
# The staff list's order, ending in the membership id (unique) so that pages never overlap.
MEMBER_ORDER = ("user__full_name", "user__email", "id")

if TYPE_CHECKING:
    from custodia.accounts.models import User

M = TypeVar("M", bound=Model)


def memberships_of(user: User) -> QuerySet[Membership]:
    """The active memberships of a user across businesses (for the switcher)."""
    return (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("tenant")
        .order_by("tenant__name", "tenant_id")
    )


def from_columns(model: type[M], columns: dict[str, Any]) -> M:
    """A model instance as if the ORM had read these columns (keyed by field attname); any
    field not among them is deferred."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in columns]
    return model.from_db("default", names, [columns[name] for name in names])


def granted_membership(grant: ContextGrant) -> Membership:
    """The membership (with its business) whose context `grant` established."""
    membership = from_columns(Membership, grant.membership)
    membership.tenant = from_columns(Business, grant.business)
    return membership


def parse_id(value: object) -> uuid.UUID:
    """A UUID from user input; anything malformed is simply not found."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise Http404("No such record.") from None


def list_members(
    actor: Actor, roles: tuple[Role, ...] = (Role.OWNER, Role.MANAGER, Role.STAFF)
) -> QuerySet[Membership]:
    """People working in the actor's business (clients are not members you manage here)."""
    actor.require(Permission.STAFF_MEMBER_READ)
    return (
        Membership.objects.filter(tenant_id=actor.tenant_id, role__in=[r.value for r in roles])
        .select_related("user")
        .order_by(*MEMBER_ORDER)
    )


def page_of_members(
    actor: Actor, *, cursor: str | None = None, size: int = MEMBERS_PER_PAGE
) -> Page[Membership]:
    """A page of `list_members` (the people working in the business: not customer data)."""
    return keyset_page(
        list_members(actor), keys=MEMBER_ORDER, list_name="members", cursor=cursor, size=size
    )


def access_member_by_id(
    actor: Actor,
    membership_id: object,
    *,
    roles: tuple[Role, ...] = (Role.OWNER, Role.MANAGER, Role.STAFF),
) -> Membership:
    """One member of the actor's business, or 404."""
    try:
        return list_members(actor, roles).get(id=parse_id(membership_id))
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None


def list_staff(actor: Actor) -> QuerySet[Membership]:
    """Members who can be assigned to clients and visits."""
    return list_members(actor, (Role.STAFF, Role.MANAGER, Role.OWNER)).filter(is_active=True)


def list_invitations(actor: Actor) -> QuerySet[Invitation]:
    """Pending and past invitations of the actor's business."""
    actor.require(Permission.STAFF_MEMBER_INVITE)
    return Invitation.objects.filter(tenant_id=actor.tenant_id).order_by("-created_at")


def pending_invitations(actor: Actor) -> list[Invitation]:
    """Invitations not yet accepted, revoked or expired, newest first. A client's invitation
    shows their email address: when there are any, a bulk read of those clients' records."""
    invitations = list(
        list_invitations(actor).filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
    )
    invited_clients = [i.client_id for i in invitations if i.client_id is not None]
    if invited_clients:
        record(
            AuditAction.CLIENT_LIST,
            actor=actor,
            subject_ids=invited_clients,
            detail={"count": len(invited_clients), "via": "pending invitations"},
        )
    return invitations


def access_invitation_by_id(actor: Actor, invitation_id: object) -> Invitation:
    """One invitation of the actor's business, or 404."""
    try:
        return list_invitations(actor).get(id=parse_id(invitation_id))
    except Invitation.DoesNotExist:
        raise Http404("No such invitation.") from None


def business_slugs(using: str) -> dict[uuid.UUID, str]:
    """Every business's slug by id, on the operator's connection `using`."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT id, slug FROM tenancy_business")
        return {business_id: slug for business_id, slug in cursor.fetchall()}


def business_id_by_slug(slug: str, using: str) -> uuid.UUID | None:
    """The id of the business with `slug`, on the operator's connection `using`."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT id FROM tenancy_business WHERE slug = %s", [slug])
        row = cursor.fetchone()
    return None if row is None else uuid.UUID(str(row[0]))
