"""Cards against a live vault (the sandbox gateway): adding through the hosted form, duplicates,
binding the form to the session's client, the 15-minute card window, charges (approved,
declined, timed out, late success, vault unreachable) that charge once however often they are
retried, refunds, the receipt by email, and no card number anywhere on the app's side."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import override_settings

from custodia.accounts import stepup
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.lifecycle.erasure import do_erase_client
from custodia.payments.actions.cards import (
    do_charge_invoice,
    do_refund_payment,
    do_retry_charge,
)
from custodia.payments.actions.passes import do_sell_pass
from custodia.payments.models import (
    ClientPass,
    Invoice,
    InvoiceStatus,
    PassStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from custodia.tenancy.closing import do_close_business, do_purge_closed_businesses
from custodia.tenancy.models import Business as BusinessRow
from custodia.tenancy.models import Membership
from custodia.testing.launcher import free_port
from tests.acting import act
from tests.factories import Business, TenantMatrix
from tests.mail import SmtpServer, smtp_server  # noqa: F401  (a fixture)
from tests.payments.cards import (
    DECLINED,
    LATE_SUCCESS,
    SECURITY_CODE,
    TIMES_OUT,
    VISA,
    add_card_through_app,
    grant_cards,
    open_form,
)
from tests.payments.support import catalog
from tests.vaults import LiveVault
from tests.web.support import logged_in
from tests.webhooks.support import add_endpoint, deliveries_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """The step-up clock held a minute ahead: the matrix actors' proof (`JustAuthenticated`,
    read after the guard's "now") and the test sessions' logins are then both just before it."""
    at = time.time() + 60
    monkeypatch.setattr(stepup, "clock", lambda: at)
    return at


def app_path(location: str) -> str:
    """The app's path and query of an absolute URL the vault sent the browser to."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


def dead_https_url() -> str:
    """A vault URL where nothing listens."""
    return f"https://localhost:{free_port()}"


def add_card(business: Business, vault: LiveVault, number: str = VISA) -> PaymentMethod:
    """The owner adds a card for the business's client through the app's pages."""
    web = logged_in(business.owner)
    response = add_card_through_app(
        web, vault, f"/app/clients/{business.client.pk}/cards/add/", number
    )
    assert response.status_code == 302
    act(business.owner)
    return PaymentMethod.objects.filter(client=business.client, removed_at__isnull=True).latest(
        "created_at"
    )


def open_invoice(business: Business) -> Invoice:
    act(business.owner)
    _pass, invoice = do_sell_pass(business.client, catalog(business).ten, actor=business.owner)
    return invoice  # 200.00, open


def charge(invoice: Invoice, card: PaymentMethod, actor: Actor, capture: Any) -> Payment:
    act(actor)
    with capture(execute=True):
        payment = do_charge_invoice(invoice, card, actor=actor)
    act(actor)
    return Payment.objects.get(pk=payment.pk)


def vault_charges(vault: LiveVault, business: Business) -> int:
    return int(
        vault.sql(
            "SELECT count(*) FROM vault_charge WHERE business_id = %s",
            (business.owner.tenant_id,),
        )[0][0]
    )


def gateway_calls(vault: LiveVault, payment: Payment) -> int:
    rows = vault.sql(
        "SELECT sum(calls) FROM vault_sandboxoperation WHERE kind = 'charge'"
        " AND idempotency_key LIKE %s",
        (f"%{payment.idempotency_key}%",),
    )
    return int(rows[0][0] or 0)


# --- Adding cards ----------------------------------------------------------------------------


def test_a_manager_with_the_grant_adds_a_card_and_sees_only_brand_last4_expiry(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    manager = grant_cards(matrix.a)
    act(matrix.a.owner)
    manager = Actor(manager.user, Membership.objects.get(pk=manager.membership.pk))
    web = logged_in(manager)
    path = f"/app/clients/{matrix.a.client.pk}/cards/add/"
    page, form_url = open_form(web, path)
    assert form_url.startswith(live_vault.url + "/form/")
    assert live_vault.url in page["Content-Security-Policy"].split("frame-src")[1].split(";")[0]
    # Every other page keeps framing to itself.
    assert "frame-src" not in web.get("/app/").get("Content-Security-Policy", "")
    answer = live_vault.submit_card(form_url, number=VISA, security_code=SECURITY_CODE)
    response = web.get(app_path(answer.headers["Location"]))
    assert response.status_code == 302
    cards_page = web.get(f"/app/clients/{matrix.a.client.pk}/cards/").content.decode()
    assert "Visa ending 4242" in cards_page and "12/2040" in cards_page
    act(matrix.a.owner)
    card = PaymentMethod.objects.get(client=matrix.a.client)
    assert card.vault_token not in cards_page
    assert VISA not in cards_page and "4242 4242" not in cards_page


def test_the_same_card_twice_is_already_on_file(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    add_card(matrix.a, live_vault)
    web = logged_in(matrix.a.owner)
    response = add_card_through_app(
        web, live_vault, f"/app/clients/{matrix.a.client.pk}/cards/add/"
    )
    assert response.status_code == 302
    follow = web.get(response["Location"]).content.decode()
    assert "already on file" in follow
    act(matrix.a.owner)
    assert PaymentMethod.objects.filter(tenant_id=matrix.a.owner.tenant_id).count() == 1
    # For another client of the business, the same card is refused too.
    response = add_card_through_app(
        web, live_vault, f"/app/clients/{matrix.a.other_client.pk}/cards/add/"
    )
    assert "already on file" in web.get(response["Location"]).content.decode()
    act(matrix.a.owner)
    assert PaymentMethod.objects.filter(tenant_id=matrix.a.owner.tenant_id).count() == 1


def test_a_client_adds_their_own_card_and_cannot_redeem_into_another_client(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    portal = logged_in(matrix.a.client_login)
    response = add_card_through_app(portal, live_vault, "/app/cards/add/")
    assert response["Location"] == "/app/cards/"
    act(matrix.a.owner)
    assert PaymentMethod.objects.get().client_id == matrix.a.client.pk
    # A form the manager opened for the other client, its return link taken by the client:
    # the client's session never opened it, so nothing is saved anywhere.
    owner = logged_in(matrix.a.owner)
    _page, form_url = open_form(owner, f"/app/clients/{matrix.a.other_client.pk}/cards/add/")
    answer = live_vault.submit_card(form_url, number="5555555555554444", security_code="123")
    path = app_path(answer.headers["Location"])
    assert portal.get(path).status_code == 302
    act(matrix.a.owner)
    assert PaymentMethod.objects.count() == 1
    # The outsider with the same link: not theirs either (and the vault scopes by business).
    outsider = logged_in(matrix.outsider)
    assert outsider.get(path).status_code == 302
    act(matrix.outsider)
    assert PaymentMethod.objects.count() == 0


def test_removing_a_card_deletes_it_at_the_vault(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    card = add_card(matrix.a, live_vault)
    web = logged_in(matrix.a.owner)
    assert web.post(f"/app/cards/{card.pk}/remove/").status_code == 302
    act(matrix.a.owner)
    assert PaymentMethod.objects.get(pk=card.pk).removed_at is not None
    sealed = live_vault.sql(
        "SELECT number_sealed FROM vault_card WHERE token = %s", (card.vault_token,)
    )
    assert sealed == [(None,)]


def test_after_15_idle_minutes_card_work_asks_for_the_password(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    monkeypatch: pytest.MonkeyPatch,
    steady_clock: float,
) -> None:
    web = logged_in(matrix.a.owner)
    path = f"/app/clients/{matrix.a.client.pk}/cards/add/"
    start = steady_clock
    monkeypatch.setattr(stepup, "clock", lambda: start)
    open_form(web, path)  # fresh login: passes, and opens the card window
    monkeypatch.setattr(stepup, "clock", lambda: start + 14 * 60)
    open_form(web, path)  # card work within 15 minutes: the window slides
    monkeypatch.setattr(stepup, "clock", lambda: start + 14 * 60 + 16 * 60)
    response = web.post(
        path, HTTP_REFERER=f"https://testserver/app/clients/{matrix.a.client.pk}/cards/"
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/app/step-up/")


# --- Charges ---------------------------------------------------------------------------------


def test_an_approved_charge_pays_the_invoice_once_and_emails_a_receipt(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    django_capture_on_commit_callbacks: Any,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    card = add_card(matrix.a, live_vault)
    invoice = open_invoice(matrix.a)
    payment = charge(invoice, card, matrix.a.owner, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.amount_minor == 20000 and payment.idempotency_key
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert vault_charges(live_vault, matrix.a) == 1
    # Retrying what is settled is refused; the same key again charges nothing more.
    with pytest.raises(Exception, match="not confirmed"):
        do_retry_charge(payment, actor=matrix.a.owner)
    receipt = smtp_server.wait_for(1)[0]
    assert receipt.recipients == [matrix.a.client.email]
    assert "Visa ending 4242" in receipt.body
    assert VISA not in receipt.body and SECURITY_CODE not in receipt.body
    web = logged_in(matrix.a.owner)
    printed = web.get(f"/app/invoices/{invoice.pk}/print/").content.decode()
    assert "Visa ending 4242" in printed and VISA not in printed


def test_a_declined_card_fails_with_the_message(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    card = add_card(matrix.a, live_vault, DECLINED)
    invoice = open_invoice(matrix.a)
    payment = charge(invoice, card, matrix.a.owner, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.FAILED
    assert payment.message
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.OPEN
    page = logged_in(matrix.a.owner).get(f"/app/invoices/{invoice.pk}/").content.decode()
    assert payment.message in page


def test_a_timeout_stays_pending_and_retries_never_charge_twice(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    card = add_card(matrix.a, live_vault, TIMES_OUT)
    invoice = open_invoice(matrix.a)
    payment = charge(invoice, card, matrix.a.owner, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.PENDING
    page = logged_in(matrix.a.owner).get(f"/app/invoices/{invoice.pk}/").content.decode()
    assert "Not confirmed" in page and f"/app/payments/{payment.pk}/retry/" in page
    web = logged_in(matrix.a.owner)
    for _ in range(2):
        assert web.post(f"/app/payments/{payment.pk}/retry/").status_code == 302
    act(matrix.a.owner)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert vault_charges(live_vault, matrix.a) == 1
    # A second charge of the same invoice is refused while one is not confirmed.
    act(matrix.a.owner)
    with pytest.raises(Exception, match="not confirmed"):
        do_charge_invoice(invoice, card, actor=matrix.a.owner)


def test_a_late_success_is_found_by_the_retry_without_a_second_charge(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    card = add_card(matrix.a, live_vault, LATE_SUCCESS)
    invoice = open_invoice(matrix.a)
    payment = charge(invoice, card, matrix.a.owner, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.PENDING
    web = logged_in(matrix.a.owner)
    web.post(f"/app/payments/{payment.pk}/retry/")
    act(matrix.a.owner)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert vault_charges(live_vault, matrix.a) == 1
    assert gateway_calls(live_vault, payment) <= 1


def test_an_unreachable_vault_leaves_the_payment_pending_then_a_retry_charges_once(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    card = add_card(matrix.a, live_vault)
    invoice = open_invoice(matrix.a)
    with override_settings(VAULT_URL=dead_https_url()):
        payment = charge(invoice, card, matrix.a.owner, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.PENDING
    assert vault_charges(live_vault, matrix.a) == 0
    act(matrix.a.owner)
    pending = Payment.objects.select_related("payment_method", "invoice").get(pk=payment.pk)
    payment = do_retry_charge(pending, actor=matrix.a.owner)
    assert payment.status == PaymentStatus.SUCCEEDED
    act(matrix.a.owner)
    with pytest.raises(Exception, match="not confirmed"):
        do_retry_charge(payment, actor=matrix.a.owner)
    assert vault_charges(live_vault, matrix.a) == 1


def test_a_client_pays_their_own_invoice_in_the_portal(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    portal = logged_in(matrix.a.client_login)
    add_card_through_app(portal, live_vault, "/app/cards/add/")
    invoice = open_invoice(matrix.a)
    act(matrix.a.owner)
    card = PaymentMethod.objects.get()
    page = portal.get(f"/app/invoices/{invoice.pk}/").content.decode()
    assert "Pay by card" in page and str(card.pk) in page
    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(f"/app/invoices/{invoice.pk}/charge/", {"card": str(card.pk)})
    assert response.status_code == 302
    act(matrix.a.owner)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.SUCCEEDED


# --- Refunds ---------------------------------------------------------------------------------


def test_partial_and_full_refunds_never_above_what_is_left(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    card = add_card(matrix.a, live_vault)
    invoice = open_invoice(matrix.a)
    payment = charge(invoice, card, matrix.a.owner, django_capture_on_commit_callbacks)
    web = logged_in(matrix.a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        web.post(f"/app/payments/{payment.pk}/refund/", {"amount": "50.00"})
    act(matrix.a.owner)
    assert Refund.objects.get().status == RefundStatus.SUCCEEDED
    # Above what is left: refused with a message, nothing sent.
    response = web.post(f"/app/payments/{payment.pk}/refund/", {"amount": "150.01"})
    assert "At most" in web.get(response["Location"]).content.decode()
    response = web.post(f"/app/payments/{payment.pk}/refund/", {"amount": "ten"})
    assert response.status_code == 302
    act(matrix.a.owner)
    assert Refund.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        do_refund_payment(payment, 15000, actor=matrix.a.owner)
    act(matrix.a.owner)
    assert Refund.objects.filter(status=RefundStatus.SUCCEEDED).count() == 2
    page = web.get(f"/app/invoices/{invoice.pk}/").content.decode()
    assert "Refunded" in page and "$200.00" in page
    # The invoice stays paid: a refund is money given back, not a bill reopened.
    act(matrix.a.owner)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    refunded = live_vault.sql(
        "SELECT refunded FROM vault_charge WHERE charge_id = %s", (payment.vault_charge_id,)
    )
    assert refunded == [(20000,)]


# --- Erasure and closing ---------------------------------------------------------------------


def test_erasing_a_client_deletes_their_cards_at_the_vault(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    card = add_card(matrix.a, live_vault)
    act(matrix.a.owner)
    client = Client.objects.get(pk=matrix.a.client.pk)
    with override_settings(VAULT_URL=dead_https_url()):
        with pytest.raises(ValidationError, match="card vault cannot be reached"):
            do_erase_client(client, actor=matrix.a.owner)
    act(matrix.a.owner)
    assert Client.objects.get(pk=client.pk).erased_at is None
    do_erase_client(Client.objects.get(pk=client.pk), actor=matrix.a.owner)
    act(matrix.a.owner)
    assert PaymentMethod.objects.get(pk=card.pk).removed_at is not None
    sealed = live_vault.sql(
        "SELECT number_sealed FROM vault_card WHERE token = %s", (card.vault_token,)
    )
    assert sealed == [(None,)]


def test_a_purged_business_is_destroyed_at_the_vault_and_waits_for_it(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    card = add_card(matrix.a, live_vault)
    payment = charge(
        open_invoice(matrix.a), card, matrix.a.owner, django_capture_on_commit_callbacks
    )
    act(matrix.a.owner)
    with django_capture_on_commit_callbacks(execute=True):
        do_refund_payment(payment, 500, actor=matrix.a.owner)
    act(matrix.a.owner)
    business = BusinessRow.objects.get(pk=matrix.a.owner.tenant_id)
    closed = do_close_business(business, actor=matrix.a.owner, confirm_name=business.name)
    assert closed.purge_after is not None
    with override_settings(VAULT_URL=dead_https_url()):
        assert do_purge_closed_businesses(closed.purge_after) == []
    act(matrix.a.owner)
    assert BusinessRow.objects.filter(pk=business.pk).exists()
    assert do_purge_closed_businesses(closed.purge_after) == [business.pk]
    act(matrix.b.owner)
    assert not BusinessRow.objects.filter(pk=business.pk).exists()
    destroyed = live_vault.sql(
        "SELECT count(*) FROM vault_destroyedbusiness WHERE business_id = %s", (business.pk,)
    )
    assert destroyed == [(1,)]


# --- Buying a pass in the portal -------------------------------------------------------------


def told(response: Any) -> list[str]:
    """The messages the request that made `response` left for the person (its commit
    callbacks' included)."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_client_buys_a_pass_with_their_card_and_a_declined_card_gets_no_pass(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    ten = catalog(matrix.a).ten
    portal = logged_in(matrix.a.client_login)
    add_card_through_app(portal, live_vault, "/app/cards/add/")
    act(matrix.a.owner)
    card = PaymentMethod.objects.get()
    page = portal.get("/app/passes/").content.decode()
    assert "Buy a pass" in page and str(ten.pk) in page
    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post("/app/passes/buy/", {"pass_type": str(ten.pk), "card": str(card.pk)})
    assert response.status_code == 302
    # The outcome, known only once the charge ran after the commit, is what the client is told.
    assert told(response) == ["Pass bought and paid."]
    act(matrix.a.owner)
    [bought] = ClientPass.objects.filter(client=matrix.a.client)
    assert bought.status == PassStatus.ACTIVE
    assert Invoice.objects.get(lines__client_pass=bought).status == InvoiceStatus.PAID
    # A declined card: the pass and its invoice are voided, the payment failed.
    add_card_through_app(portal, live_vault, "/app/cards/add/", DECLINED)
    act(matrix.a.owner)
    declined = PaymentMethod.objects.get(last4="0002")
    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(
            "/app/passes/buy/", {"pass_type": str(ten.pk), "card": str(declined.pk)}
        )
    refusal = told(response)[-1]
    assert "Pass bought and paid." not in told(response)
    assert refusal.startswith("The card payment failed, so no pass was bought: "), refusal
    act(matrix.a.owner)
    second = ClientPass.objects.filter(client=matrix.a.client).exclude(pk=bought.pk).get()
    assert second.status == PassStatus.VOID
    invoice = Invoice.objects.get(lines__client_pass=second)
    assert invoice.status == InvoiceStatus.VOID
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.FAILED


def test_a_pass_whose_charge_is_declined_only_on_a_retry_goes_with_it(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    ten = catalog(matrix.a).ten
    portal = logged_in(matrix.a.client_login)
    add_card_through_app(portal, live_vault, "/app/cards/add/", DECLINED)
    act(matrix.a.owner)
    card = PaymentMethod.objects.get()
    # The vault cannot be reached: the charge is not confirmed, and the pass is kept meanwhile.
    with (
        override_settings(VAULT_URL=dead_https_url()),
        django_capture_on_commit_callbacks(execute=True),
    ):
        portal.post("/app/passes/buy/", {"pass_type": str(ten.pk), "card": str(card.pk)})
    act(matrix.a.owner)
    bought = ClientPass.objects.get(client=matrix.a.client)
    invoice = Invoice.objects.get(lines__client_pass=bought)
    pending = Payment.objects.select_related("payment_method", "invoice").get(invoice=invoice)
    assert bought.status == PassStatus.ACTIVE and pending.status == PaymentStatus.PENDING
    # The owner's retry reaches the vault, which declines: the pass and its invoice go.
    act(matrix.a.owner)
    assert do_retry_charge(pending, actor=matrix.a.owner).status == PaymentStatus.FAILED
    act(matrix.a.owner)
    assert ClientPass.objects.get(pk=bought.pk).status == PassStatus.VOID
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.VOID


def test_a_declined_card_payment_of_a_pass_the_business_sold_leaves_it_open(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    act(matrix.a.owner)
    sold, invoice = do_sell_pass(matrix.a.client, catalog(matrix.a).ten, actor=matrix.a.owner)
    declined = add_card(matrix.a, live_vault, DECLINED)
    payment = charge(invoice, declined, matrix.a.owner, django_capture_on_commit_callbacks)
    assert payment.status == PaymentStatus.FAILED
    act(matrix.a.owner)
    assert ClientPass.objects.get(pk=sold.pk).status == PassStatus.ACTIVE
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.OPEN


def test_only_a_client_buys_in_the_portal_and_only_this_business_passes(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    card = add_card(matrix.a, live_vault)
    ten_a = catalog(matrix.a).ten
    ten_b = catalog(matrix.b).ten
    owner = logged_in(matrix.a.owner)
    data = {"pass_type": str(ten_a.pk), "card": str(card.pk)}
    assert owner.post("/app/passes/buy/", data).status_code == 403
    assert logged_in(matrix.a.staff).post("/app/passes/buy/", data).status_code == 403
    portal = logged_in(matrix.a.client_login)
    other = {"pass_type": str(ten_b.pk), "card": str(card.pk)}
    assert portal.post("/app/passes/buy/", other).status_code == 404
    act(matrix.a.owner)
    assert not ClientPass.objects.filter(client=matrix.a.client).exists()


# --- Webhook events --------------------------------------------------------------------------


def test_card_outcomes_are_announced_to_the_business_webhooks(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    a = matrix.a
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the endpoint is never called here: rows are checked
    add_endpoint(
        a.owner,
        "https://127.0.0.1:9/hook",
        ["payment.succeeded", "payment.failed", "payment.refunded"],
    )
    card = add_card(a, live_vault)
    payment = charge(open_invoice(a), card, a.owner, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        do_refund_payment(payment, 5000, actor=a.owner)
    declined = add_card(a, live_vault, DECLINED)
    charge(open_invoice(a), declined, a.owner, django_capture_on_commit_callbacks)
    sent = [(d.event_type, d.payload["data"]) for d in deliveries_of(a.owner)]
    assert [kind for kind, _data in sent] == [
        "payment.succeeded",
        "payment.refunded",
        "payment.failed",
    ]
    assert sent[1][1]["refunded_minor"] == 5000 and sent[0][1]["method"] == "card"
    for _kind, data in sent:
        assert VISA not in str(data) and "4242" not in str(data)
