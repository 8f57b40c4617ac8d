"""Card pages: a client's saved cards (a manager with the cards permission, or the client in the
portal), adding one through the vault's hosted form, removing one; charging an open invoice,
retrying a charge not confirmed, refunding a card payment.

Thin doors onto payments/actions/cards.py, which asks for the card window (the password again
after 15 idle minutes) inside each action; StepUpRequired is turned into the step-up page by
web/middleware.py. The hosted form comes back to `card_added` with a one-time `?ref=`: the client
it is for is bound in the session when the form is opened (a random state in the return URL
names it), never taken from the URL, so nobody can redeem a card into another client.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from custodia.clients.access import access_client_by_id
from custodia.clients.models import Client
from custodia.core.actor import Actor
from custodia.core.permissions import Permission, Role
from custodia.payments import access
from custodia.payments.actions.autopay import consent_for
from custodia.payments.actions.cards import (
    do_add_card,
    do_charge_invoice,
    do_refund_payment,
    do_remove_card,
    do_retry_charge,
    do_start_card_form,
)
from custodia.payments.actions.portal import do_buy_membership, do_buy_pass
from custodia.payments.models import MembershipPlan, Payment, PaymentStatus
from custodia.payments.money import to_minor
from custodia.tenancy.reads import Intent
from custodia.web.decorators import member_required

# Pending hosted forms of this session: state -> {business, client, at}.
PENDING_FORMS_KEY = "custodia.card_forms"
PENDING_FORM_SECONDS = 20 * 60
MAX_PENDING_FORMS = 5


def _client_for(actor: Actor, client_id: object, intent: Intent) -> Client:
    """The client whose cards the page is about: a client's own record, or one the manager may
    see; anything else 404."""
    if actor.role == Role.CLIENT:
        if client_id is not None and str(client_id) != str(actor.membership.client_id):
            raise Http404("No such client.")
        return access_client_by_id(actor, actor.membership.client_id, intent=intent)
    if client_id is None:
        raise Http404("No such client.")
    return access_client_by_id(actor, client_id, intent=intent)


def _cards_url(actor: Actor, client: Client) -> str:
    if actor.role == Role.CLIENT:
        return reverse("my_cards")
    return reverse("client_cards", kwargs={"client_id": client.pk})


def _refused(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@require_safe
@member_required(Permission.PAYMENTS_CARD_WRITE)
def cards(request: HttpRequest, actor: Actor, client_id: str | None = None) -> HttpResponse:
    """A client's saved cards: brand, last four and expiry, never more (and the client's name:
    a read of the client)."""
    client = _client_for(actor, client_id, Intent.SHOW)
    context = {
        "client": client,
        "cards": access.read_cards_of(actor, client),
        "own": actor.role == Role.CLIENT,
    }
    return render(request, "payments/cards.html", context)


@require_POST
@member_required(Permission.PAYMENTS_CARD_WRITE)
def card_form(request: HttpRequest, actor: Actor, client_id: str | None = None) -> HttpResponse:
    """Open the vault's hosted card form for the client, framed on this page (which names
    them: a read of the client)."""
    client = _client_for(actor, client_id, Intent.SHOW)
    # A client adding a card on the way to buying a membership comes back to that purchase.
    plan = _plan_to_return_to(actor, request.POST.get("then", ""))
    back = reverse("membership_buy", args=[plan.pk]) if plan else _cards_url(actor, client)
    state = secrets.token_urlsafe(24)
    return_url = settings.PUBLIC_URL + reverse("card_added", kwargs={"state": state})
    try:
        form = do_start_card_form(client, actor=actor, return_url=return_url)
    except ValidationError as exc:
        _refused(request, exc)
        return redirect(back)
    now = time.time()
    pending = {
        key: value
        for key, value in dict(request.session.get(PENDING_FORMS_KEY, {})).items()
        if isinstance(value, dict) and now - float(value.get("at", 0)) < PENDING_FORM_SECONDS
    }
    pending = dict(
        sorted(pending.items(), key=lambda item: item[1]["at"])[-MAX_PENDING_FORMS + 1 :]
    )
    pending[state] = {"business": str(actor.tenant_id), "client": str(client.pk), "at": now}
    if plan is not None:
        pending[state]["then"] = str(plan.pk)
    request.session[PENDING_FORMS_KEY] = pending
    response = render(
        request,
        "payments/card_form.html",
        {"client": client, "form_url": form.form_url, "back": back},
    )
    # The vault's origin may be framed on this page only (the CSP is 'self' everywhere else).
    vault = urlsplit(settings.VAULT_URL)
    response._csp_update = {"frame-src": [f"{vault.scheme}://{vault.netloc}"]}  # type: ignore[attr-defined]
    return response


@require_safe
@member_required(Permission.PAYMENTS_CARD_WRITE)
def card_added(request: HttpRequest, actor: Actor, state: str) -> HttpResponse:
    """Where the hosted form sends the browser back: save the card it added."""
    pending: dict[str, Any] = dict(request.session.get(PENDING_FORMS_KEY, {}))
    bound = pending.pop(state, None)
    request.session[PENDING_FORMS_KEY] = pending
    ref = request.GET.get("ref", "")
    if (
        not isinstance(bound, dict)
        or bound.get("business") != str(actor.tenant_id)
        or time.time() - float(bound.get("at", 0)) >= PENDING_FORM_SECONDS
        or not ref
    ):
        messages.error(
            request, "This card form is not one this session opened: add the card again."
        )
        return redirect("my_cards" if actor.role == Role.CLIENT else "client_list")
    client = _client_for(actor, bound["client"], Intent.REFERENCE)
    try:
        card, new = do_add_card(client, ref, actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            f"{card} saved." if new else "This card is already on file.",
        )
    plan = _plan_to_return_to(actor, bound.get("then", ""))
    if plan is not None:
        return redirect("membership_buy", plan_id=plan.pk)
    return redirect(_cards_url(actor, client))


def _plan_to_return_to(actor: Actor, plan_id: object) -> MembershipPlan | None:
    """The plan a client is buying when they add a card on the way (an offered plan of their
    business, else 404); None for anyone else, or no plan named."""
    if actor.role != Role.CLIENT or not plan_id:
        return None
    return access.access_plan_by_id(actor, plan_id)


@require_POST
@member_required(Permission.PAYMENTS_CARD_WRITE)
def card_remove(request: HttpRequest, actor: Actor, card_id: str) -> HttpResponse:
    """Remove a saved card: the vault destroys its number."""
    card = access.access_card_by_id(actor, card_id, permission=Permission.PAYMENTS_CARD_WRITE)
    try:
        do_remove_card(card, actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Card removed.")
    return redirect(_cards_url(actor, card.client))


@require_POST
@member_required(Permission.PAYMENTS_CARD_CHARGE)
def invoice_charge(request: HttpRequest, actor: Actor, invoice_id: str) -> HttpResponse:
    """Charge what is due on an open invoice to a saved card of its client."""
    invoice = access.access_invoice_by_id(actor, invoice_id, intent=Intent.CHANGE)
    card = access.access_card_by_id(
        actor, request.POST.get("card", ""), permission=Permission.PAYMENTS_CARD_CHARGE
    )
    try:
        payment = do_charge_invoice(invoice, card, actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.info(
            request, f"Card payment sent: its status is shown below (payment {payment.pk})."
        )
    return redirect("invoice_detail", invoice_id=invoice.pk)


@require_POST
@member_required(Permission.PAYMENTS_CARD_CHARGE)
def payment_retry(request: HttpRequest, actor: Actor, payment_id: str) -> HttpResponse:
    """Ask the vault again about a card payment not confirmed (same idempotency key)."""
    payment = access.access_card_payment_by_id(
        actor, payment_id, permission=Permission.PAYMENTS_CARD_CHARGE
    )
    try:
        payment = do_retry_charge(payment, actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        if payment.status == PaymentStatus.SUCCEEDED:
            messages.success(request, "The card payment is confirmed.")
        elif payment.status == PaymentStatus.FAILED:
            messages.error(request, f"The card payment failed: {payment.message}")
        else:
            messages.info(request, "Still not confirmed: try again in a moment.")
    return redirect("invoice_detail", invoice_id=payment.invoice_id)


@require_POST
@member_required(Permission.PAYMENTS_CARD_REFUND)
def payment_refund(request: HttpRequest, actor: Actor, payment_id: str) -> HttpResponse:
    """Refund all or part of a card payment."""
    payment = access.access_card_payment_by_id(
        actor, payment_id, permission=Permission.PAYMENTS_CARD_REFUND
    )
    try:
        amount = to_minor(request.POST.get("amount", "").strip()[:20], payment.currency)
        do_refund_payment(payment, amount, actor=actor)
    except ValueError as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.info(request, "Refund sent: its status is shown below.")
    return redirect("invoice_detail", invoice_id=payment.invoice_id)


@require_POST
@member_required(Permission.PAYMENTS_CARD_CHARGE)
def pass_buy(request: HttpRequest, actor: Actor) -> HttpResponse:
    """A client buys a pass on sale with one of their saved cards."""
    pass_type = access.access_pass_type_by_id(actor, request.POST.get("pass_type", ""))
    card = access.access_card_by_id(
        actor, request.POST.get("card", ""), permission=Permission.PAYMENTS_CARD_CHARGE
    )
    try:
        payment = do_buy_pass(pass_type, card, actor=actor)
    except ValidationError as exc:
        _refused(request, exc)
        return redirect("pass_list")
    # The vault is asked only once the request's transaction commits (after this view), so the
    # payment is still pending here: the outcome is told after the sale's own commit callbacks
    # (which charge, and void the pass on a decline), before the messages are stored.
    transaction.on_commit(lambda: _tell_sale_outcome(request, payment, "pass"))
    return redirect("invoice_detail", invoice_id=payment.invoice_id)


@require_http_methods(["GET", "HEAD", "POST"])
@member_required(Permission.PAYMENTS_CARD_CHARGE)
def membership_buy(request: HttpRequest, actor: Actor, plan_id: str) -> HttpResponse:
    """A client buys a membership of an offered plan: the plan, their saved cards each with the
    consent to the monthly charge, and a way to add a card that comes back here."""
    plan = access.access_plan_by_id(actor, plan_id)
    if request.method == "POST":
        card = access.access_card_by_id(
            actor, request.POST.get("card", ""), permission=Permission.PAYMENTS_CARD_CHARGE
        )
        try:
            payment = do_buy_membership(
                plan, card, actor=actor, consent=request.POST.get("consent") == "yes"
            )
        except ValidationError as exc:
            _refused(request, exc)
            return redirect("membership_buy", plan_id=plan.pk)
        transaction.on_commit(lambda: _tell_sale_outcome(request, payment, "membership"))
        return redirect("invoice_detail", invoice_id=payment.invoice_id)
    if actor.role != Role.CLIENT:
        raise PermissionDenied("Memberships are bought by clients in their portal.")
    client = _client_for(actor, None, Intent.REFERENCE)
    currency = str(actor.business.currency)
    cards = [
        (card, consent_for(card, plan.monthly_price_minor, currency))
        for card in access.read_cards_of(actor, client)
    ]
    context = {"plan": plan, "currency": currency, "cards": cards}
    return render(request, "payments/membership_buy.html", context)


def _tell_sale_outcome(request: HttpRequest, payment: Payment, what: str) -> None:
    if payment.status == PaymentStatus.FAILED:
        messages.error(
            request, f"The card payment failed, so no {what} was bought: {payment.message}"
        )
    elif payment.status == PaymentStatus.SUCCEEDED:
        done = (
            "Pass bought and paid."
            if what == "pass"
            else ("Membership bought and paid: autopay charges your card each month.")
        )
        messages.success(request, done)
    else:
        messages.info(
            request, f"{what.capitalize()} ordered: the card payment's status is shown below."
        )
