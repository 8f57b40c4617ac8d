"""A client membership's page (the client's own in the portal, or an owner's or manager's):
its period, status, renewal invoice, and autopay: the saved card its renewals are charged to,
turned on with a consent checkbox and off, and the state of the renewal charge's attempts.

Thin doors onto payments/actions/autopay.py, which asks for the card window inside
`do_set_autopay` (StepUpRequired becomes the step-up page in web/middleware.py).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from custodia.core.actor import Actor
from custodia.core.permissions import Permission, Role
from custodia.payments import access
from custodia.payments.actions.autopay import (
    RETRY_AFTER,
    consent_text,
    do_set_autopay,
    do_stop_autopay,
)
from custodia.web.decorators import member_required


@require_safe
@member_required(Permission.PAYMENTS_PASS_READ)
def membership_detail(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """The membership, its autopay and its attempts; the cards to choose from for those who may
    charge cards."""
    membership = access.read_membership_by_id(actor, membership_id)
    may_charge = actor.can(Permission.PAYMENTS_CARD_CHARGE)
    cards = []
    if may_charge and membership.status != "cancelled":
        cards = [
            (card, consent_text(membership, card))
            for card in access.read_cards_of(actor, membership.client)
            if card.removed_at is None
        ]
    context = {
        "membership": membership,
        "own": actor.role == Role.CLIENT,
        "may_charge": may_charge,
        "may_stop": actor.role == Role.CLIENT or actor.can(Permission.PAYMENTS_PASS_WRITE),
        "cards": cards,
        "attempts_left": max(0, len(RETRY_AFTER) + 1 - membership.autopay_attempts),
    }
    return render(request, "payments/membership_detail.html", context)


@require_POST
@member_required(Permission.PAYMENTS_CARD_CHARGE)
def membership_autopay(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """Turn autopay on with a saved card of the membership's client and the consent ticked."""
    membership = access.read_membership_by_id(actor, membership_id)
    card = access.access_card_by_id(
        actor, request.POST.get("card", ""), permission=Permission.PAYMENTS_CARD_CHARGE
    )
    try:
        do_set_autopay(membership, card, actor=actor, consent=request.POST.get("consent") == "yes")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Autopay is on: renewals are charged to {card}.")
    return redirect("membership_detail", membership_id=membership.pk)


@require_POST
@member_required(Permission.PAYMENTS_PASS_READ)
def membership_autopay_off(request: HttpRequest, actor: Actor, membership_id: str) -> HttpResponse:
    """Stop charging the membership's renewals to a card."""
    membership = access.read_membership_by_id(actor, membership_id)
    do_stop_autopay(membership, actor=actor)
    messages.success(request, "Autopay is off: renewals wait for a payment.")
    return redirect("membership_detail", membership_id=membership.pk)
