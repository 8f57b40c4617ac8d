"""Who may reach cards, attacked first: another business's card, invoice and payment ids are 404;
staff are refused every card page and action; a manager only with an owner's grant; a client
only their own cards and invoices; an API token never (no route, and no token may hold the
scope). No vault is needed to be refused: these never get that far."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import URLPattern, URLResolver, get_resolver

from custodia.accounts.actions import do_create_api_token
from custodia.audit.models import AuditEvent
from custodia.core.actor import Actor
from custodia.core.audit import AuditAction
from custodia.core.permissions import CARD_PERMISSIONS, Permission
from custodia.payments.actions.cards import do_remove_card
from custodia.payments.actions.passes import do_sell_pass
from custodia.payments.models import Invoice, Payment, PaymentMethod, PaymentStatus, PaymentType
from custodia.tenancy.actions import do_change_role, do_grant_cards
from custodia.tenancy.models import Membership
from tests.acting import act
from tests.factories import Business, TenantMatrix
from tests.payments.cards import grant_cards, saved_card
from tests.payments.support import catalog
from tests.web.support import logged_in

pytestmark = pytest.mark.django_db


def card_world(business: Business) -> tuple[PaymentMethod, Invoice, Payment]:
    """A saved card of the business's client, an open invoice of theirs, a card payment."""
    card = saved_card(business)
    act(business.owner)
    _pass, invoice = do_sell_pass(business.client, catalog(business).ten, actor=business.owner)
    act(business.owner)
    payment = Payment.objects.create(
        tenant_id=business.owner.tenant_id,
        invoice=invoice,
        amount_minor=100,
        currency=invoice.currency,
        method=PaymentType.CARD,
        status=PaymentStatus.PENDING,
        payment_method=card,
        idempotency_key=f"pay_{card.pk.hex}",
    )
    return card, invoice, payment


def card_doors(
    business: Business, card: PaymentMethod, invoice: Invoice, payment: Payment
) -> list[tuple[str, str]]:
    c = business.client.pk
    return [
        ("get", f"/app/clients/{c}/cards/"),
        ("post", f"/app/clients/{c}/cards/add/"),
        ("post", f"/app/cards/{card.pk}/remove/"),
        ("post", f"/app/invoices/{invoice.pk}/charge/"),
        ("post", f"/app/payments/{payment.pk}/retry/"),
        ("post", f"/app/payments/{payment.pk}/refund/"),
    ]


def call(web: Any, method: str, path: str, card: PaymentMethod) -> int:
    if method == "get":
        return int(web.get(path).status_code)
    return int(web.post(path, {"card": str(card.pk), "amount": "1.00"}).status_code)


def test_another_business_gets_404_for_every_card_door(matrix: TenantMatrix) -> None:
    card, invoice, payment = card_world(matrix.a)
    outsider = logged_in(matrix.outsider)
    for method, path in card_doors(matrix.a, card, invoice, payment):
        assert call(outsider, method, path, card) == 404, path
    act(matrix.a.owner)
    assert PaymentMethod.objects.get(pk=card.pk).removed_at is None
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_the_outsiders_own_invoice_cannot_be_charged_to_our_card(matrix: TenantMatrix) -> None:
    card, _invoice, _payment = card_world(matrix.a)
    _b_card, b_invoice, _b_payment = card_world(matrix.b)
    outsider = logged_in(matrix.outsider)
    response = outsider.post(f"/app/invoices/{b_invoice.pk}/charge/", {"card": str(card.pk)})
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["staff", "manager"])
def test_staff_and_a_manager_without_the_grant_are_refused(matrix: TenantMatrix, who: str) -> None:
    card, invoice, payment = card_world(matrix.a)
    web = logged_in(getattr(matrix.a, who))
    for method, path in card_doors(matrix.a, card, invoice, payment):
        assert call(web, method, path, card) in (403, 404), path
    assert call(web, "get", "/app/cards/", card) == 403


def test_a_manager_with_the_grant_may_and_loses_it_with_a_role_change(matrix: TenantMatrix) -> None:
    manager = grant_cards(matrix.a)
    membership = Membership.objects.get(pk=manager.membership.pk)
    assert membership.cards_granted
    granted = Actor(manager.user, membership)
    assert all(granted.can(permission) for permission in CARD_PERMISSIONS)
    web = logged_in(granted)
    assert web.get(f"/app/clients/{matrix.a.client.pk}/cards/").status_code == 200
    act(matrix.a.owner)
    do_change_role(membership, membership.role, actor=matrix.a.owner)
    assert not Membership.objects.get(pk=membership.pk).cards_granted


def test_only_owners_grant_and_only_to_managers(matrix: TenantMatrix) -> None:
    act(matrix.a.manager)
    with pytest.raises(PermissionDenied):
        do_grant_cards(matrix.a.manager.membership, True, actor=matrix.a.manager)
    act(matrix.a.owner)
    with pytest.raises(ValidationError):
        do_grant_cards(matrix.a.staff.membership, True, actor=matrix.a.owner)
    assert not matrix.a.staff.can(Permission.PAYMENTS_CARD_CHARGE)
    assert not matrix.a.manager.can(Permission.PAYMENTS_CARD_CHARGE)


def test_the_staff_page_toggles_the_grant_with_an_audit_event(matrix: TenantMatrix) -> None:
    owner = logged_in(matrix.a.owner)
    member = matrix.a.manager.membership
    page = owner.get("/app/staff/").content.decode()
    assert f"/app/staff/{member.pk}/cards/" in page
    assert owner.post(f"/app/staff/{member.pk}/cards/", {"granted": "on"}).status_code == 302
    act(matrix.a.owner)
    assert Membership.objects.get(pk=member.pk).cards_granted
    assert "Withdraw card payments" in owner.get("/app/staff/").content.decode()
    owner.post(f"/app/staff/{member.pk}/cards/")
    act(matrix.a.owner)
    assert not Membership.objects.get(pk=member.pk).cards_granted
    events = AuditEvent.objects.filter(
        action=AuditAction.MEMBER_CARDS_GRANT, target_id=str(member.pk)
    )
    assert events.count() == 2
    # A manager cannot grant it (to themself or anyone).
    manager = logged_in(matrix.a.manager)
    assert manager.post(f"/app/staff/{member.pk}/cards/", {"granted": "on"}).status_code == 403


def test_a_client_reaches_only_their_own_cards_and_invoices(matrix: TenantMatrix) -> None:
    card, invoice, payment = card_world(matrix.a)
    act(matrix.a.owner)
    other_card = saved_card(matrix.a, vault_token="tok_other", fingerprint="f" * 32)
    PaymentMethod.objects.filter(pk=other_card.pk).update(client=matrix.a.other_client)
    portal = logged_in(matrix.a.client_login)
    assert portal.get("/app/cards/").status_code == 200
    assert "4242" in portal.get("/app/cards/").content.decode()
    # Another client's cards page, card, and the other client's invoice: not found.
    assert portal.get(f"/app/clients/{matrix.a.other_client.pk}/cards/").status_code == 404
    assert portal.post(f"/app/cards/{other_card.pk}/remove/").status_code == 404
    act(matrix.a.owner)
    _pass, other_invoice = do_sell_pass(
        matrix.a.other_client, catalog(matrix.a).ten, actor=matrix.a.owner
    )
    response = portal.post(f"/app/invoices/{other_invoice.pk}/charge/", {"card": str(card.pk)})
    assert response.status_code == 404
    response = portal.post(f"/app/invoices/{invoice.pk}/charge/", {"card": str(other_card.pk)})
    assert response.status_code == 404
    # Refunds are the business's: a client has no such permission.
    assert portal.post(f"/app/payments/{payment.pk}/refund/", {"amount": "1"}).status_code == 403


def test_no_api_token_can_hold_a_card_scope(matrix: TenantMatrix) -> None:
    owner = matrix.a.owner
    act(owner)
    token, _plain = do_create_api_token(actor=owner, name="all")
    assert not set(token.scopes) & {p.value for p in CARD_PERMISSIONS}
    for permission in CARD_PERMISSIONS:
        act(owner)
        with pytest.raises(ValidationError, match="card"):
            do_create_api_token(actor=owner, name="cards", scopes=[permission.value])
    # Even an actor narrowed to every scope by name is refused card work.
    everything = Actor(owner.user, owner.membership, scopes=frozenset(Permission))
    assert not any(everything.can(permission) for permission in CARD_PERMISSIONS)


def _routes(patterns: list[Any], prefix: str = "") -> list[str]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append(prefix + str(pattern.pattern))
    return found


def test_no_api_route_touches_cards(matrix: TenantMatrix, api_as: Any) -> None:
    api = [route for route in _routes(get_resolver().url_patterns) if route.startswith("api/")]
    assert api, "the API's routes are listed"
    assert not [r for r in api if any(word in r for word in ("card", "charge", "refund"))]
    card, invoice, payment = card_world(matrix.a)
    token = api_as(matrix.a.owner)
    for path in (
        f"/api/v1/invoices/{invoice.pk}/charge",
        f"/api/v1/payments/{payment.pk}/refund",
        f"/api/v1/cards/{card.pk}",
    ):
        assert token.post(path, {}, content_type="application/json").status_code in (404, 405)
    # A token on the web pages is no session: sent to log in, never acting.
    response = token.post(f"/app/invoices/{invoice.pk}/charge/", {"card": str(card.pk)})
    assert response.status_code in (302, 403)
    act(matrix.a.owner)
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_a_client_handed_another_clients_records_finds_nothing(matrix: TenantMatrix) -> None:
    """The action checks too (not only the access functions): another client's card is 404."""
    card = saved_card(matrix.a)
    act(matrix.a.owner)
    PaymentMethod.objects.filter(pk=card.pk).update(client=matrix.a.other_client)
    card.refresh_from_db()
    act(matrix.a.client_login)
    with pytest.raises(Http404):
        do_remove_card(card, actor=matrix.a.client_login)
