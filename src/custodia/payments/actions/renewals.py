"""Membership renewals: when a membership's period ends, the next one begins with the plan's
credits and an issued invoice for it (the membership's own price and currency, snapshotted when
it started).

The membership is `past_due` from the renewal until that invoice is paid: a past-due membership
gives no credits (passes.py), so a month is used only once it is paid for. Paying the invoice, by
hand or by card, makes it active again (`reactivate_paid_memberships`, called where an invoice
becomes paid, and again by the periodic task for payments whose payer may not change
memberships). A cancelled membership is not renewed: its last period's credits lapse with it.

A worker that was down for longer than a period does not bill the months it missed: the next
period then starts at the renewal, not where the last one ended.

A membership with an autopay card has its renewal invoice noted for the autopay task
(`autopay.py`), which charges it to that card at once and retries a decline.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.payments.actions.invoices import (
    add_line,
    do_issue_invoice,
    reactivate_paid_memberships,
)
from custodia.payments.actions.passes import MEMBERSHIP_PERIOD
from custodia.payments.events import announce_membership
from custodia.payments.models import (
    ClientMembership,
    Invoice,
    InvoiceStatus,
    MembershipStatus,
)
from custodia.webhooks.models import EventType

RENEWING = (MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)


def due_memberships(actor: Actor, now: dt.datetime) -> QuerySet[ClientMembership]:
    """The actor's business's memberships whose period has ended and that renew."""
    return ClientMembership.objects.filter(
        tenant_id=actor.tenant_id, status__in=RENEWING, current_period_end__lte=now
    ).order_by("current_period_end", "id")


def do_renew_membership(
    membership: ClientMembership, *, actor: Actor, now: dt.datetime | None = None
) -> Invoice | None:
    """Begin a membership's next period (its credits back to the plan's) with an issued invoice
    for it; the membership is past due until that is paid. None when it is not due."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    actor.require(Permission.PAYMENTS_INVOICE_WRITE)
    ensure_in_business(actor, membership)
    moment = now or timezone.now()
    with transaction.atomic():
        locked = ClientMembership.objects.select_for_update().get(
            tenant_id=actor.tenant_id, pk=membership.pk
        )
        if locked.status not in RENEWING or locked.current_period_end > moment:
            return None
        start = locked.current_period_end
        if moment - start >= MEMBERSHIP_PERIOD:
            start = moment  # missed periods are not billed
        locked.current_period_start, locked.current_period_end = start, start + MEMBERSHIP_PERIOD
        locked.credits_this_period = locked.credits_per_month
        locked.status = MembershipStatus.PAST_DUE
        locked.save(
            update_fields=[
                "current_period_start",
                "current_period_end",
                "credits_this_period",
                "status",
            ]
        )
        invoice = Invoice.objects.create(
            tenant_id=actor.tenant_id, client_id=locked.client_id, currency=locked.currency
        )
        record(AuditAction.INVOICE_CREATE, actor=actor, target=invoice)
        local = timezone.localtime(start)
        add_line(
            invoice,
            f"{locked.name}, month from {local:%Y-%m-%d}",
            1,
            locked.monthly_price_minor,
            membership=locked,
        )
        do_issue_invoice(invoice, actor=actor)
        record(
            AuditAction.MEMBERSHIP_RENEW,
            actor=actor,
            target=locked,
            detail={
                "invoice": str(invoice.pk),
                "number": invoice.number,
                "period_start": start.isoformat(),
            },
        )
        locked.refresh_from_db(fields=["status"])  # active at once if it came to nothing
        if locked.autopay_card_id is not None and locked.status == MembershipStatus.PAST_DUE:
            # The autopay task charges it at once (autopay.py), then retries a decline.
            locked.autopay_invoice, locked.autopay_attempts = invoice, 0
            locked.autopay_next_at = moment
            locked.save(update_fields=["autopay_invoice", "autopay_attempts", "autopay_next_at"])
        announce_membership(EventType.MEMBERSHIP_RENEWED, locked, actor=actor)
    membership.refresh_from_db()
    return invoice


def do_renew_memberships(*, actor: Actor, now: dt.datetime | None = None) -> tuple[int, int]:
    """The periodic task's work in one business: renew what is due, and make active again the
    past-due memberships whose renewal invoice was paid meanwhile. (renewed, reactivated)"""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    moment = now or timezone.now()
    renewed = sum(
        do_renew_membership(membership, actor=actor, now=moment) is not None
        for membership in due_memberships(actor, moment)
    )
    paid = Invoice.objects.filter(
        tenant_id=actor.tenant_id,
        status=InvoiceStatus.PAID,
        lines__membership__status=MembershipStatus.PAST_DUE,
    ).distinct()
    reactivated = sum(reactivate_paid_memberships(invoice, actor=actor) for invoice in paid)
    return renewed, reactivated
