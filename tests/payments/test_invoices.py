"""Invoices: drafts from completed visits, totals from lines, numbering on issue, voiding frees
visits, manual payments; who may do any of it."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from custodia.core.actor import Actor
from custodia.payments.actions.catalog import (
    do_create_pass_type,
    do_update_pass_type,
    do_update_payment_settings,
)
from custodia.payments.actions.invoices import (
    do_add_invoice_line,
    do_create_invoice,
    do_issue_invoice,
    do_record_payment,
    do_remove_invoice_line,
    do_void_invoice,
)
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import CreditUse, Invoice, InvoiceLine, InvoiceStatus, PassType
from custodia.payments.totals import totals_of
from custodia.scheduling.actions import do_delete_visit
from custodia.tenancy.models import Business
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import catalog, catalogs, complete, new_visit
from tests.security.support import check_as_at_commit

pytestmark = pytest.mark.django_db


def draft_with_visits(matrix: TenantMatrix) -> Invoice:
    a = matrix.a
    complete(a.visit, a.staff)
    complete(new_visit(a), a.owner)
    act(a.manager)
    return do_create_invoice(a.client, actor=a.manager)


def lines(invoice: Invoice) -> list[tuple[object, int]]:
    return list(
        InvoiceLine.objects.filter(invoice=invoice)
        .order_by("created_at")
        .values_list("visit_id", "amount_minor")
    )


def test_a_draft_holds_each_completed_visit_at_its_service_price(matrix: TenantMatrix) -> None:
    a = matrix.a
    invoice = draft_with_visits(matrix)
    assert invoice.status == InvoiceStatus.DRAFT and invoice.number is None
    assert invoice.currency == "USD"
    assert [amount for _visit, amount in lines(invoice)] == [2500, 2500]
    assert a.visit.pk in {visit for visit, _amount in lines(invoice)}
    do_add_invoice_line(
        invoice, actor=a.manager, description="Extra key copy", quantity=3, unit_price_minor=150
    )
    assert totals_of(invoice).total == 5450
    line = InvoiceLine.objects.get(invoice=invoice, visit__isnull=True)
    do_remove_invoice_line(line, actor=a.manager)
    assert totals_of(invoice).total == 5000


def test_a_line_whose_amount_disagrees_with_its_price_is_refused(matrix: TenantMatrix) -> None:
    invoice = draft_with_visits(matrix)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).update(amount_minor=1)


def test_a_visit_is_invoiced_once_until_its_invoice_is_void(matrix: TenantMatrix) -> None:
    a = matrix.a
    first = draft_with_visits(matrix)
    second = do_create_invoice(a.client, actor=a.manager)
    assert lines(second) == []
    with pytest.raises(ValidationError) as refused:
        do_add_invoice_line(
            second,
            actor=a.manager,
            description="Again",
            quantity=1,
            unit_price_minor=2500,
            visit=a.visit,
        )
    assert "already on an invoice" in str(refused.value)
    # The database says the same, whatever the code above it does.
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            tenant_id=a.owner.tenant_id,
            invoice=second,
            description="Again",
            unit_price_minor=2500,
            amount_minor=2500,
            visit=a.visit,
        )
    do_issue_invoice(first, actor=a.manager)
    do_void_invoice(first, actor=a.manager)
    third = do_create_invoice(a.client, actor=a.manager)
    assert len(lines(third)) == 2


def test_issuing_numbers_invoices_one_after_another(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    invoice = draft_with_visits(matrix)
    empty = do_create_invoice(a.client, actor=a.manager)
    with pytest.raises(ValidationError, match="at least one line"):
        do_issue_invoice(empty, actor=a.manager)
    do_issue_invoice(invoice, actor=a.manager)
    assert (invoice.number, invoice.status) == (1, InvoiceStatus.OPEN)
    with pytest.raises(ValidationError, match="Only a draft"):
        do_issue_invoice(invoice, actor=a.manager)
    do_add_invoice_line(empty, actor=a.manager, description="Keys", quantity=1, unit_price_minor=5)
    do_void_invoice(do_issue_invoice(empty, actor=a.manager), actor=a.manager)
    kinds = catalog(a)
    act(a.manager)
    _pass, sold = do_sell_pass(a.client, kinds.ten, actor=a.manager)
    assert (sold.number, sold.status, totals_of(sold).total) == (3, InvoiceStatus.OPEN, 20000)
    # Another business counts on its own.
    b_kinds = catalog(b)
    act(b.owner)
    _pass, theirs = do_sell_pass(b.client, b_kinds.ten, actor=b.owner)
    assert theirs.number == 1


def test_a_rolled_back_issue_leaves_no_gap(matrix: TenantMatrix) -> None:
    a = matrix.a
    invoice = draft_with_visits(matrix)
    with pytest.raises(RuntimeError), transaction.atomic():
        do_issue_invoice(invoice, actor=a.manager)
        raise RuntimeError("the request failed after issuing")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.DRAFT and invoice.number is None
    assert do_issue_invoice(invoice, actor=a.manager).number == 1


def test_manual_payments_mark_the_invoice_paid_once_covered(matrix: TenantMatrix) -> None:
    a = matrix.a
    invoice = do_issue_invoice(draft_with_visits(matrix), actor=a.manager)
    with pytest.raises(ValidationError) as refused:
        do_record_payment(invoice, actor=a.manager, amount_minor=100, method="card")
    assert "method" in refused.value.message_dict
    with pytest.raises(ValidationError, match=r"Only \$50.00 is due"):
        do_record_payment(invoice, actor=a.manager, amount_minor=5001, method="cash")
    with pytest.raises(ValidationError):
        do_record_payment(invoice, actor=a.manager, amount_minor=0, method="cash")
    do_record_payment(invoice, actor=a.manager, amount_minor=2000, method="cash", reference="r1")
    assert invoice.status == InvoiceStatus.OPEN
    assert totals_of(invoice).due == 3000
    do_record_payment(invoice, actor=a.manager, amount_minor=3000, method="other")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.paid_at is not None
    with pytest.raises(ValidationError, match="open invoices only"):
        do_record_payment(invoice, actor=a.manager, amount_minor=1, method="cash")
    with pytest.raises(ValidationError, match="draft or open"):
        do_void_invoice(invoice, actor=a.manager)


def test_a_partly_paid_invoice_cannot_be_voided(matrix: TenantMatrix) -> None:
    a = matrix.a
    invoice = do_issue_invoice(draft_with_visits(matrix), actor=a.manager)
    do_record_payment(invoice, actor=a.manager, amount_minor=1, method="cash")
    with pytest.raises(ValidationError, match="Payments were received"):
        do_void_invoice(invoice, actor=a.manager)


def test_a_draft_cannot_take_payments(matrix: TenantMatrix) -> None:
    a = matrix.a
    invoice = draft_with_visits(matrix)
    with pytest.raises(ValidationError, match="open invoices only"):
        do_record_payment(invoice, actor=a.manager, amount_minor=1, method="cash")


def test_the_business_currency_is_checked_and_used(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.owner)
    business = Business.objects.get(pk=a.owner.tenant_id)
    for bad in ("XYZ", "dollars", "", "US"):
        with pytest.raises(ValidationError) as refused:
            do_update_payment_settings(
                business, actor=a.owner, currency=bad, credit_back_on_cancel=True
            )
        assert "currency" in refused.value.message_dict
    do_update_payment_settings(business, actor=a.owner, currency="eur", credit_back_on_cancel=True)
    assert draft_with_visits(matrix).currency == "EUR"
    act(a.manager)
    with pytest.raises(PermissionDenied):
        do_update_payment_settings(
            business, actor=a.manager, currency="USD", credit_back_on_cancel=True
        )


def test_the_catalog_is_checked_and_a_retired_pass_type_is_not_sold(matrix: TenantMatrix) -> None:
    a = matrix.a
    act(a.manager)
    with pytest.raises(ValidationError) as refused:
        do_create_pass_type(actor=a.manager, name=" ", credits=0, price_minor=-1, validity_days=0)
    assert set(refused.value.message_dict) == {"name", "credits", "price_minor", "validity_days"}
    kinds = catalog(a)
    act(a.manager)
    do_update_pass_type(kinds.ten, actor=a.manager, is_active=False, price_minor=100)
    assert PassType.objects.get(pk=kinds.ten.pk).price_minor == 100
    with pytest.raises(ValidationError, match="no longer sold"):
        do_sell_pass(a.client, kinds.ten, actor=a.manager)


def test_a_membership_starts_with_its_first_invoice(matrix: TenantMatrix) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.manager)
    membership, invoice = do_start_membership(a.client, kinds.plan, actor=a.manager)
    assert membership.credits_this_period == 4
    assert (invoice.status, totals_of(invoice).total) == (InvoiceStatus.OPEN, 8000)


# --- Who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "client_login"])
def test_lesser_roles_may_do_none_of_it(matrix: TenantMatrix, role: str) -> None:
    a = matrix.a
    kinds = catalog(a)
    invoice = draft_with_visits(matrix)
    actor: Actor = getattr(a, role)
    act(actor)
    attempts = [
        lambda: do_create_pass_type(
            actor=actor, name="x", credits=1, price_minor=1, validity_days=1
        ),
        lambda: do_update_pass_type(kinds.ten, actor=actor, is_active=False),
        lambda: do_sell_pass(a.client, kinds.ten, actor=actor),
        lambda: do_start_membership(a.client, kinds.plan, actor=actor),
        lambda: do_create_invoice(a.client, actor=actor),
        lambda: do_add_invoice_line(
            invoice, actor=actor, description="x", quantity=1, unit_price_minor=1
        ),
        lambda: do_issue_invoice(invoice, actor=actor),
        lambda: do_void_invoice(invoice, actor=actor),
        lambda: do_record_payment(invoice, actor=actor, amount_minor=1, method="cash"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    act(a.owner)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.DRAFT


def test_another_business_objects_are_not_found(matrix: TenantMatrix) -> None:
    a, b = matrix.a, matrix.b
    a_kinds, b_kinds = catalogs(matrix)
    invoice = draft_with_visits(matrix)
    outsider = b.owner
    act(outsider)
    attempts = [
        lambda: do_sell_pass(a.client, b_kinds.ten, actor=outsider),
        lambda: do_sell_pass(b.client, a_kinds.ten, actor=outsider),
        lambda: do_update_pass_type(a_kinds.ten, actor=outsider, is_active=False),
        lambda: do_create_invoice(a.client, actor=outsider),
        lambda: do_issue_invoice(invoice, actor=outsider),
        lambda: do_void_invoice(invoice, actor=outsider),
        lambda: do_record_payment(invoice, actor=outsider, amount_minor=1, method="cash"),
        lambda: do_add_invoice_line(
            invoice, actor=outsider, description="x", quantity=1, unit_price_minor=1
        ),
    ]
    for attempt in attempts:
        with pytest.raises(Http404):
            attempt()
    act(a.owner)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.DRAFT


def test_deleting_a_visit_keeps_its_invoice_line_and_credit_use(matrix: TenantMatrix) -> None:
    a = matrix.a
    kinds = catalog(a)
    act(a.owner)
    do_sell_pass(a.client, kinds.ten, actor=a.owner)
    complete(a.visit, a.staff)  # a credit use
    second = new_visit(a)
    complete(second, a.owner)  # another use, taken back below: the visit is invoiceable
    act(a.owner)
    CreditUse.objects.filter(visit=second).delete()
    invoice = do_create_invoice(a.client, actor=a.owner)  # a line naming `second`
    do_delete_visit(a.visit, actor=a.owner)
    do_delete_visit(second, actor=a.owner)
    check_as_at_commit()
    assert list(CreditUse.objects.values_list("visit_id", flat=True)) == [None]
    assert list(InvoiceLine.objects.filter(invoice=invoice).values_list("visit_id", flat=True)) == [
        None
    ]
