"""What payments announce to the business's webhook endpoints (docs/webhooks.md), inside the
action's transaction: ids, numbers, amounts, currencies, statuses and balances; never a client's
name, an invoice line's text, a payment's reference or anything of a card but what the app keeps.
"""

from __future__ import annotations

from django.dispatch import Signal

from custodia.core.actor import Actor
from custodia.payments.models import ClientMembership, ClientPass, Invoice, Payment, Refund
from custodia.webhooks.events import emit_event
from custodia.webhooks.models import EventType

# Sent with every membership announcement, inside the action's transaction (`membership`).
membership_announced = Signal()


def _when(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]


def announce_invoice(event: EventType, invoice: Invoice, *, actor: Actor, total: int) -> None:
    """invoice.issued / .paid / .voided."""
    emit_event(
        event,
        {
            "id": str(invoice.pk),
            "business_id": str(invoice.tenant_id),
            "client_id": str(invoice.client_id),
            "number": invoice.number,
            "status": str(invoice.status),
            "currency": invoice.currency,
            "total_minor": total,
            "issued_at": _when(invoice.issued_at),
            "paid_at": _when(invoice.paid_at),
            "voided_at": _when(invoice.voided_at),
        },
        actor=actor,
    )


def announce_payment(event: EventType, payment: Payment, *, actor: Actor) -> None:
    """payment.succeeded / .failed / .refunded."""
    emit_event(
        event,
        {
            "id": str(payment.pk),
            "business_id": str(payment.tenant_id),
            "invoice_id": str(payment.invoice_id),
            "method": str(payment.method),
            "status": str(payment.status),
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
        },
        actor=actor,
    )


def announce_refund(refund: Refund, payment: Payment, *, actor: Actor) -> None:
    """payment.refunded: a succeeded refund of a card payment (in full or in part)."""
    emit_event(
        EventType.PAYMENT_REFUNDED,
        {
            "id": str(payment.pk),
            "business_id": str(payment.tenant_id),
            "invoice_id": str(payment.invoice_id),
            "refund_id": str(refund.pk),
            "refunded_minor": refund.amount_minor,
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
        },
        actor=actor,
    )


def announce_pass(
    event: EventType, client_pass: ClientPass, *, actor: Actor, visit_id: object = None
) -> None:
    """pass.sold / .voided / .credit_used / .credit_returned / .expired."""
    data: dict[str, object] = {
        "id": str(client_pass.pk),
        "business_id": str(client_pass.tenant_id),
        "client_id": str(client_pass.client_id),
        "pass_type_id": str(client_pass.pass_type_id) if client_pass.pass_type_id else None,
        "status": str(client_pass.status),
        "credits_total": client_pass.credits_total,
        "credits_left": client_pass.credits_left,
        "starts_at": _when(client_pass.starts_at),
        "expires_at": _when(client_pass.expires_at),
    }
    if visit_id is not None:
        data["visit_id"] = str(visit_id)
    emit_event(event, data, actor=actor)


def announce_membership(
    event: EventType, membership: ClientMembership, *, actor: Actor, visit_id: object = None
) -> None:
    """membership.started / .cancelled / .credit_used / .credit_returned."""
    data: dict[str, object] = {
        "id": str(membership.pk),
        "business_id": str(membership.tenant_id),
        "client_id": str(membership.client_id),
        "plan_id": str(membership.plan_id) if membership.plan_id else None,
        "status": str(membership.status),
        "monthly_price_minor": membership.monthly_price_minor,
        "currency": membership.currency,
        "credits_per_month": membership.credits_per_month,
        "credits_left": membership.credits_this_period,
        "current_period_start": _when(membership.current_period_start),
        "current_period_end": _when(membership.current_period_end),
    }
    if visit_id is not None:
        data["visit_id"] = str(visit_id)
    emit_event(event, data, actor=actor)
    membership_announced.send(ClientMembership, membership=membership)
