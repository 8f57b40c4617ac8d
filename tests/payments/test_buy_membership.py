"""Buying a membership in the portal (payments/actions/portal.py, web/payments/cards.py), against
a live vault: approved -> active membership, paid invoice, autopay consented by the client;
declined, at once or only on a retry -> membership cancelled with its autopay off, invoice void;
a renewal invoice the client pays with a declined card is never undone; lesser roles, an API
token, another client's card, another business's plan, a second membership of the same plan
and a missing consent refused; the card window asked for. And a manager starting a membership
with autopay: consent recorded naming the manager; without the cards grant refused (403)."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import override_settings

from custodia.accounts import stepup
from custodia.audit.models import AuditEvent
from custodia.core.actor import Actor
from custodia.core.permissions import Permission
from custodia.payments.actions.cards import do_charge_invoice, do_retry_charge
from custodia.payments.actions.portal import do_buy_membership
from custodia.payments.actions.renewals import do_renew_memberships
from custodia.payments.models import (
    ClientMembership,
    Invoice,
    InvoiceStatus,
    MembershipStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from custodia.tenancy.actors import system_actor
from custodia.testing.launcher import free_port
from tests.acting import act
from tests.factories import Business, TenantMatrix
from tests.payments.cards import (
    DECLINED,
    SECURITY_CODE,
    VISA,
    add_card_through_app,
    grant_cards,
)
from tests.payments.support import catalog
from tests.vaults import LiveVault
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def steady_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """The step-up clock a minute ahead (as in test_cards_live.py): the card window is open."""
    at = time.time() + 60
    monkeypatch.setattr(stepup, "clock", lambda: at)
    return at


def told(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def portal_card(business: Business, vault: LiveVault, number: str = VISA) -> tuple[Any, Any]:
    """The client's portal with a card they added; the browser and the card."""
    portal = logged_in(business.client_login)
    add_card_through_app(portal, vault, "/app/cards/add/", number)
    act(business.owner)
    card = PaymentMethod.objects.filter(client=business.client).latest("created_at")
    return portal, card


def buy(portal: Any, plan: Any, card: Any, capture: Any, *, consent: bool = True) -> Any:
    data = {"card": str(card.pk)}
    if consent:
        data["consent"] = "yes"
    with capture(execute=True):
        return portal.post(f"/app/plans/{plan.pk}/buy/", data)


def memberships_of(business: Business) -> list[ClientMembership]:
    act(business.owner)
    return list(ClientMembership.objects.filter(client=business.client).order_by("created_at"))


def first_invoice(membership: ClientMembership) -> Invoice:
    return Invoice.objects.filter(lines__membership=membership).earliest("created_at")


# --- Buying --------------------------------------------------------------------------------------


def test_a_client_buys_a_membership_paid_active_with_autopay_they_consented_to(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault)
    page = portal.get("/app/passes/").content.decode()
    assert "Buy a membership" in page and f"/app/plans/{plan.pk}/buy/" in page
    buy_page = portal.get(f"/app/plans/{plan.pk}/buy/").content.decode()
    assert "Charge Visa ending 4242 $80.00 every month until I cancel." in buy_page
    response = buy(portal, plan, card, django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"].startswith("/app/invoices/")
    assert told(response) == ["Membership bought and paid: autopay charges your card each month."]
    [membership] = memberships_of(matrix.a)
    assert membership.status == MembershipStatus.ACTIVE
    assert membership.autopay_card_id == card.pk
    assert membership.autopay_consent_by == matrix.a.client_login.membership.pk
    invoice = first_invoice(membership)
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.SUCCEEDED
    on = AuditEvent.objects.get(action="client_membership.autopay_on", target_id=str(membership.pk))
    assert on.actor_role == "client"
    # Started by the business's system actor (no person), not by the client's context.
    started = AuditEvent.objects.get(action="client_membership.start")
    assert started.actor_user_id is None and started.actor_role != "client"


def test_a_declined_card_gets_no_membership_and_the_invoice_is_void(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault, DECLINED)
    response = buy(portal, plan, card, django_capture_on_commit_callbacks)
    refusal = told(response)[-1]
    assert refusal.startswith("The card payment failed, so no membership was bought: "), refusal
    [membership] = memberships_of(matrix.a)
    assert membership.status == MembershipStatus.CANCELLED
    assert membership.autopay_card_id is None and membership.autopay_consent_at is None
    invoice = first_invoice(membership)
    assert invoice.status == InvoiceStatus.VOID
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.FAILED
    # A cancelled one is not held: the client may buy again with another card.
    _portal, good = portal_card(matrix.a, live_vault)
    buy(portal, plan, good, django_capture_on_commit_callbacks)
    assert [m.status for m in memberships_of(matrix.a)] == ["cancelled", "active"]


def test_a_membership_whose_charge_is_declined_only_on_a_retry_goes_with_it(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault, DECLINED)
    with override_settings(VAULT_URL=f"https://localhost:{free_port()}"):
        response = buy(portal, plan, card, django_capture_on_commit_callbacks)
    assert told(response)[-1] == "Membership ordered: the card payment's status is shown below."
    [membership] = memberships_of(matrix.a)
    invoice = first_invoice(membership)
    pending = Payment.objects.select_related("payment_method", "invoice").get(invoice=invoice)
    assert membership.status == MembershipStatus.ACTIVE
    assert pending.status == PaymentStatus.PENDING
    # Kept until retried; the retry is declined: the membership and its invoice go.
    act(matrix.a.owner)
    assert do_retry_charge(pending, actor=matrix.a.owner).status == PaymentStatus.FAILED
    [membership] = memberships_of(matrix.a)
    assert membership.status == MembershipStatus.CANCELLED
    assert membership.autopay_card_id is None
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.VOID


def test_a_renewal_the_client_pays_with_a_declined_card_keeps_the_membership(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    """Only the sale's own charge undoes it: a renewal invoice (or any invoice the client pays
    later in the portal) stays open after a decline."""
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault)
    buy(portal, plan, card, django_capture_on_commit_callbacks)
    [membership] = memberships_of(matrix.a)
    job = system_actor(matrix.a.owner.tenant_id, task="membership-renewals")
    act(job)
    do_renew_memberships(actor=job, now=membership.current_period_end)
    act(matrix.a.owner)
    renewal = Invoice.objects.filter(lines__membership=membership).latest("created_at")
    assert renewal.status == InvoiceStatus.OPEN
    _portal, declined = portal_card(matrix.a, live_vault, DECLINED)
    client = matrix.a.client_login
    act(client)
    with django_capture_on_commit_callbacks(execute=True):
        payment = do_charge_invoice(renewal, declined, actor=client)
    assert payment.status == PaymentStatus.FAILED
    [membership] = memberships_of(matrix.a)
    assert membership.status == MembershipStatus.PAST_DUE
    assert membership.autopay_card_id == card.pk
    assert Invoice.objects.get(pk=renewal.pk).status == InvoiceStatus.OPEN


# --- Refusals ------------------------------------------------------------------------------------


def test_two_memberships_of_the_same_plan_are_refused(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault)
    buy(portal, plan, card, django_capture_on_commit_callbacks)
    response = buy(portal, plan, card, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response["Location"] == f"/app/plans/{plan.pk}/buy/"
    assert told(response)[-1].startswith("You already have this membership")
    assert len(memberships_of(matrix.a)) == 1
    assert Invoice.objects.filter(client=matrix.a.client).count() == 1


def test_no_consent_no_membership(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault)
    response = buy(portal, plan, card, django_capture_on_commit_callbacks, consent=False)
    assert "tick the box" in told(response)[-1]
    assert memberships_of(matrix.a) == []
    assert not Invoice.objects.filter(client=matrix.a.client).exists()


def test_only_the_client_buys_with_their_own_card_and_this_business_plans(
    matrix: TenantMatrix, live_vault: LiveVault, django_capture_on_commit_callbacks: Any
) -> None:
    plan_a = catalog(matrix.a).plan
    plan_b = catalog(matrix.b).plan
    portal, card = portal_card(matrix.a, live_vault)
    data = {"card": str(card.pk), "consent": "yes"}
    grant_cards(matrix.a)
    for actor in (matrix.a.owner, matrix.a.manager, matrix.a.staff):
        web = logged_in(actor)
        assert web.post(f"/app/plans/{plan_a.pk}/buy/", data).status_code == 403
        assert web.get(f"/app/plans/{plan_a.pk}/buy/").status_code == 403
    # Another business's plan: as if it did not exist.
    assert portal.post(f"/app/plans/{plan_b.pk}/buy/", data).status_code == 404
    assert portal.get(f"/app/plans/{plan_b.pk}/buy/").status_code == 404
    # Another client's card of the same business.
    act(matrix.a.owner)
    other = PaymentMethod.objects.create(
        tenant_id=matrix.a.owner.tenant_id,
        client=matrix.a.other_client,
        vault_token="tok_other",
        brand="Visa",
        last4="1111",
        exp_month=12,
        exp_year=2040,
        fingerprint="f" * 32,
    )
    other_data = {"card": str(other.pk), "consent": "yes"}
    assert portal.post(f"/app/plans/{plan_a.pk}/buy/", other_data).status_code == 404
    # The action refuses them too: another client's card, an API token.
    client = matrix.a.client_login
    act(client)
    with pytest.raises(Http404):
        do_buy_membership(plan_a, other, actor=client, consent=True)
    token_like = Actor(client.user, client.membership, scopes=frozenset(Permission))
    act(token_like)
    with pytest.raises(PermissionDenied):
        do_buy_membership(plan_a, card, actor=token_like, consent=True)
    act(matrix.a.owner)
    with pytest.raises(PermissionDenied):
        do_buy_membership(plan_a, card, actor=matrix.a.owner, consent=True)
    assert memberships_of(matrix.a) == []


def test_a_stale_card_window_asks_for_the_password(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    monkeypatch: pytest.MonkeyPatch,
    steady_clock: float,
) -> None:
    plan = catalog(matrix.a).plan
    portal, card = portal_card(matrix.a, live_vault)
    monkeypatch.setattr(stepup, "clock", lambda: steady_clock + 16 * 60)
    response = portal.post(
        f"/app/plans/{plan.pk}/buy/",
        {"card": str(card.pk), "consent": "yes"},
        HTTP_REFERER=f"https://testserver/app/plans/{plan.pk}/buy/",
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/app/step-up/")
    assert memberships_of(matrix.a) == []


def test_adding_a_card_on_the_way_comes_back_to_the_purchase(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    plan = catalog(matrix.a).plan
    plan_b = catalog(matrix.b).plan
    portal = logged_in(matrix.a.client_login)
    page = portal.get(f"/app/plans/{plan.pk}/buy/").content.decode()
    assert "You have no saved card yet." in page and "Add a new card" in page
    # Another business's plan to come back to: as if it did not exist.
    assert portal.post("/app/cards/add/", {"then": str(plan_b.pk)}).status_code == 404
    opened = portal.post("/app/cards/add/", {"then": str(plan.pk)})
    assert opened.status_code == 200
    body = opened.content.decode()
    assert f"/app/plans/{plan.pk}/buy/" in body  # its Back link
    match = re.search(r'<iframe class="card-frame" src="([^"]+)"', body)
    assert match is not None
    answer = live_vault.submit_card(
        html.unescape(match.group(1)), number=VISA, security_code=SECURITY_CODE
    )
    assert answer.status == 303, answer.data
    back = urlsplit(answer.headers["Location"])
    response = portal.get(f"{back.path}?{back.query}")
    assert response.status_code == 302
    assert response["Location"] == f"/app/plans/{plan.pk}/buy/"
    page = portal.get(response["Location"]).content.decode()
    assert "Charge Visa ending 4242 $80.00 every month until I cancel." in page


# --- A manager starting a membership with autopay ----------------------------------------------


def test_a_granted_manager_starts_a_membership_with_autopay_consent_naming_them(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    plan = catalog(matrix.a).plan
    _portal, card = portal_card(matrix.a, live_vault)
    manager = grant_cards(matrix.a)
    web = logged_in(manager)
    page = web.get(f"/app/clients/{matrix.a.client.pk}/passes/").content.decode()
    assert "Autopay card" in page and "The client agreed to be charged" in page
    start = f"/app/clients/{matrix.a.client.pk}/memberships/start/"
    # The card without the confirmation: refused, nothing started.
    refused = web.post(start, {"plan": str(plan.pk), "autopay_card": str(card.pk)})
    assert refused.status_code == 302
    assert "Confirm that the client agreed" in told(refused)[-1]
    assert memberships_of(matrix.a) == []
    response = web.post(
        start, {"plan": str(plan.pk), "autopay_card": str(card.pk), "consent": "yes"}
    )
    assert response.status_code == 302
    [membership] = memberships_of(matrix.a)
    assert membership.status == MembershipStatus.ACTIVE
    assert membership.autopay_card_id == card.pk
    assert membership.autopay_consent_by == manager.membership.pk
    assert first_invoice(membership).status == InvoiceStatus.OPEN
    on = AuditEvent.objects.get(action="client_membership.autopay_on")
    assert on.actor_user_id == manager.user.pk


def test_without_the_cards_grant_no_autopay_option_and_a_forged_post_is_refused(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    plan = catalog(matrix.a).plan
    _portal, card = portal_card(matrix.a, live_vault)
    web = logged_in(matrix.a.manager)  # not granted card payments
    page = web.get(f"/app/clients/{matrix.a.client.pk}/passes/").content.decode()
    assert "Start membership" in page and "Autopay card" not in page
    start = f"/app/clients/{matrix.a.client.pk}/memberships/start/"
    forged = {"plan": str(plan.pk), "autopay_card": str(card.pk), "consent": "yes"}
    assert web.post(start, forged).status_code == 403
    assert memberships_of(matrix.a) == []
    # Without a card the start works as before, with no autopay.
    assert web.post(start, {"plan": str(plan.pk)}).status_code == 302
    [membership] = memberships_of(matrix.a)
    assert membership.autopay_card_id is None


def test_a_manager_cannot_start_autopay_with_another_client_card(
    matrix: TenantMatrix, live_vault: LiveVault
) -> None:
    plan = catalog(matrix.a).plan
    _portal, card = portal_card(matrix.a, live_vault)
    manager = grant_cards(matrix.a)
    web = logged_in(manager)
    start = f"/app/clients/{matrix.a.other_client.pk}/memberships/start/"
    response = web.post(
        start, {"plan": str(plan.pk), "autopay_card": str(card.pk), "consent": "yes"}
    )
    assert response.status_code == 302
    assert "Choose a saved card of this client." in told(response)[-1]
    act(matrix.a.owner)
    assert not ClientMembership.objects.filter(client=matrix.a.other_client).exists()


def test_a_manager_start_with_autopay_in_a_stale_card_window_asks_for_the_password(
    matrix: TenantMatrix,
    live_vault: LiveVault,
    monkeypatch: pytest.MonkeyPatch,
    steady_clock: float,
) -> None:
    plan = catalog(matrix.a).plan
    _portal, card = portal_card(matrix.a, live_vault)
    web = logged_in(grant_cards(matrix.a))
    monkeypatch.setattr(stepup, "clock", lambda: steady_clock + 16 * 60)
    response = web.post(
        f"/app/clients/{matrix.a.client.pk}/memberships/start/",
        {"plan": str(plan.pk), "autopay_card": str(card.pk), "consent": "yes"},
        HTTP_REFERER=f"https://testserver/app/clients/{matrix.a.client.pk}/passes/",
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/app/step-up/")
    assert memberships_of(matrix.a) == []
