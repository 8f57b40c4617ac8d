"""An invoice's amounts, always computed from its lines and payments (never stored twice)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from custodia.payments.models import Invoice, InvoiceLine, Payment, PaymentStatus


@dataclass(frozen=True)
class Totals:
    """What an invoice comes to, what was received against it, and what is still due."""

    total: int
    paid: int

    @property
    def due(self) -> int:
        return max(self.total - self.paid, 0)


def totals_of(invoice: Invoice) -> Totals:
    """The invoice's total (its lines) and paid amount (its succeeded payments)."""
    total = InvoiceLine.objects.filter(
        tenant_id=invoice.tenant_id, invoice_id=invoice.pk
    ).aggregate(total=Sum("amount_minor"))["total"]
    paid = Payment.objects.filter(
        tenant_id=invoice.tenant_id, invoice_id=invoice.pk, status=PaymentStatus.SUCCEEDED
    ).aggregate(paid=Sum("amount_minor"))["paid"]
    return Totals(total=int(total or 0), paid=int(paid or 0))
