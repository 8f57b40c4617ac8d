"""Invoices: drafts built from completed visits, lines, issuing (numbering), voiding, payments.

Numbers are gapless per business: issuing locks the business's counter row FOR UPDATE, takes the
next number and writes it in the same transaction, so a rolled-back issue gives its number back
and two issues at once take consecutive numbers.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from custodia.clients.models import Client
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.payments.events import announce_invoice, announce_membership, announce_payment
from custodia.payments.models import (
    DESCRIPTION_LENGTH,
    MAX_PRICE,
    MAX_QUANTITY,
    REFERENCE_LENGTH,
    ClientMembership,
    CreditUse,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStatus,
    MembershipStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from custodia.payments.money import format_money
from custodia.payments.totals import totals_of
from custodia.scheduling.models import Visit, VisitStatus
from custodia.tenancy.models import Business
from custodia.webhooks.models import EventType

MANUAL_METHODS = (PaymentMethod.CASH, PaymentMethod.OTHER)
ALREADY_INVOICED = "This visit is already on an invoice that is not void."


def invoiceable_visits(actor: Actor, client: Client) -> QuerySet[Visit]:
    """The client's completed visits that are on no invoice that is not void and took no pass
    credit (or got it back), oldest first."""
    used = CreditUse.objects.filter(tenant_id=actor.tenant_id, change=-1).values("visit_id")
    returned = CreditUse.objects.filter(tenant_id=actor.tenant_id, change=1).values("visit_id")
    return (
        Visit.objects.filter(
            tenant_id=actor.tenant_id, client_id=client.pk, status=VisitStatus.COMPLETED
        )
        .exclude(invoice_lines__voided=False)
        .exclude(Q(id__in=used) & ~Q(id__in=returned))
        .select_related("service")
        .order_by("starts_at", "id")
    )


def business_currency(actor: Actor) -> str:
    """The currency the actor's business sells and invoices in now."""
    return Business.objects.values_list("currency", flat=True).get(pk=actor.tenant_id)


def _require_invoicing(actor: Actor, *records: object) -> None:
    require_active(actor)
    actor.require(Permission.PAYMENTS_INVOICE_WRITE)
    ensure_in_business(actor, *records)


def _require_draft(invoice: Invoice) -> None:
    if invoice.status != InvoiceStatus.DRAFT:
        raise ValidationError("Only a draft invoice can be changed.")


def new_invoice(actor: Actor, client: Client) -> Invoice:
    """A draft for `client` in the business's currency (inside an action's transaction)."""
    return Invoice.objects.create(
        tenant_id=actor.tenant_id, client=client, currency=business_currency(actor)
    )


def do_create_invoice(client: Client, *, actor: Actor) -> Invoice:
    """A draft invoice for a client with a line for each invoiceable visit (at its service's
    price); with none, an empty draft to add lines to."""
    _require_invoicing(actor, client)
    with transaction.atomic():
        invoice = new_invoice(actor, client)
        visits = list(invoiceable_visits(actor, client))
        for visit in visits:
            price = visit.service.price_cents if visit.service else 0
            name = visit.service.name if visit.service else "Visit"
            local = timezone.localtime(visit.starts_at)
            add_line(invoice, f"{name}, {local:%Y-%m-%d %H:%M}", 1, price, visit=visit)
        record(
            AuditAction.INVOICE_CREATE,
            actor=actor,
            target=invoice,
            detail={"visits": [str(visit.pk) for visit in visits]},
        )
    return invoice


def add_line(
    invoice: Invoice, description: str, quantity: int, unit_price_minor: int, **links: object
) -> InvoiceLine:
    """A line on a draft, inside an action's transaction (checked by the caller)."""
    try:
        with transaction.atomic():
            return InvoiceLine.objects.create(
                tenant_id=invoice.tenant_id,
                invoice=invoice,
                description=description[:DESCRIPTION_LENGTH],
                quantity=quantity,
                unit_price_minor=unit_price_minor,
                amount_minor=quantity * unit_price_minor,
                **links,
            )
    except IntegrityError:
        # The one unique constraint a line has: its visit on another live invoice (a race with
        # another draft; the query above leaves such visits out).
        raise ValidationError({"visit": ALREADY_INVOICED}) from None


def _check_line(description: str, quantity: int, unit_price_minor: int) -> None:
    errors = {}
    if not description.strip():
        errors["description"] = "Say what the line is for."
    elif len(description.strip()) > DESCRIPTION_LENGTH:
        errors["description"] = f"At most {DESCRIPTION_LENGTH} characters."
    if not 1 <= quantity <= MAX_QUANTITY:
        errors["quantity"] = f"Between 1 and {MAX_QUANTITY}."
    if not 0 <= unit_price_minor <= MAX_PRICE:
        errors["unit_price_minor"] = f"Between 0 and {MAX_PRICE:,} (in the smallest unit)."
    if errors:
        raise ValidationError(errors)


def do_add_invoice_line(
    invoice: Invoice,
    *,
    actor: Actor,
    description: str,
    quantity: int,
    unit_price_minor: int,
    visit: Visit | None = None,
) -> InvoiceLine:
    """A line on a draft; a visit (of the invoice's client, completed) at most once."""
    _require_invoicing(actor, invoice, visit)
    _require_draft(invoice)
    _check_line(description, quantity, unit_price_minor)
    if visit is not None and (
        visit.client_id != invoice.client_id or visit.status != VisitStatus.COMPLETED
    ):
        raise ValidationError({"visit": "Choose a completed visit of this invoice's client."})
    with transaction.atomic():
        line = add_line(invoice, description.strip(), quantity, unit_price_minor, visit=visit)
        record(
            AuditAction.INVOICE_LINE_ADD,
            actor=actor,
            target=invoice,
            detail={"line": str(line.pk), "amount_minor": line.amount_minor},
        )
    return line


def do_remove_invoice_line(line: InvoiceLine, *, actor: Actor) -> None:
    """Remove a line from a draft (a visit on it becomes invoiceable again)."""
    _require_invoicing(actor, line)
    invoice = line.invoice
    _require_draft(invoice)
    with transaction.atomic():
        record(
            AuditAction.INVOICE_LINE_REMOVE,
            actor=actor,
            target=invoice,
            detail={"line": str(line.pk)},
        )
        line.delete()


def _next_number(tenant_id: uuid.UUID) -> int:
    """The business's next invoice number, its counter row locked until the transaction ends."""
    InvoiceCounter.objects.bulk_create([InvoiceCounter(tenant_id=tenant_id)], ignore_conflicts=True)
    counter = InvoiceCounter.objects.select_for_update().get(tenant_id=tenant_id)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def do_issue_invoice(invoice: Invoice, *, actor: Actor) -> Invoice:
    """Number a draft and send it to its client (open; paid at once when it comes to nothing)."""
    _require_invoicing(actor, invoice)
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(tenant_id=actor.tenant_id, pk=invoice.pk)
        _require_draft(locked)
        totals = totals_of(locked)
        if not locked.lines.exists():
            raise ValidationError("Add at least one line before issuing the invoice.")
        now = timezone.now()
        locked.number = _next_number(actor.tenant_id)
        locked.issued_at = now
        locked.status = InvoiceStatus.OPEN
        fields = ["number", "issued_at", "status"]
        if totals.total == 0:
            locked.status, locked.paid_at = InvoiceStatus.PAID, now
            fields.append("paid_at")
        locked.save(update_fields=fields)
        record(
            AuditAction.INVOICE_ISSUE,
            actor=actor,
            target=locked,
            detail={"number": locked.number, "total_minor": totals.total},
        )
        announce_invoice(EventType.INVOICE_ISSUED, locked, actor=actor, total=totals.total)
        if locked.status == InvoiceStatus.PAID:
            announce_invoice(EventType.INVOICE_PAID, locked, actor=actor, total=totals.total)
            reactivate_paid_memberships(locked, actor=actor)
    _copy(locked, invoice, fields)
    return invoice


def do_void_invoice(invoice: Invoice, *, actor: Actor) -> Invoice:
    """Void a draft or open invoice: its number stays used, its visits can be invoiced again."""
    _require_invoicing(actor, invoice)
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(tenant_id=actor.tenant_id, pk=invoice.pk)
        if locked.status not in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN):
            raise ValidationError("Only a draft or open invoice can be voided.")
        if totals_of(locked).paid:
            raise ValidationError("Payments were received against this invoice: it stays.")
        locked.status, locked.voided_at = InvoiceStatus.VOID, timezone.now()
        locked.save(update_fields=["status", "voided_at"])
        freed = InvoiceLine.objects.filter(tenant_id=actor.tenant_id, invoice_id=locked.pk).update(
            voided=True
        )
        record(AuditAction.INVOICE_VOID, actor=actor, target=locked, detail={"lines": freed})
        announce_invoice(
            EventType.INVOICE_VOIDED, locked, actor=actor, total=totals_of(locked).total
        )
    _copy(locked, invoice, ["status", "voided_at"])
    return invoice


def do_record_payment(
    invoice: Invoice,
    *,
    actor: Actor,
    amount_minor: int,
    method: str,
    reference: str = "",
    received_at: dt.datetime | None = None,
) -> Payment:
    """Money received by hand (cash, or another way outside the app) against an open invoice;
    the invoice is paid once its total is covered. Card payments go through the vault."""
    _require_invoicing(actor, invoice)
    actor.require(Permission.PAYMENTS_PAYMENT_RECORD)
    errors = {}
    if method not in MANUAL_METHODS:
        errors["method"] = "Record cash or another method here; cards are charged elsewhere."
    if len(reference.strip()) > REFERENCE_LENGTH:
        errors["reference"] = f"At most {REFERENCE_LENGTH} characters."
    if not isinstance(amount_minor, int) or amount_minor <= 0:
        errors["amount_minor"] = "A payment is more than nothing."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(tenant_id=actor.tenant_id, pk=invoice.pk)
        if locked.status != InvoiceStatus.OPEN:
            raise ValidationError("Payments are recorded against open invoices only.")
        due = totals_of(locked).due
        if amount_minor > due:
            raise ValidationError(
                {"amount_minor": f"Only {format_money(due, locked.currency)} is due."}
            )
        payment = Payment.objects.create(
            tenant_id=actor.tenant_id,
            invoice=locked,
            amount_minor=amount_minor,
            currency=locked.currency,
            method=method,
            status=PaymentStatus.SUCCEEDED,
            reference=reference.strip(),
            recorded_by_id=actor.membership.pk,
        )
        record(
            AuditAction.PAYMENT_RECORD,
            actor=actor,
            target=locked,
            detail={"payment": str(payment.pk), "method": method, "amount_minor": amount_minor},
        )
        announce_payment(EventType.PAYMENT_SUCCEEDED, payment, actor=actor)
        settle_if_covered(locked, actor=actor, at=received_at)
    _copy(locked, invoice, ["status", "paid_at"])
    return payment


def settle_if_covered(invoice: Invoice, *, actor: Actor, at: dt.datetime | None = None) -> bool:
    """Mark a locked, open invoice paid when its succeeded payments cover its total (inside the
    transaction of the action that recorded a payment: this one, or a card charge's), and say
    so to the business's webhook endpoints."""
    totals = totals_of(invoice)
    if invoice.status != InvoiceStatus.OPEN or totals.paid < totals.total:
        return False
    invoice.status, invoice.paid_at = InvoiceStatus.PAID, at or timezone.now()
    invoice.save(update_fields=["status", "paid_at"])
    announce_invoice(EventType.INVOICE_PAID, invoice, actor=actor, total=totals.total)
    reactivate_paid_memberships(invoice, actor=actor)
    return True


def reactivate_paid_memberships(invoice: Invoice, *, actor: Actor) -> int:
    """Past-due memberships billed on `invoice`, now paid, active again (inside the transaction
    that marked it paid). Only for the membership's current period: an older invoice paid late
    does not pay for a newer month. A payer whose context may not change memberships (a client
    paying in the portal) changes none here: row-level security hides them from this update,
    and the renewal task finds the invoice paid within the hour."""
    billed = InvoiceLine.objects.filter(
        tenant_id=invoice.tenant_id, invoice_id=invoice.pk, membership__isnull=False
    ).values("membership_id")
    reactivated = 0
    for membership in ClientMembership.objects.select_for_update().filter(
        tenant_id=invoice.tenant_id,
        id__in=billed,
        status=MembershipStatus.PAST_DUE,
        current_period_start__lte=invoice.issued_at,
    ):
        changed = ClientMembership.objects.filter(
            tenant_id=invoice.tenant_id, pk=membership.pk, status=MembershipStatus.PAST_DUE
        ).update(status=MembershipStatus.ACTIVE)
        if not changed:
            continue
        membership.status = MembershipStatus.ACTIVE
        record(
            AuditAction.MEMBERSHIP_REACTIVATE,
            actor=actor,
            target=membership,
            detail={"invoice": str(invoice.pk), "number": invoice.number},
        )
        announce_membership(EventType.MEMBERSHIP_REACTIVATED, membership, actor=actor)
        reactivated += 1
    return reactivated


def _copy(source: Invoice, target: Invoice, fields: list[str]) -> None:
    for field in fields:
        setattr(target, field, getattr(source, field))
