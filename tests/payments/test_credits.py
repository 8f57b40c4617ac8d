"""Credits: a completed visit uses one from the oldest valid pass, a cancelled one gets it back
per the business's rule; never below zero, never twice for one visit, never from an expired,
void or other client's pass."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from custodia.payments.actions.catalog import do_update_payment_settings
from custodia.payments.actions.invoices import invoiceable_visits
from custodia.payments.actions.passes import do_expire_passes, do_sell_pass, do_void_pass
from custodia.payments.models import ClientPass, CreditUse, PassStatus
from custodia.scheduling.actions import do_update_visit
from custodia.tenancy.models import Business
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import cancel, catalog, complete, new_visit

pytestmark = pytest.mark.django_db


def sell(matrix: TenantMatrix, **kwargs: object) -> ClientPass:
    a = matrix.a
    kinds = catalog(a)
    act(a.manager)
    client_pass, _invoice = do_sell_pass(a.client, kinds.ten, actor=a.manager, **kwargs)  # type: ignore[arg-type]
    return client_pass


def balance(client_pass: ClientPass) -> tuple[int, str]:
    client_pass.refresh_from_db()
    return client_pass.credits_left, client_pass.status


def test_a_completed_visit_uses_one_credit_once(matrix: TenantMatrix) -> None:
    a = matrix.a
    client_pass = sell(matrix)
    complete(a.visit, a.staff)  # staff complete their own visit: the credit goes with it
    assert balance(client_pass) == (9, PassStatus.ACTIVE)
    act(a.owner)
    uses = list(CreditUse.objects.values_list("visit_id", "change"))
    assert uses == [(a.visit.pk, -1)]
    # Back to scheduled and completed again: still one credit for the visit.
    do_update_visit(a.visit, actor=a.owner, status="scheduled")
    complete(a.visit, a.owner)
    assert balance(client_pass) == (9, PassStatus.ACTIVE)
    # The visit took a credit: it is not invoiceable.
    act(a.owner)
    assert a.visit not in list(invoiceable_visits(a.owner, a.client))


def test_the_database_refuses_a_second_credit_for_one_visit(matrix: TenantMatrix) -> None:
    a = matrix.a
    client_pass = sell(matrix)
    complete(a.visit, a.owner)
    act(a.owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditUse.objects.create(
            tenant_id=a.owner.tenant_id, client_pass=client_pass, visit=a.visit, change=-1
        )


def test_no_valid_pass_uses_nothing_and_the_visit_is_invoiceable(matrix: TenantMatrix) -> None:
    a = matrix.a
    complete(a.visit, a.staff)
    act(a.owner)
    assert CreditUse.objects.count() == 0
    assert list(invoiceable_visits(a.owner, a.client)) == [a.visit]


def test_the_oldest_valid_pass_goes_first_and_expired_void_and_others_never(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.manager)
    now = timezone.now()
    expired, _ = do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=now - dt.timedelta(days=100)
    )
    void, _ = do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=now - dt.timedelta(days=50)
    )
    do_void_pass(void, actor=a.manager)
    future, _ = do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=now + dt.timedelta(days=1)
    )
    newer, _ = do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=now - dt.timedelta(days=2)
    )
    older, _ = do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=now - dt.timedelta(days=20)
    )
    others, _ = do_sell_pass(
        a.other_client, kinds.ten, actor=a.manager, starts_at=now - dt.timedelta(days=30)
    )
    complete(a.visit, a.staff)
    act(a.owner)
    assert balance(older) == (9, PassStatus.ACTIVE)
    for untouched in (expired, void, future, newer, others):
        assert balance(untouched)[0] == 10


def test_the_last_credit_uses_the_pass_up_and_never_goes_below_zero(matrix: TenantMatrix) -> None:
    a = matrix.a
    client_pass = sell(matrix)
    act(a.owner)
    ClientPass.objects.filter(pk=client_pass.pk).update(credits_left=1)
    complete(a.visit, a.staff)
    assert balance(client_pass) == (0, PassStatus.USED_UP)
    second = new_visit(a)
    complete(second, a.owner)
    assert balance(client_pass) == (0, PassStatus.USED_UP)
    act(a.owner)
    assert second in list(invoiceable_visits(a.owner, a.client))
    # The column itself refuses a negative balance.
    with pytest.raises(IntegrityError), transaction.atomic():
        ClientPass.objects.filter(pk=client_pass.pk).update(credits_left=-1)


def test_cancelling_a_completed_visit_gives_the_credit_back_once(matrix: TenantMatrix) -> None:
    a = matrix.a
    client_pass = sell(matrix)
    act(a.owner)
    ClientPass.objects.filter(pk=client_pass.pk).update(credits_left=1)
    complete(a.visit, a.staff)
    assert balance(client_pass) == (0, PassStatus.USED_UP)
    cancel(a.visit, a.manager)
    assert balance(client_pass) == (1, PassStatus.ACTIVE)
    # Completed and cancelled again: the visit took its one credit already, and got it back.
    complete(a.visit, a.owner)
    cancel(a.visit, a.owner)
    assert balance(client_pass) == (1, PassStatus.ACTIVE)
    act(a.owner)
    assert sorted(CreditUse.objects.values_list("change", flat=True)) == [-1, 1]


def test_no_credit_back_when_the_business_rule_says_no(matrix: TenantMatrix) -> None:
    a = matrix.a
    client_pass = sell(matrix)
    complete(a.visit, a.staff)
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    do_update_payment_settings(business, actor=a.owner, currency="USD", credit_back_on_cancel=False)
    cancel(a.visit, a.owner)
    assert balance(client_pass) == (9, PassStatus.ACTIVE)


def test_cancelling_a_visit_that_was_never_completed_returns_nothing(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    client_pass = sell(matrix)
    cancel(a.visit, a.owner)
    assert balance(client_pass) == (10, PassStatus.ACTIVE)
    act(a.owner)
    assert CreditUse.objects.count() == 0


def test_expiry_marks_passes_past_their_date_and_they_are_not_used(matrix: TenantMatrix) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.manager)
    old, _ = do_sell_pass(
        a.client, kinds.ten, actor=a.manager, starts_at=timezone.now() - dt.timedelta(days=91)
    )
    current, _ = do_sell_pass(a.client, kinds.ten, actor=a.manager)
    act(a.owner)
    assert do_expire_passes(actor=a.owner) == 1
    assert balance(old) == (10, PassStatus.EXPIRED)
    assert balance(current) == (10, PassStatus.ACTIVE)
    assert do_expire_passes(actor=a.owner) == 0
    complete(a.visit, a.staff)
    assert balance(old) == (10, PassStatus.EXPIRED)
    assert balance(current) == (9, PassStatus.ACTIVE)
