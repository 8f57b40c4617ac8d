"""Roles and permissions: the one table that says who may do what inside a business."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"
    CLIENT = "client"

    @property
    def label(self) -> str:
        return self.value.capitalize()


MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER})


class Permission(StrEnum):
    """`scope:resource:action`; API token scopes are drawn from the same names."""

    BUSINESS_SETTINGS_WRITE = "business:settings:write"
    BUSINESS_SECURITY_WRITE = "business:security:write"
    BUSINESS_DELETE = "business:record:delete"
    BUSINESS_CLOSE = "business:record:close"
    CLIENTS_RECORD_READ = "clients:record:read"
    CLIENTS_RECORD_WRITE = "clients:record:write"
    CLIENTS_ACCESS_READ = "clients:access:read"
    CLIENTS_ASSIGNMENT_WRITE = "clients:assignment:write"
    CLIENTS_SELF_READ = "clients:self:read"
    CLIENTS_RECORD_ERASE = "clients:record:erase"
    CLIENTS_SELF_ERASURE = "clients:self:erasure"
    STAFF_MEMBER_READ = "staff:member:read"
    STAFF_MEMBER_INVITE = "staff:member:invite"
    STAFF_ROLE_WRITE = "staff:role:write"
    SERVICES_READ = "scheduling:service:read"
    SERVICES_WRITE = "scheduling:service:write"
    VISITS_READ = "scheduling:visit:read"
    VISITS_WRITE = "scheduling:visit:write"
    VISITS_REPORT = "scheduling:visit:report"
    VISITS_REQUEST = "scheduling:visit:request"
    TOKENS_CREATE = "accounts:token:create"
    AUDIT_READ = "audit:event:read"
    # The status of a background job the member started (owners: any of their business's).
    JOBS_READ = "jobs:job:read"
    # The whole business's data, exported (lifecycle/export): owners only. An API token holds it
    # only when its scopes name it (EXPLICIT_SCOPES): docs/export.md explains why.
    BUSINESS_EXPORT = "business:export:create"
    # A client's own data, downloaded from the portal.
    CLIENTS_SELF_EXPORT = "clients:self:export"
    # Money without cards (payments/): what the business sells (pass types, membership plans),
    # clients' passes and memberships, invoices and the payments recorded against them. A
    # client reads only their own passes and invoices (access.py and row-level security).
    PAYMENTS_CATALOG_READ = "payments:catalog:read"
    PAYMENTS_CATALOG_WRITE = "payments:catalog:write"
    PAYMENTS_PASS_READ = "payments:pass:read"  # noqa: S105
    PAYMENTS_PASS_WRITE = "payments:pass:write"  # noqa: S105
    PAYMENTS_INVOICE_READ = "payments:invoice:read"
    PAYMENTS_INVOICE_WRITE = "payments:invoice:write"
    PAYMENTS_PAYMENT_RECORD = "payments:payment:record"
    # Card payments (through the vault, docs/payments-domain.md "Cards"): add and remove saved
    # cards, charge them, refund card payments. Owners hold them; a manager only when an owner
    # granted cards to their membership (`Membership.cards_granted`); a client for their own cards
    # and invoices (access.py and row-level security). Never staff, never an API token.
    PAYMENTS_CARD_WRITE = "payments:card:write"
    PAYMENTS_CARD_CHARGE = "payments:card:charge"
    PAYMENTS_CARD_REFUND = "payments:card:refund"
    # Outgoing webhooks (custodia.webhooks): owners only, and never through an API token (no
    # route exists): an endpoint sends the business's events to a third party.
    WEBHOOKS_MANAGE = "business:webhooks:write"


# Scopes a token gets only when they are asked for by name, never from "everything the role
# allows": a token that may start a whole-business export is a deliberate grant.
EXPLICIT_SCOPES = frozenset({Permission.BUSINESS_EXPORT})

CARD_PERMISSIONS = frozenset(
    {
        Permission.PAYMENTS_CARD_WRITE,
        Permission.PAYMENTS_CARD_CHARGE,
        Permission.PAYMENTS_CARD_REFUND,
    }
)
# Scopes no API token may ever hold, asked for by name or not: card work needs a browser
# session that confirmed the password recently (accounts/stepup.py), which a token never has.
NEVER_TOKEN_SCOPES = CARD_PERMISSIONS


_MANAGER = frozenset(
    {
        Permission.CLIENTS_RECORD_READ,
        Permission.CLIENTS_RECORD_WRITE,
        Permission.CLIENTS_ACCESS_READ,
        Permission.CLIENTS_ASSIGNMENT_WRITE,
        Permission.CLIENTS_RECORD_ERASE,
        Permission.STAFF_MEMBER_READ,
        Permission.STAFF_MEMBER_INVITE,
        Permission.SERVICES_READ,
        Permission.SERVICES_WRITE,
        Permission.VISITS_READ,
        Permission.VISITS_WRITE,
        Permission.VISITS_REPORT,
        Permission.TOKENS_CREATE,
        Permission.JOBS_READ,
        Permission.PAYMENTS_CATALOG_READ,
        Permission.PAYMENTS_CATALOG_WRITE,
        Permission.PAYMENTS_PASS_READ,
        Permission.PAYMENTS_PASS_WRITE,
        Permission.PAYMENTS_INVOICE_READ,
        Permission.PAYMENTS_INVOICE_WRITE,
        Permission.PAYMENTS_PAYMENT_RECORD,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _MANAGER
    | {
        Permission.BUSINESS_SETTINGS_WRITE,
        Permission.BUSINESS_SECURITY_WRITE,
        Permission.BUSINESS_DELETE,
        Permission.BUSINESS_CLOSE,
        Permission.STAFF_ROLE_WRITE,
        Permission.AUDIT_READ,
        Permission.BUSINESS_EXPORT,
        Permission.WEBHOOKS_MANAGE,
        *CARD_PERMISSIONS,
    },
    Role.MANAGER: _MANAGER,
    # Staff read clients (RLS narrows them to assigned ones) and home access (RLS narrows it to
    # the window around their own visits); they write only their own visit reports.
    Role.STAFF: frozenset(
        {
            Permission.CLIENTS_RECORD_READ,
            Permission.CLIENTS_ACCESS_READ,
            Permission.STAFF_MEMBER_READ,
            Permission.SERVICES_READ,
            Permission.VISITS_READ,
            Permission.VISITS_REPORT,
            Permission.TOKENS_CREATE,
            Permission.JOBS_READ,
        }
    ),
    Role.CLIENT: frozenset(
        {
            Permission.CLIENTS_SELF_READ,
            Permission.CLIENTS_SELF_ERASURE,
            Permission.CLIENTS_SELF_EXPORT,
            Permission.SERVICES_READ,
            Permission.VISITS_READ,
            Permission.VISITS_REQUEST,
            Permission.JOBS_READ,
            Permission.PAYMENTS_CATALOG_READ,
            Permission.PAYMENTS_PASS_READ,
            Permission.PAYMENTS_INVOICE_READ,
            # Their own cards: add, remove, pay their own invoices and passes with them.
            Permission.PAYMENTS_CARD_WRITE,
            Permission.PAYMENTS_CARD_CHARGE,
        }
    ),
}

# What an owner may grant a manager, one boolean on the manager's membership.
MANAGER_CARD_GRANT = CARD_PERMISSIONS


def role_allows(role: Role, permission: Permission, *, cards_granted: bool = False) -> bool:
    """Whether a membership of `role` (with or without the cards grant) holds `permission`."""
    if permission in ROLE_PERMISSIONS[role]:
        return True
    return role == Role.MANAGER and cards_granted and permission in MANAGER_CARD_GRANT


def may_grant(granter: Role, role: Role) -> bool:
    """Whether a member of role `granter` may invite someone into `role` (only owners make owners).

    Checked when an invitation is sent and again when it is accepted: an invitation grants only
    what its sender may still grant.
    """
    if Permission.STAFF_MEMBER_INVITE not in ROLE_PERMISSIONS[granter]:
        return False
    return role != Role.OWNER or granter == Role.OWNER
