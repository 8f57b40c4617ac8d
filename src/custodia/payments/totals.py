"""An invoice's amounts, always computed from its lines, payments and refunds (never stored)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from custodia.payments.models import (
    Invoice,
    InvoiceLine,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)


@dataclass(frozen=True)
class Totals:
    """What an invoice comes to, what was received against it, what is still due, and what was
    given back of it since (refunds do not make an invoice due again: docs/payments-domain.md)."""

    total: int
    paid: int
    refunded: int = 0

    @property
    def due(self) -> int:
        return max(self.total - self.paid, 0)

    @property
    def kept(self) -> int:
        """What the business kept: received less refunded."""
        return self.paid - self.refunded


def totals_of(invoice: Invoice) -> Totals:
    """The invoice's total (its lines), paid amount (its succeeded payments) and refunds."""
    total = InvoiceLine.objects.filter(
        tenant_id=invoice.tenant_id, invoice_id=invoice.pk
    ).aggregate(total=Sum("amount_minor"))["total"]
    paid = Payment.objects.filter(
        tenant_id=invoice.tenant_id, invoice_id=invoice.pk, status=PaymentStatus.SUCCEEDED
    ).aggregate(paid=Sum("amount_minor"))["paid"]
    refunded = Refund.objects.filter(
        tenant_id=invoice.tenant_id,
        payment__invoice_id=invoice.pk,
        status=RefundStatus.SUCCEEDED,
    ).aggregate(refunded=Sum("amount_minor"))["refunded"]
    return Totals(total=int(total or 0), paid=int(paid or 0), refunded=int(refunded or 0))


def refunded_of(payment: Payment, *, include_pending: bool = False) -> int:
    """How much of a payment was given back (with refunds not confirmed yet, when asked: what
    a new refund may not go beyond)."""
    statuses = [RefundStatus.SUCCEEDED] + ([RefundStatus.PENDING] if include_pending else [])
    refunded = Refund.objects.filter(
        tenant_id=payment.tenant_id, payment_id=payment.pk, status__in=statuses
    ).aggregate(refunded=Sum("amount_minor"))["refunded"]
    return int(refunded or 0)
