"""Credits from memberships: a completed visit takes one from the client's membership in its
current period before any pass's; a cancelled one gives it back while that period lasts; a
membership past due, a period not begun or over, another client's membership give nothing; a
visit paid by a membership credit is not invoiceable; the client sees the use, staff may only
take credits (test_rls.py attacks that on the database)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from custodia.payments.actions.invoices import invoiceable_visits
from custodia.payments.actions.passes import (
    do_cancel_membership,
    do_sell_pass,
    do_start_membership,
)
from custodia.payments.models import (
    ClientMembership,
    ClientPass,
    CreditUse,
    MembershipStatus,
)
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import Catalog, cancel, catalog, complete, new_visit

pytestmark = pytest.mark.django_db


def start(matrix: TenantMatrix) -> tuple[ClientMembership, Catalog]:
    a = matrix.a
    kinds = catalog(a)
    act(a.manager)
    membership, _invoice = do_start_membership(a.client, kinds.plan, actor=a.manager)
    return membership, kinds


def credits(membership: ClientMembership) -> int:
    membership.refresh_from_db()
    return membership.credits_this_period


def test_the_membership_credit_goes_before_the_pass_and_then_the_pass(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    membership, kinds = start(matrix)
    act(a.manager)
    client_pass, _ = do_sell_pass(a.client, kinds.ten, actor=a.manager)
    complete(a.visit, a.staff)  # staff complete their own visit: the credit goes with it
    assert credits(membership) == 3
    client_pass.refresh_from_db()
    assert client_pass.credits_left == 10
    act(a.owner)
    ClientMembership.objects.filter(pk=membership.pk).update(credits_this_period=0)
    second = complete(new_visit(a), a.owner)
    client_pass.refresh_from_db()
    assert client_pass.credits_left == 9
    act(a.owner)
    sources = dict(CreditUse.objects.values_list("visit_id", "membership_id"))
    assert sources == {a.visit.pk: membership.pk, second.pk: None}
    invoiceable = list(invoiceable_visits(a.owner, a.client))
    assert a.visit not in invoiceable and second not in invoiceable


def test_cancelling_gives_the_credit_back_in_the_same_period_only(matrix: TenantMatrix) -> None:
    a = matrix.a
    membership, _kinds = start(matrix)
    complete(a.visit, a.staff)
    cancel(a.visit, a.manager)
    assert credits(membership) == 4
    cancel(a.visit, a.manager)  # again: nothing more
    assert credits(membership) == 4
    # A credit of a period that has ended (the renewal moved the period on) does not come back.
    second = complete(new_visit(a), a.owner)
    assert credits(membership) == 3
    act(a.owner)
    now = timezone.now()
    ClientMembership.objects.filter(pk=membership.pk).update(
        current_period_start=now + dt.timedelta(seconds=1),
        current_period_end=now + dt.timedelta(days=30),
    )
    cancel(second, a.manager)
    assert credits(membership) == 3
    act(a.owner)
    assert CreditUse.objects.filter(visit=second, change=1).count() == 0


@pytest.mark.parametrize(
    "state",
    ["past_due", "not_started", "period_over", "other_client", "no_credits_left"],
)
def test_no_credit_from_a_membership_that_cannot_give_one(matrix: TenantMatrix, state: str) -> None:
    a = matrix.a
    now = timezone.now()
    membership, _kinds = start(matrix)
    act(a.owner)
    rows = ClientMembership.objects.filter(pk=membership.pk)
    if state == "past_due":
        rows.update(status=MembershipStatus.PAST_DUE)
    elif state == "not_started":
        rows.update(
            current_period_start=now + dt.timedelta(days=1),
            current_period_end=now + dt.timedelta(days=31),
        )
    elif state == "period_over":
        rows.update(
            current_period_start=now - dt.timedelta(days=31),
            current_period_end=now - dt.timedelta(days=1),
        )
    elif state == "other_client":
        rows.update(client=a.other_client)
    else:
        rows.update(credits_this_period=0)
    complete(a.visit, a.staff)
    act(a.owner)
    assert CreditUse.objects.count() == 0
    assert a.visit in list(invoiceable_visits(a.owner, a.client))


def test_a_cancelled_membership_keeps_its_period_credits(matrix: TenantMatrix) -> None:
    a = matrix.a
    membership, _kinds = start(matrix)
    act(a.manager)
    do_cancel_membership(membership, actor=a.manager)
    complete(a.visit, a.staff)
    assert credits(membership) == 3


def test_the_client_sees_the_use_of_their_membership_and_the_database_checks_the_source(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    membership, _kinds = start(matrix)
    complete(a.visit, a.staff)
    act(a.client_login)
    assert list(CreditUse.objects.values_list("membership_id", flat=True)) == [membership.pk]
    act(a.owner)
    client_pass = ClientPass.objects.create(
        tenant_id=a.owner.tenant_id,
        client=a.client,
        name="Loose",
        credits_total=1,
        credits_left=1,
        price_minor=0,
        currency="USD",
        starts_at=timezone.now(),
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    visit = new_visit(a)
    for sources in ({}, {"client_pass": client_pass, "membership": membership}):
        with pytest.raises(IntegrityError), transaction.atomic():
            CreditUse.objects.create(tenant_id=a.owner.tenant_id, visit=visit, change=-1, **sources)
    # Never above the month's credits.
    with pytest.raises(IntegrityError), transaction.atomic():
        ClientMembership.objects.filter(pk=membership.pk).update(credits_this_period=5)
