"""Row-level security of the payments tables, attacked with raw SQL as custodia_app: another
business, each lesser role, a staff member changing more than a balance, a foreign id slipped
into a row. (Hand-set settings on a connection of its own: test_committed.py.)"""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError

from custodia.payments.actions.invoices import (
    do_create_invoice,
    do_issue_invoice,
    do_record_payment,
)
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import ClientPass, Invoice
from tests.acting import act
from tests.factories import TenantMatrix
from tests.payments.support import catalogs, complete
from tests.security.support import attempt, execute, ids

pytestmark = pytest.mark.django_db

TABLES = (
    "payments_passtype",
    "payments_membershipplan",
    "payments_clientpass",
    "payments_credituse",
    "payments_clientmembership",
    "payments_invoicecounter",
    "payments_invoice",
    "payments_invoiceline",
    "payments_payment",
)


@pytest.fixture
def sold(matrix: TenantMatrix) -> dict[str, tuple[ClientPass, Invoice, Invoice]]:
    """In each business: a pass sold to the client (its invoice open, partly paid), a membership,
    the visit completed (a credit used), and a draft invoice of the other client."""
    out = {}
    for key, business in (("a", matrix.a), ("b", matrix.b)):
        kinds = catalogs(matrix)[0 if key == "a" else 1]
        act(business.owner)
        client_pass, invoice = do_sell_pass(business.client, kinds.ten, actor=business.owner)
        draft = do_create_invoice(business.other_client, actor=business.owner)
        do_start_membership(business.client, kinds.plan, actor=business.owner)
        do_record_payment(invoice, actor=business.owner, amount_minor=100, method="cash")
        complete(business.visit, business.staff)
        out[key] = (client_pass, invoice, draft)
    return out


def rows_of(table: str) -> set[object]:
    return ids(f"SELECT tenant_id FROM {table}")  # noqa: S608 - constant table names


def test_each_business_reads_only_its_own_rows(matrix: TenantMatrix, sold: dict) -> None:
    for business in (matrix.a, matrix.b):
        act(business.owner)
        for table in TABLES:
            assert rows_of(table) == {business.owner.tenant_id}, table


def test_a_manager_cannot_write_into_or_point_at_another_business(
    matrix: TenantMatrix, sold: dict
) -> None:
    a, b = matrix.a, matrix.b
    b_pass, b_invoice, _draft = sold["b"]
    act(a.manager)
    assert execute("UPDATE payments_invoice SET status = 'void' WHERE id = %s", [b_invoice.pk]) == 0
    assert execute("DELETE FROM payments_clientpass WHERE id = %s", [b_pass.pk]) == 0
    # A row of A's naming B's invoice, or B's client: refused (policy or same-tenant key).
    error = attempt(
        lambda: execute(
            "INSERT INTO payments_payment (id, tenant_id, invoice_id, amount_minor, currency,"
            " method, status, reference, created_at) VALUES (%s, %s, %s, 1, 'USD', 'cash',"
            " 'succeeded', '', now())",
            [uuid.uuid4(), a.owner.tenant_id, b_invoice.pk],
        )
    )
    assert isinstance(error, DatabaseError)
    error = attempt(
        lambda: execute(
            "UPDATE payments_invoice SET client_id = %s WHERE tenant_id = %s",
            [b.client.pk, a.owner.tenant_id],
        )
    )
    assert isinstance(error, DatabaseError)
    error = attempt(
        lambda: execute(
            "INSERT INTO payments_invoice (id, tenant_id, client_id, status, currency, created_at)"
            " VALUES (%s, %s, %s, 'draft', 'USD', now())",
            [uuid.uuid4(), b.owner.tenant_id, b.client.pk],
        )
    )
    assert isinstance(error, DatabaseError) and "row-level security" in str(error)


def test_staff_see_no_invoice_and_may_only_take_a_credit(matrix: TenantMatrix, sold: dict) -> None:
    a = matrix.a
    client_pass, _invoice, _draft = sold["a"]
    act(a.staff)
    for table in (
        "payments_invoice",
        "payments_invoiceline",
        "payments_payment",
        "payments_invoicecounter",
        "payments_passtype",
    ):
        assert rows_of(table) == set(), table
    # The pass and membership of the client they visit, yes; only their credits, only down.
    assert ids("SELECT id FROM payments_clientpass") == {client_pass.pk}
    (membership,) = ids("SELECT id FROM payments_clientmembership")
    for table, row, changes in (
        (
            "payments_clientpass",
            client_pass.pk,
            (
                "credits_left = credits_left + 1",
                "expires_at = expires_at + interval '1 year'",
                "status = 'active', credits_total = 100",
            ),
        ),
        (
            "payments_clientmembership",
            membership,
            (
                "credits_this_period = credits_this_period + 1",
                "current_period_end = current_period_end + interval '1 year'",
                "status = 'cancelled'",
                "credits_per_month = 100",
            ),
        ),
    ):
        for change in changes:
            error = attempt(
                lambda table=table, change=change, row=row: execute(
                    f"UPDATE {table} SET {change} WHERE id = %s", [row]
                )
            )
            assert isinstance(error, DatabaseError), change
        assert execute(f"UPDATE {table} SET {changes[0].replace('+', '-')} WHERE id = %s", [row])
    # The other staff member (no visit with that client): not even that.
    act(a.other_staff)
    assert ids("SELECT id FROM payments_clientpass") == set()
    assert ids("SELECT id FROM payments_clientmembership") == set()
    assert (
        execute("UPDATE payments_clientpass SET credits_left = 0 WHERE id = %s", [client_pass.pk])
        == 0
    )
    assert (
        execute(
            "UPDATE payments_clientmembership SET credits_this_period = 0 WHERE id = %s",
            [membership],
        )
        == 0
    )


def test_a_client_reads_only_their_own_issued_invoices_and_writes_nothing(
    matrix: TenantMatrix, sold: dict
) -> None:
    a = matrix.a
    client_pass, invoice, draft = sold["a"]
    act(a.owner)
    own_draft = do_create_invoice(a.client, actor=a.owner)
    other_issued = do_create_invoice(a.other_client, actor=a.owner)
    execute(
        "INSERT INTO payments_invoiceline (id, tenant_id, invoice_id, description, quantity,"
        " unit_price_minor, amount_minor, voided, created_at) VALUES (%s, %s, %s, 'x', 1, 1, 1,"
        " false, now())",
        [uuid.uuid4(), a.owner.tenant_id, other_issued.pk],
    )
    do_issue_invoice(other_issued, actor=a.owner)
    act(a.client_login)
    visible = ids("SELECT id FROM payments_invoice")
    assert invoice.pk in visible
    assert visible.isdisjoint({own_draft.pk, draft.pk, other_issued.pk})
    assert ids("SELECT client_id FROM payments_invoice") == {a.client.pk}
    assert ids("SELECT status FROM payments_invoice") == {"open"}
    assert ids("SELECT invoice_id FROM payments_payment") == {invoice.pk}
    assert ids("SELECT id FROM payments_clientpass") == {client_pass.pk}
    assert len(ids("SELECT id FROM payments_credituse")) == 1
    assert execute("UPDATE payments_invoice SET status = 'paid' WHERE id = %s", [invoice.pk]) == 0
    assert execute("UPDATE payments_clientpass SET credits_left = 10") == 0
    error = attempt(
        lambda: execute(
            "INSERT INTO payments_payment (id, tenant_id, invoice_id, amount_minor, currency,"
            " method, status, reference, created_at) VALUES (%s, %s, %s, 20000, 'USD', 'cash',"
            " 'succeeded', '', now())",
            [uuid.uuid4(), a.owner.tenant_id, invoice.pk],
        )
    )
    assert isinstance(error, DatabaseError) and "row-level security" in str(error)
