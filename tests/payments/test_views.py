"""The payments pages: who else could reach them (another business, each lesser role, a client
for another client), then the manager's flow and its refusals with clear 400s."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from custodia.payments.actions.invoices import do_create_invoice, do_record_payment
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import ClientPass, Invoice, InvoiceStatus
from tests.acting import act
from tests.factories import Business, TenantMatrix
from tests.payments.support import Catalog, catalog, complete
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db


@dataclass
class Sold:
    kinds: Catalog
    client_pass: ClientPass
    invoice: Invoice  # the pass's, open
    draft: Invoice  # of the client's completed visit
    other_invoice: Invoice  # issued to the other client
    membership_id: str


def sell(business: Business) -> Sold:
    kinds = catalog(business)
    owner = business.owner
    act(owner)
    client_pass, invoice = do_sell_pass(business.client, kinds.ten, actor=owner)
    _other_pass, other_invoice = do_sell_pass(business.other_client, kinds.ten, actor=owner)
    complete(business.visit, owner)  # takes a credit from the pass (no membership yet)
    act(owner)
    membership, _ = do_start_membership(business.client, kinds.plan, actor=owner)
    draft = do_create_invoice(business.client, actor=owner)
    return Sold(kinds, client_pass, invoice, draft, other_invoice, str(membership.pk))


def pages(business: Business, sold: Sold) -> tuple[list[str], list[str]]:
    """(GET pages of business data, POST endpoints) of the business's objects."""
    c, p, i, d = business.client.pk, sold.client_pass.pk, sold.invoice.pk, sold.draft.pk
    t, pl = sold.kinds.ten.pk, sold.kinds.plan.pk
    gets = [
        f"/app/clients/{c}/passes/",
        f"/app/passes/{p}/",
        f"/app/invoices/{i}/",
        f"/app/invoices/{i}/print/",
        f"/app/invoices/{d}/",
        f"/app/payments/pass-types/{t}/edit/",
        f"/app/payments/plans/{pl}/edit/",
    ]
    posts = [
        f"/app/clients/{c}/passes/sell/",
        f"/app/clients/{c}/memberships/start/",
        f"/app/clients/{c}/memberships/{sold.membership_id}/cancel/",
        f"/app/clients/{c}/invoices/new/",
        f"/app/passes/{p}/void/",
        f"/app/invoices/{d}/lines/",
        f"/app/invoices/{d}/issue/",
        f"/app/invoices/{i}/void/",
        f"/app/invoices/{i}/payments/",
        f"/app/payments/pass-types/{t}/toggle/",
        f"/app/payments/plans/{pl}/toggle/",
    ]
    return gets, posts


def state(business: Business) -> list[tuple[object, ...]]:
    act(business.owner)
    return [
        *Invoice.objects.order_by("id").values_list("id", "status", "number"),
        *ClientPass.objects.order_by("id").values_list("id", "status", "credits_left"),
    ]


def test_another_business_gets_404_on_every_page_and_changes_nothing(
    matrix: TenantMatrix,
) -> None:
    a = matrix.a
    sold = sell(a)
    before = state(a)
    gets, posts = pages(a, sold)
    outsider = logged_in(matrix.outsider)
    for url in gets:
        assert outsider.get(url).status_code == 404, url
    for url in posts:
        answer = outsider.post(url, {"pass_type": str(sold.kinds.ten.pk), "amount": "1"})
        assert answer.status_code == 404, url
    assert state(a) == before


@pytest.mark.parametrize("role", ["staff", "other_staff"])
def test_staff_are_refused_everything(matrix: TenantMatrix, role: str) -> None:
    a = matrix.a
    sold = sell(a)
    before = state(a)
    gets, posts = pages(a, sold)
    browser = logged_in(getattr(a, role))
    for url in [*gets, "/app/invoices/", "/app/passes/", "/app/payments/catalog/"]:
        assert browser.get(url).status_code == 403, url
    for url in posts:
        assert browser.post(url, {"amount": "1", "method": "cash"}).status_code == 403, url
    assert state(a) == before


def test_a_client_reads_only_their_own_issued_invoices_and_passes(matrix: TenantMatrix) -> None:
    a = matrix.a
    sold = sell(a)
    before = state(a)
    gets, posts = pages(a, sold)
    browser = logged_in(a.client_login)
    mine = {
        f"/app/passes/{sold.client_pass.pk}/",
        f"/app/invoices/{sold.invoice.pk}/",
        f"/app/invoices/{sold.invoice.pk}/print/",
    }
    for url in gets:
        status = browser.get(url).status_code
        assert status == (
            200 if url in mine else 404 if "/invoices/" in url or "/passes/" in url[:12] else 403
        ), url
    assert browser.get(f"/app/invoices/{sold.other_invoice.pk}/").status_code == 404
    for url in posts:
        assert browser.post(url, {"amount": "1", "method": "cash"}).status_code in (403, 404), url
    listing = browser.get("/app/invoices/").content.decode()
    assert f"No. {sold.invoice.number}" in listing
    assert f"No. {sold.other_invoice.number}<" not in listing and "Draft</a>" not in listing
    passes = browser.get("/app/passes/").content.decode()
    assert "Ten walks" in passes and "9 of 10" in passes and "Monthly" in passes
    assert state(a) == before


def test_a_manager_sells_invoices_and_takes_a_cash_payment(matrix: TenantMatrix) -> None:
    a = matrix.a
    kinds = catalog(a)
    browser = logged_in(a.manager)
    answer = browser.post(
        f"/app/clients/{a.client.pk}/passes/sell/", {"pass_type": str(kinds.ten.pk)}
    )
    assert answer.status_code == 302
    invoice_url = answer["Location"]
    page = browser.get(invoice_url).content.decode()
    assert "Invoice 1" in page and "$200.00" in page and "Record a payment" in page
    # Bad amounts: clear 400s, nothing recorded.
    for bad, message in (
        ("abc", "Enter a number"),
        ("1.005", "at most 2 decimals"),
        ("250", "Only $200.00 is due"),
    ):
        answer = browser.post(f"{invoice_url}payments/", {"amount": bad, "method": "cash"})
        assert answer.status_code == 400, bad
        assert message in answer.content.decode(), bad
    answer = browser.post(
        f"{invoice_url}payments/", {"amount": "200", "method": "cash", "reference": "till 3"}
    )
    assert answer.status_code == 302
    page = browser.get(invoice_url).content.decode()
    assert "Paid" in page and "Record a payment" not in page
    receipt = browser.get(f"{invoice_url}print/").content.decode()
    assert "Receipt" in receipt and "No. 1" in receipt and a.client.name in receipt


def test_a_manager_edits_a_draft_then_issues_it(matrix: TenantMatrix) -> None:
    a = matrix.a
    complete(a.visit, a.staff)
    browser = logged_in(a.manager)
    answer = browser.post(f"/app/clients/{a.client.pk}/invoices/new/")
    invoice_url = answer["Location"]
    page = browser.get(invoice_url).content.decode()
    assert "Draft invoice" in page and "Walk," in page and "$25.00" in page
    answer = browser.post(
        f"{invoice_url}lines/", {"description": "", "quantity": "0", "unit_price": "-1"}
    )
    assert answer.status_code == 400
    answer = browser.post(
        f"{invoice_url}lines/", {"description": "Keys", "quantity": "2", "unit_price": "1.50"}
    )
    assert answer.status_code == 302
    assert "$28.00" in browser.get(invoice_url).content.decode()
    assert browser.post(f"{invoice_url}issue/").status_code == 302
    page = browser.get(invoice_url).content.decode()
    assert "Invoice 1" in page and "Open" in page
    # Issuing again is refused with a message, not an error page.
    page = browser.post(f"{invoice_url}issue/", follow=True).content.decode()
    assert "Only a draft invoice can be changed." in page
    listing = browser.get("/app/invoices/?status=open").content.decode()
    assert "No. 1" in listing
    assert browser.get("/app/invoices/?status=nonsense").status_code == 400
    assert browser.get("/app/invoices/?cursor=forged").status_code == 400


def test_the_catalog_pages_add_and_refuse_bad_input(matrix: TenantMatrix) -> None:
    a = matrix.a
    browser = logged_in(a.manager)
    assert browser.get("/app/payments/catalog/").status_code == 200
    answer = browser.post(
        "/app/payments/pass-types/new/",
        {"name": "Five", "credits": "5", "price": "99.99", "validity_days": "30"},
    )
    assert answer.status_code == 302
    page = browser.get("/app/payments/catalog/").content.decode()
    assert "Five" in page and "$99.99" in page
    answer = browser.post(
        "/app/payments/pass-types/new/",
        {"name": "", "credits": "0", "price": "x", "validity_days": "99999"},
    )
    assert answer.status_code == 400
    # The settings are the owner's.
    assert browser.get("/app/payments/settings/").status_code == 403
    owner = logged_in(a.owner)
    answer = owner.post("/app/payments/settings/", {"currency": "ZZZ"})
    assert answer.status_code == 400 and "ISO 4217" in answer.content.decode()
    answer = owner.post("/app/payments/settings/", {"currency": "EUR"})
    assert answer.status_code == 302
    assert "€99.99" in owner.get("/app/payments/catalog/").content.decode()


def test_paid_invoices_show_no_forms(matrix: TenantMatrix) -> None:
    a = matrix.a
    sold = sell(a)
    act(a.owner)
    do_record_payment(sold.invoice, actor=a.owner, amount_minor=20000, method="cash")
    page = logged_in(a.owner).get(f"/app/invoices/{sold.invoice.pk}/").content.decode()
    assert sold.invoice.status == InvoiceStatus.PAID
    assert not re.search(r"Void invoice|Issue invoice|Record a payment", page)
