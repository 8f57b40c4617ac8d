"""Membership renewals (payments/actions/renewals.py): the next period with its credits and an
issued invoice, past due until paid and then active again; never twice for one period; missed
months not billed; cancelled memberships not renewed; each business in its own context."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from custodia.audit.models import AuditEvent
from custodia.payments.actions.catalog import do_create_plan
from custodia.payments.actions.invoices import do_record_payment
from custodia.payments.actions.passes import (
    MEMBERSHIP_PERIOD,
    do_cancel_membership,
    do_start_membership,
)
from custodia.payments.actions.renewals import do_renew_membership, do_renew_memberships
from custodia.payments.models import (
    ClientMembership,
    CreditUse,
    Invoice,
    InvoiceStatus,
    MembershipStatus,
)
from custodia.tenancy.actors import system_actor
from tests.acting import act
from tests.factories import Business, TenantMatrix
from tests.payments.support import catalog, complete, new_visit

pytestmark = pytest.mark.django_db


def started(business: Business, *, days_ago: float = 31) -> ClientMembership:
    kinds = catalog(business)
    act(business.manager)
    membership, _invoice = do_start_membership(
        business.client,
        kinds.plan,
        actor=business.manager,
        starts_at=timezone.now() - dt.timedelta(days=days_ago),
    )
    return membership


def task_for(business: Business) -> object:
    job = system_actor(business.owner.tenant_id, task="membership-renewals")
    act(job)
    return job


def test_a_due_membership_renews_once_with_its_credits_and_an_issued_invoice(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    membership = started(a)
    end = membership.current_period_end
    act(a.owner)
    ClientMembership.objects.filter(pk=membership.pk).update(credits_this_period=1)
    job = task_for(a)
    assert do_renew_memberships(actor=job) == (1, 0)  # type: ignore[arg-type]
    assert do_renew_memberships(actor=job) == (0, 0)  # type: ignore[arg-type]
    membership.refresh_from_db()
    assert (membership.current_period_start, membership.current_period_end) == (
        end,
        end + MEMBERSHIP_PERIOD,
    )
    assert (membership.credits_this_period, membership.status) == (4, MembershipStatus.PAST_DUE)
    act(a.owner)
    renewal = Invoice.objects.filter(lines__membership=membership).latest("number")
    assert (renewal.status, renewal.number, renewal.currency) == (InvoiceStatus.OPEN, 2, "USD")
    assert [line.amount_minor for line in renewal.lines.all()] == [8000]
    assert AuditEvent.objects.filter(action="client_membership.renew").count() == 1


def test_past_due_gives_no_credit_until_paid_then_active_again(matrix: TenantMatrix) -> None:
    a = matrix.a
    membership = started(a)
    do_renew_membership(membership, actor=task_for(a))  # type: ignore[arg-type]
    visit = complete(new_visit(a), a.owner)
    act(a.owner)
    assert not CreditUse.objects.filter(visit=visit).exists()
    renewal = Invoice.objects.filter(lines__membership=membership).latest("number")
    act(a.manager)
    do_record_payment(renewal, actor=a.manager, amount_minor=8000, method="cash")
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE
    second = complete(new_visit(a), a.owner)
    act(a.owner)
    assert CreditUse.objects.get(visit=second).membership_id == membership.pk
    assert AuditEvent.objects.filter(action="client_membership.reactivate").count() == 1


def test_paying_last_months_invoice_late_does_not_pay_for_this_one(matrix: TenantMatrix) -> None:
    a = matrix.a
    membership = started(a, days_ago=61)
    job = task_for(a)
    # Two months behind: one renewal (missed months are not billed), from now.
    before = timezone.now()
    do_renew_memberships(actor=job)  # type: ignore[arg-type]
    membership.refresh_from_db()
    assert membership.current_period_start >= before
    act(a.owner)
    first = Invoice.objects.filter(lines__membership=membership).earliest("number")
    act(a.manager)
    do_record_payment(first, actor=a.manager, amount_minor=8000, method="cash")
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.PAST_DUE


def test_cancelled_memberships_are_not_renewed(matrix: TenantMatrix) -> None:
    a = matrix.a
    membership = started(a)
    act(a.manager)
    do_cancel_membership(membership, actor=a.manager)
    assert do_renew_memberships(actor=task_for(a)) == (0, 0)  # type: ignore[arg-type]
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.CANCELLED


def test_a_free_plan_renews_active_and_the_task_reactivates_what_was_paid_meanwhile(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    act(a.owner)
    free = do_create_plan(actor=a.owner, name="Club", monthly_price_minor=0, credits_per_month=2)
    act(a.manager)
    membership, _ = do_start_membership(
        a.client, free, actor=a.manager, starts_at=timezone.now() - dt.timedelta(days=31)
    )
    do_renew_membership(membership, actor=task_for(a))  # type: ignore[arg-type]
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE
    # A paid renewal invoice whose membership stayed past due (paid by someone whose context may
    # not change memberships): the task makes it active.
    paid = started(a)
    do_renew_membership(paid, actor=task_for(a))  # type: ignore[arg-type]
    act(a.owner)
    Invoice.objects.filter(lines__membership=paid, status=InvoiceStatus.OPEN).update(
        status=InvoiceStatus.PAID, paid_at=timezone.now()
    )
    assert do_renew_memberships(actor=task_for(a)) == (0, 1)  # type: ignore[arg-type]
    paid.refresh_from_db()
    assert paid.status == MembershipStatus.ACTIVE


def test_the_task_renews_in_each_business_and_nobody_else_can(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    mine, theirs = started(a), started(b)
    # B's task does not see A's membership.
    assert do_renew_memberships(actor=task_for(b)) == (1, 0)  # type: ignore[arg-type]
    act(b.owner)
    theirs.refresh_from_db()
    act(a.owner)
    mine.refresh_from_db()
    assert (mine.status, theirs.status) == (MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)
    for lesser in (a.staff, a.client_login):
        act(lesser)
        with pytest.raises(PermissionDenied):
            do_renew_membership(mine, actor=lesser)
    # Another business's task: refused before anything is read.
    job = task_for(b)
    with pytest.raises((PermissionDenied, Http404)):
        do_renew_membership(mine, actor=job)  # type: ignore[arg-type]
