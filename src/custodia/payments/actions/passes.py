"""Passes and memberships sold to clients, and the credits visits take from them.

A completed visit takes one credit from the client's membership in its current period, else from
their oldest pass that is active, started and not expired (payments/receivers.py hears
scheduling's signal inside the visit's transaction); with none, nothing is taken and the visit is
invoiceable. Cancelling a completed visit gives its
credit back when the business's rule (`Business.credit_back_on_cancel`) says so. A visit takes at
most one credit and gets at most one back (unique constraints on the uses), and a balance never
goes below zero (its column is unsigned and the pass row is locked while it changes).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from custodia.clients.models import Client
from custodia.core.actor import Actor, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission
from custodia.payments.actions.invoices import (
    add_line,
    business_currency,
    do_issue_invoice,
    new_invoice,
)
from custodia.payments.events import announce_membership, announce_pass
from custodia.payments.models import (
    ClientMembership,
    ClientPass,
    CreditUse,
    Invoice,
    InvoiceLine,
    MembershipPlan,
    MembershipStatus,
    PassStatus,
    PassType,
)
from custodia.scheduling.models import Visit
from custodia.tenancy.models import Business
from custodia.webhooks.models import EventType

MEMBERSHIP_PERIOD = dt.timedelta(days=30)


def do_sell_pass(
    client: Client, pass_type: PassType, *, actor: Actor, starts_at: dt.datetime | None = None
) -> tuple[ClientPass, Invoice]:
    """Sell a pass to a client: the pass (a snapshot of its type) and an issued invoice for it."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    actor.require(Permission.PAYMENTS_INVOICE_WRITE)
    ensure_in_business(actor, client, pass_type)
    if not pass_type.is_active:
        raise ValidationError({"pass_type": "This pass type is no longer sold."})
    if client.erased_at is not None:
        raise ValidationError({"client": "This client's data was erased."})
    start = starts_at or timezone.now()
    with transaction.atomic():
        client_pass = ClientPass.objects.create(
            tenant_id=actor.tenant_id,
            client=client,
            pass_type=pass_type,
            name=pass_type.name,
            credits_total=pass_type.credits,
            credits_left=pass_type.credits,
            price_minor=pass_type.price_minor,
            currency=business_currency(actor),
            starts_at=start,
            expires_at=start + dt.timedelta(days=pass_type.validity_days),
        )
        record(AuditAction.PASS_SELL, actor=actor, target=client_pass)
        announce_pass(EventType.PASS_SOLD, client_pass, actor=actor)
        invoice = new_invoice(actor, client)
        record(AuditAction.INVOICE_CREATE, actor=actor, target=invoice)
        add_line(
            invoice,
            f"{pass_type.name} ({pass_type.credits} credits)",
            1,
            pass_type.price_minor,
            client_pass=client_pass,
        )
        do_issue_invoice(invoice, actor=actor)
    return client_pass, invoice


def do_void_pass(client_pass: ClientPass, *, actor: Actor) -> ClientPass:
    """Void a pass (sold in error, refunded elsewhere): it gives no more credits."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    ensure_in_business(actor, client_pass)
    if client_pass.status == PassStatus.VOID:
        raise ValidationError("This pass is already void.")
    with transaction.atomic():
        client_pass.status = PassStatus.VOID
        client_pass.save(update_fields=["status"])
        record(AuditAction.PASS_VOID, actor=actor, target=client_pass)
        announce_pass(EventType.PASS_VOIDED, client_pass, actor=actor)
    return client_pass


def _may_complete(actor: Actor, visit: Visit) -> bool:
    if actor.can(Permission.VISITS_WRITE):
        return True
    return actor.can(Permission.VISITS_REPORT) and visit.staff_id == actor.membership.pk


def _membership_with_credit(
    actor: Actor, visit: Visit, now: dt.datetime
) -> ClientMembership | None:
    """The client's membership whose current period is now and has a credit left, locked; an
    active one, or a cancelled one whose last period still runs (its credits stay)."""
    return (
        ClientMembership.objects.select_for_update()
        .filter(
            tenant_id=actor.tenant_id,
            client_id=visit.client_id,
            status__in=[MembershipStatus.ACTIVE, MembershipStatus.CANCELLED],
            credits_this_period__gt=0,
            current_period_start__lte=now,
            current_period_end__gt=now,
        )
        .order_by("current_period_end", "created_at", "id")
        .first()
    )


def _pass_with_credit(actor: Actor, visit: Visit, now: dt.datetime) -> ClientPass | None:
    """The client's oldest pass that is active, started, not expired and has a credit, locked."""
    return (
        ClientPass.objects.select_for_update()
        .filter(
            tenant_id=actor.tenant_id,
            client_id=visit.client_id,
            status=PassStatus.ACTIVE,
            credits_left__gt=0,
            starts_at__lte=now,
            expires_at__gt=now,
        )
        .order_by("starts_at", "created_at", "id")
        .first()
    )


def do_use_credit(visit: Visit, *, actor: Actor) -> CreditUse | None:
    """A completed visit takes a credit: from the client's membership in its current period
    first (those lapse at the period's end), else from their oldest valid pass; None when the
    visit took one already, is on an invoice, or the client has no credit anywhere."""
    require_active(actor)
    ensure_in_business(actor, visit)
    if not _may_complete(actor, visit):
        raise PermissionDenied("You cannot complete this visit.")
    taken = CreditUse.objects.filter(tenant_id=actor.tenant_id, visit_id=visit.pk)
    if taken.filter(change=-1).exists():
        return None
    if InvoiceLine.objects.filter(
        tenant_id=actor.tenant_id, visit_id=visit.pk, voided=False
    ).exists():
        return None
    now = timezone.now()
    with transaction.atomic():
        membership = _membership_with_credit(actor, visit, now)
        if membership is not None:
            membership.credits_this_period -= 1
            membership.save(update_fields=["credits_this_period"])
            use = CreditUse.objects.create(
                tenant_id=actor.tenant_id,
                membership=membership,
                visit=visit,
                change=-1,
                reason="Visit completed",
            )
            record(
                AuditAction.MEMBERSHIP_CREDIT_USE,
                actor=actor,
                target=membership,
                detail={"visit": str(visit.pk), "credits_left": membership.credits_this_period},
            )
            announce_membership(
                EventType.MEMBERSHIP_CREDIT_USED, membership, actor=actor, visit_id=visit.pk
            )
            return use
        client_pass = _pass_with_credit(actor, visit, now)
        if client_pass is None:
            return None
        client_pass.credits_left -= 1
        if client_pass.credits_left == 0:
            client_pass.status = PassStatus.USED_UP
        client_pass.save(update_fields=["credits_left", "status"])
        use = CreditUse.objects.create(
            tenant_id=actor.tenant_id,
            client_pass=client_pass,
            visit=visit,
            change=-1,
            reason="Visit completed",
        )
        record(
            AuditAction.CREDIT_USE,
            actor=actor,
            target=client_pass,
            detail={"visit": str(visit.pk), "credits_left": client_pass.credits_left},
        )
        announce_pass(EventType.PASS_CREDIT_USED, client_pass, actor=actor, visit_id=visit.pk)
    return use


def do_return_credit(visit: Visit, *, actor: Actor) -> CreditUse | None:
    """A cancelled visit's credit, back where it came from when the business gives credits back
    on cancellation; None when the rule says no, the visit took none, it was given back, its pass
    is void, or its membership's period has moved on (that period's credits lapsed)."""
    require_active(actor)
    actor.require(Permission.VISITS_WRITE)
    ensure_in_business(actor, visit)
    rule = Business.objects.values_list("credit_back_on_cancel", flat=True).get(pk=actor.tenant_id)
    uses = CreditUse.objects.filter(tenant_id=actor.tenant_id, visit_id=visit.pk)
    used = uses.filter(change=-1).first()
    if not rule or used is None or uses.filter(change=1).exists():
        return None
    with transaction.atomic():
        if used.membership_id is not None:
            return _return_to_membership(used, visit, actor=actor)
        assert used.client_pass_id is not None  # use_from_one_source
        client_pass = ClientPass.objects.select_for_update().get(
            tenant_id=actor.tenant_id, pk=used.client_pass_id
        )
        if client_pass.status == PassStatus.VOID:
            return None
        client_pass.credits_left = F("credits_left") + 1
        if client_pass.status == PassStatus.USED_UP:
            client_pass.status = PassStatus.ACTIVE
        client_pass.save(update_fields=["credits_left", "status"])
        client_pass.refresh_from_db(fields=["credits_left"])
        back = CreditUse.objects.create(
            tenant_id=actor.tenant_id,
            client_pass=client_pass,
            visit=visit,
            change=1,
            reason="Visit cancelled",
        )
        record(
            AuditAction.CREDIT_RETURN,
            actor=actor,
            target=client_pass,
            detail={"visit": str(visit.pk), "credits_left": client_pass.credits_left},
        )
        announce_pass(EventType.PASS_CREDIT_RETURNED, client_pass, actor=actor, visit_id=visit.pk)
    return back


def _return_to_membership(used: CreditUse, visit: Visit, *, actor: Actor) -> CreditUse | None:
    """The membership credit of `used` back, when its period is still the current one."""
    assert used.membership_id is not None
    membership = ClientMembership.objects.select_for_update().get(
        tenant_id=actor.tenant_id, pk=used.membership_id
    )
    if used.created_at < membership.current_period_start:
        return None
    membership.credits_this_period = F("credits_this_period") + 1
    membership.save(update_fields=["credits_this_period"])
    membership.refresh_from_db(fields=["credits_this_period"])
    back = CreditUse.objects.create(
        tenant_id=actor.tenant_id,
        membership=membership,
        visit=visit,
        change=1,
        reason="Visit cancelled",
    )
    record(
        AuditAction.MEMBERSHIP_CREDIT_RETURN,
        actor=actor,
        target=membership,
        detail={"visit": str(visit.pk), "credits_left": membership.credits_this_period},
    )
    announce_membership(
        EventType.MEMBERSHIP_CREDIT_RETURNED, membership, actor=actor, visit_id=visit.pk
    )
    return back


def do_expire_passes(*, actor: Actor, now: dt.datetime | None = None) -> int:
    """Passes of the actor's business past their expiry, marked expired (the daily task)."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    moment = now or timezone.now()
    with transaction.atomic():
        due = list(
            ClientPass.objects.select_for_update()
            .filter(
                tenant_id=actor.tenant_id,
                status__in=[PassStatus.ACTIVE, PassStatus.USED_UP],
                expires_at__lte=moment,
            )
            .values_list("id", "client_id")
        )
        if not due:
            return 0
        ClientPass.objects.filter(tenant_id=actor.tenant_id, id__in=[row[0] for row in due]).update(
            status=PassStatus.EXPIRED
        )
        record(
            AuditAction.PASS_EXPIRE,
            actor=actor,
            subject_ids=sorted({row[1] for row in due}, key=str),
            detail={"count": len(due), "ids": [str(row[0]) for row in due]},
        )
        for expired in ClientPass.objects.filter(
            tenant_id=actor.tenant_id, id__in=[row[0] for row in due]
        ).order_by("id"):
            announce_pass(EventType.PASS_EXPIRED, expired, actor=actor)
    return len(due)


def do_start_membership(
    client: Client, plan: MembershipPlan, *, actor: Actor, starts_at: dt.datetime | None = None
) -> tuple[ClientMembership, Invoice]:
    """Start a client's membership: its first period (active at once: the manager starting it
    decides) and an issued invoice for it; renewals.py begins the next ones."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    actor.require(Permission.PAYMENTS_INVOICE_WRITE)
    ensure_in_business(actor, client, plan)
    if not plan.is_active:
        raise ValidationError({"plan": "This plan is no longer sold."})
    start = starts_at or timezone.now()
    with transaction.atomic():
        membership = ClientMembership.objects.create(
            tenant_id=actor.tenant_id,
            client=client,
            plan=plan,
            name=plan.name,
            monthly_price_minor=plan.monthly_price_minor,
            credits_per_month=plan.credits_per_month,
            currency=business_currency(actor),
            current_period_start=start,
            current_period_end=start + MEMBERSHIP_PERIOD,
            credits_this_period=plan.credits_per_month,
        )
        invoice = new_invoice(actor, client)
        record(AuditAction.MEMBERSHIP_START, actor=actor, target=membership)
        announce_membership(EventType.MEMBERSHIP_STARTED, membership, actor=actor)
        record(AuditAction.INVOICE_CREATE, actor=actor, target=invoice)
        local = timezone.localtime(start)
        add_line(
            invoice,
            f"{plan.name}, month from {local:%Y-%m-%d}",
            1,
            plan.monthly_price_minor,
            membership=membership,
        )
        do_issue_invoice(invoice, actor=actor)
    return membership, invoice


def do_cancel_membership(membership: ClientMembership, *, actor: Actor) -> ClientMembership:
    """Cancel a membership: it is not renewed; the current period's credits stay."""
    require_active(actor)
    actor.require(Permission.PAYMENTS_PASS_WRITE)
    ensure_in_business(actor, membership)
    if membership.status == MembershipStatus.CANCELLED:
        raise ValidationError("This membership is already cancelled.")
    with transaction.atomic():
        membership.status = MembershipStatus.CANCELLED
        membership.cancelled_at = timezone.now()
        membership.save(update_fields=["status", "cancelled_at"])
        record(AuditAction.MEMBERSHIP_CANCEL, actor=actor, target=membership)
        announce_membership(EventType.MEMBERSHIP_CANCELLED, membership, actor=actor)
    return membership
