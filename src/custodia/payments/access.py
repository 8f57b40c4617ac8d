"""Reads of the payments domain, narrowed to the actor's business and role; 404 for anything else.

The catalog (pass types, membership plans) is what the business sells: not customer data, not
recorded. A client's passes and invoices are: each function that hands them out records the read
(`PASS_READ`/`PASS_LIST`, `INVOICE_READ`/`INVOICE_LIST`, naming the clients). Managers and owners
read everything of their business; a client only their own passes and issued invoices; staff
nothing (row-level security says the same underneath: payments/migrations/0002_rls.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import Http404

from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction, note_refusal, record
from custodia.core.permissions import Permission, Role
from custodia.payments.models import (
    ClientMembership,
    ClientPass,
    CreditUse,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    MembershipPlan,
    PassType,
    Payment,
    PaymentMethod,
    PaymentType,
    Refund,
)
from custodia.payments.totals import Totals, totals_of
from custodia.tenancy.access import parse_id
from custodia.tenancy.paging import Page, keyset_page
from custodia.tenancy.reads import Intent

PER_PAGE = 50
CATALOG_ORDER = ("name", "id")
PASS_ORDER = ("created_at", "id")
INVOICE_ORDER = ("created_at", "id")


# --- The catalog ---------------------------------------------------------------------------------


def list_pass_types(actor: Actor, *, include_inactive: bool = False) -> QuerySet[PassType]:
    """The business's pass types (clients see the active ones)."""
    actor.require(Permission.PAYMENTS_CATALOG_READ)
    rows = PassType.objects.filter(tenant_id=actor.tenant_id)
    if not include_inactive or actor.role == Role.CLIENT:
        rows = rows.filter(is_active=True)
    return rows.order_by(*CATALOG_ORDER)


def access_pass_type_by_id(actor: Actor, pass_type_id: object) -> PassType:
    """One pass type of the actor's business, or 404."""
    try:
        return list_pass_types(actor, include_inactive=True).get(id=parse_id(pass_type_id))
    except PassType.DoesNotExist:
        raise Http404("No such pass type.") from None


def list_plans(actor: Actor, *, include_inactive: bool = False) -> QuerySet[MembershipPlan]:
    """The business's membership plans (clients see the active ones)."""
    actor.require(Permission.PAYMENTS_CATALOG_READ)
    rows = MembershipPlan.objects.filter(tenant_id=actor.tenant_id)
    if not include_inactive or actor.role == Role.CLIENT:
        rows = rows.filter(is_active=True)
    return rows.order_by(*CATALOG_ORDER)


def access_plan_by_id(actor: Actor, plan_id: object) -> MembershipPlan:
    """One membership plan of the actor's business, or 404."""
    try:
        return list_plans(actor, include_inactive=True).get(id=parse_id(plan_id))
    except MembershipPlan.DoesNotExist:
        raise Http404("No such membership plan.") from None


# --- Passes and memberships ----------------------------------------------------------------------


def _visible_passes(actor: Actor) -> QuerySet[ClientPass]:
    actor.require(Permission.PAYMENTS_PASS_READ)
    passes = ClientPass.objects.filter(tenant_id=actor.tenant_id).select_related("client")
    if actor.role == Role.CLIENT:
        own = actor.membership.client_id
        return passes.none() if own is None else passes.filter(client_id=own)
    return passes


def page_of_passes(
    actor: Actor, *, client_id: object = None, cursor: str | None = None, size: int = PER_PAGE
) -> Page[ClientPass]:
    """A page of the passes the actor may see (optionally one client's), oldest first: a bulk
    read naming their clients."""
    passes = _visible_passes(actor)
    if client_id is not None:
        passes = passes.filter(client_id=parse_id(client_id))
    page = keyset_page(passes, keys=PASS_ORDER, list_name="passes", cursor=cursor, size=size)
    _record_list(AuditAction.PASS_LIST, actor, page.items)
    return page


def read_passes_of(actor: Actor, client: Client) -> list[ClientPass]:
    """Every pass of one client (already read through clients' access), newest first: a bulk
    read (a client's page, the portal)."""
    passes = list(_visible_passes(actor).filter(client_id=client.pk).order_by("-created_at"))
    _record_list(AuditAction.PASS_LIST, actor, passes, client=client)
    return passes


@dataclass(frozen=True)
class PassView:
    """A pass as a page shows it: the pass and its history of uses and returns."""

    client_pass: ClientPass
    uses: list[CreditUse]


def access_pass_by_id(actor: Actor, pass_id: object, *, intent: Intent) -> ClientPass:
    """One pass the actor may see, or 404; shown, the read is recorded. A refusal is noted."""
    key = parse_id(pass_id)
    try:
        client_pass = _visible_passes(actor).get(id=key)
    except ClientPass.DoesNotExist:
        note_refusal("clientpass", key)
        raise Http404("No such pass.") from None
    if intent is Intent.SHOW:
        record(AuditAction.PASS_READ, actor=actor, target=client_pass)
    return client_pass


def view_pass(actor: Actor, pass_id: object) -> PassView:
    """One pass and its history, read and recorded."""
    client_pass = access_pass_by_id(actor, pass_id, intent=Intent.SHOW)
    uses = list(
        CreditUse.objects.filter(tenant_id=actor.tenant_id, client_pass_id=client_pass.pk)
        .select_related("visit")
        .order_by("created_at", "id")
    )
    return PassView(client_pass, uses)


def read_memberships_of(actor: Actor, client: Client) -> list[ClientMembership]:
    """A client's memberships, newest first (recorded with the passes' list of the same page)."""
    actor.require(Permission.PAYMENTS_PASS_READ)
    if actor.role == Role.CLIENT and actor.membership.client_id != client.pk:
        return []
    return list(
        ClientMembership.objects.filter(tenant_id=actor.tenant_id, client_id=client.pk).order_by(
            "-created_at"
        )
    )


def access_membership_by_id(actor: Actor, membership_id: object) -> ClientMembership:
    """One client membership the actor may change, or 404 (it is then changed, not shown)."""
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    key = parse_id(membership_id)
    try:
        return ClientMembership.objects.get(tenant_id=actor.tenant_id, id=key)
    except ClientMembership.DoesNotExist:
        note_refusal("clientmembership", key)
        raise Http404("No such membership.") from None


def read_membership_by_id(actor: Actor, membership_id: object) -> ClientMembership:
    """One client membership the actor may read (a client only their own), with its autopay
    card and renewal invoice, or 404; recorded `client_membership.read`."""
    actor.require(Permission.PAYMENTS_PASS_READ)
    key = parse_id(membership_id)
    rows = ClientMembership.objects.filter(tenant_id=actor.tenant_id).select_related(
        "client", "autopay_card", "autopay_invoice"
    )
    if actor.role == Role.CLIENT:
        rows = rows.filter(client_id=actor.membership.client_id)
    try:
        membership = rows.get(id=key)
    except ClientMembership.DoesNotExist:
        note_refusal("clientmembership", key)
        raise Http404("No such membership.") from None
    record(
        AuditAction.MEMBERSHIP_READ,
        actor=actor,
        target=membership,
        subject_ids=[membership.client_id],
    )
    return membership


# --- Invoices ------------------------------------------------------------------------------------


def _visible_invoices(actor: Actor) -> QuerySet[Invoice]:
    actor.require(Permission.PAYMENTS_INVOICE_READ)
    invoices = Invoice.objects.filter(tenant_id=actor.tenant_id).select_related("client")
    if actor.role == Role.CLIENT:
        own = actor.membership.client_id
        if own is None:
            return invoices.none()
        # A draft is the business's work in progress, not yet a bill.
        return invoices.filter(client_id=own).exclude(status=InvoiceStatus.DRAFT)
    return invoices


def page_of_invoices(
    actor: Actor,
    *,
    status: InvoiceStatus | None = None,
    client_id: object = None,
    cursor: str | None = None,
    size: int = PER_PAGE,
) -> Page[Invoice]:
    """A page of the invoices the actor may see, optionally by status or client, oldest first:
    a bulk read naming their clients."""
    invoices = _visible_invoices(actor)
    if status is not None:
        invoices = invoices.filter(status=status)
    if client_id is not None:
        invoices = invoices.filter(client_id=parse_id(client_id))
    page = keyset_page(invoices, keys=INVOICE_ORDER, list_name="invoices", cursor=cursor, size=size)
    _record_list(AuditAction.INVOICE_LIST, actor, page.items)
    return page


def access_invoice_by_id(actor: Actor, invoice_id: object, *, intent: Intent) -> Invoice:
    """One invoice the actor may see, or 404; shown, the read is recorded. A refusal is noted."""
    key = parse_id(invoice_id)
    try:
        invoice = _visible_invoices(actor).get(id=key)
    except Invoice.DoesNotExist:
        note_refusal("invoice", key)
        raise Http404("No such invoice.") from None
    if intent is Intent.SHOW:
        record(AuditAction.INVOICE_READ, actor=actor, target=invoice)
    return invoice


@dataclass(frozen=True)
class InvoiceView:
    """An invoice as a page or answer shows it: lines, payments and amounts."""

    invoice: Invoice
    lines: list[InvoiceLine]
    payments: list[Payment]
    totals: Totals
    refunds: list[Refund] = field(default_factory=list)


def view_invoice(actor: Actor, invoice_id: object) -> InvoiceView:
    """One invoice with its lines, payments and totals, read and recorded."""
    return invoice_view(actor, access_invoice_by_id(actor, invoice_id, intent=Intent.SHOW))


def invoice_view(actor: Actor, invoice: Invoice, *, shown_again: bool = False) -> InvoiceView:
    """The view of an invoice already read through `access_invoice_by_id`; `shown_again`: it
    was read to be changed and a page shows it after all (a refused form), recorded as a read."""
    if shown_again:
        record(AuditAction.INVOICE_READ, actor=actor, target=invoice)
    lines = list(
        InvoiceLine.objects.filter(tenant_id=invoice.tenant_id, invoice_id=invoice.pk).order_by(
            "created_at", "id"
        )
    )
    payments = list(
        Payment.objects.filter(tenant_id=invoice.tenant_id, invoice_id=invoice.pk)
        .select_related("payment_method")
        .order_by("created_at", "id")
    )
    refunds = list(
        Refund.objects.filter(tenant_id=invoice.tenant_id, payment__invoice_id=invoice.pk).order_by(
            "created_at", "id"
        )
    )
    return InvoiceView(invoice, lines, payments, totals_of(invoice), refunds)


def access_invoice_line_by_id(actor: Actor, invoice: Invoice, line_id: object) -> InvoiceLine:
    """One line of an invoice the actor may change, or 404."""
    actor.require(Permission.PAYMENTS_INVOICE_WRITE)
    try:
        return InvoiceLine.objects.get(
            tenant_id=actor.tenant_id, invoice_id=invoice.pk, id=parse_id(line_id)
        )
    except InvoiceLine.DoesNotExist:
        raise Http404("No such invoice line.") from None


# --- Cards --------------------------------------------------------------------------------------


def _visible_cards(actor: Actor, permission: Permission) -> QuerySet[PaymentMethod]:
    """Saved cards (not removed) the actor may use for `permission`: a client only their own."""
    actor.require(permission)
    cards = PaymentMethod.objects.filter(tenant_id=actor.tenant_id, removed_at__isnull=True)
    if actor.role == Role.CLIENT:
        own = actor.membership.client_id
        return cards.none() if own is None else cards.filter(client_id=own)
    return cards


def read_cards_of(actor: Actor, client: Client) -> list[PaymentMethod]:
    """A client's saved cards (brand, last four, expiry), oldest first: a read of the client's
    cards, recorded (a client's page, the portal). Staff never."""
    cards = list(
        _visible_cards(actor, Permission.PAYMENTS_INVOICE_READ)
        .filter(client_id=client.pk)
        .order_by("created_at", "id")
    )
    record(
        AuditAction.PAYMENT_METHOD_LIST,
        actor=actor,
        subject_ids=[client.pk],
        detail={"count": len(cards), "ids": [str(card.pk) for card in cards]},
    )
    return cards


def access_card_by_id(actor: Actor, card_id: object, *, permission: Permission) -> PaymentMethod:
    """One saved card the actor may use for `permission` (to remove it, to charge it), or 404.
    A refusal is noted."""
    key = parse_id(card_id)
    try:
        return _visible_cards(actor, permission).select_related("client").get(id=key)
    except PaymentMethod.DoesNotExist:
        note_refusal("paymentmethod", key)
        raise Http404("No such card.") from None


def access_card_payment_by_id(
    actor: Actor, payment_id: object, *, permission: Permission
) -> Payment:
    """One card payment the actor may act on (retry its charge, refund it), or 404."""
    actor.require(permission)
    key = parse_id(payment_id)
    payments = Payment.objects.filter(
        tenant_id=actor.tenant_id, method=PaymentType.CARD
    ).select_related("invoice", "payment_method")
    if actor.role == Role.CLIENT:
        payments = payments.filter(invoice__client_id=actor.membership.client_id)
    try:
        return payments.get(id=key)
    except Payment.DoesNotExist:
        note_refusal("payment", key)
        raise Http404("No such payment.") from None


# --- Recording -----------------------------------------------------------------------------------


def _record_list(
    action: AuditAction,
    actor: Actor,
    rows: Iterable[ClientPass | Invoice],
    *,
    client: Client | None = None,
) -> None:
    # A page of a list, even an empty one, is a read of the list; `client`: the one client whose
    # list it is (named even when they have nothing in it).
    rows = list(rows)
    subjects = sorted({row.client_id for row in rows} | ({client.pk} if client else set()), key=str)
    record(
        action,
        actor=actor,
        subject_ids=subjects,
        detail={"count": len(rows), "ids": [str(row.pk) for row in rows]},
    )
