"""What a client buys in the portal with a saved card: a punch pass on sale, or a membership of
an offered plan with autopay for its renewals.

The client's context writes neither the pass or membership nor its invoice: the business's
system actor (`task-portal-pass-sale`, `task-portal-membership-sale`) makes them, and the
client's card is charged for the invoice through the usual charge (cards.py: committed pending,
then sent, in the card window), marked as the sale's. A declined charge undoes the sale in one
place, `cards._undo_portal_sale`, whenever the decline comes (at once or on a retry): the pass
is voided, or the membership cancelled with its autopay off, and the invoice voided. A charge
not confirmed keeps them until it is retried.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from custodia.clients.models import Client
from custodia.core.actor import Actor, acting_as, require_active
from custodia.core.permissions import Permission, Role
from custodia.payments.actions.autopay import do_set_autopay
from custodia.payments.actions.cards import (
    MEMBERSHIP_SALE_TASK,
    SALE_TASK,
    _require_card_work,
    charge_portal_sale,
)
from custodia.payments.actions.passes import do_sell_pass, do_start_membership
from custodia.payments.models import (
    ClientMembership,
    MembershipPlan,
    MembershipStatus,
    PassType,
    Payment,
    PaymentMethod,
)
from custodia.tenancy.actors import system_actor

ALREADY_A_MEMBER = "You already have this membership: it renews every month until cancelled."
CONSENT_NEEDED = (
    "A membership renews every month: tick the box to agree to the monthly charge to this card."
)


def _buyer(actor: Actor, what: object, card: PaymentMethod) -> Client:
    """The client buying `what` with `card`: a client in their portal, with the card permission,
    their own saved card, in the card window (StepUpRequired when it closed)."""
    require_active(actor)
    if actor.role != Role.CLIENT:
        raise PermissionDenied("Passes and memberships are bought by clients in their portal.")
    _require_card_work(actor, Permission.PAYMENTS_CARD_CHARGE, what, card)
    if card.removed_at is not None:
        raise ValidationError({"card": "Choose one of your saved cards."})
    return Client.objects.get(tenant_id=actor.tenant_id, pk=actor.membership.client_id)


def do_buy_pass(pass_type: PassType, card: PaymentMethod, *, actor: Actor) -> Payment:
    """A client buys a pass on sale with their own saved card: the business's system actor makes
    the pass and its invoice, the invoice is charged (committed pending, then sent), and a
    declined charge voids the pass and the invoice: no pass without the money."""
    client = _buyer(actor, pass_type, card)
    seller = system_actor(actor.tenant_id, task=SALE_TASK)
    with transaction.atomic():
        with acting_as(seller):
            _sold, invoice = do_sell_pass(client, pass_type, actor=seller)
        return charge_portal_sale(invoice, card, actor=actor)


def do_buy_membership(
    plan: MembershipPlan, card: PaymentMethod, *, actor: Actor, consent: bool
) -> Payment:
    """A client buys a membership of an offered plan with their own saved card, consenting to
    its renewals being charged to that card (autopay: required, since a membership bought here
    renews every month until cancelled). The business's system actor starts the membership and
    its first month's invoice, the client's consent is recorded (`do_set_autopay`, as the
    client), and the invoice is charged; a declined charge cancels the membership, turns its
    autopay off and voids the invoice. Refused while the client holds a membership of the same
    plan that is not cancelled, and for a plan with no price (nothing to charge)."""
    client = _buyer(actor, plan, card)
    if not consent:
        raise ValidationError({"consent": CONSENT_NEEDED})
    if not plan.is_active:
        raise ValidationError({"plan": "This plan is no longer offered."})
    if plan.monthly_price_minor <= 0:
        raise ValidationError({"plan": "This plan has no price: ask the business to start it."})
    seller = system_actor(actor.tenant_id, task=MEMBERSHIP_SALE_TASK)
    with transaction.atomic():
        with acting_as(seller):
            # The client's row locked: two purchases at once are taken one after the other,
            # and the second finds the first's membership.
            Client.objects.select_for_update().get(tenant_id=actor.tenant_id, pk=client.pk)
            held = ClientMembership.objects.filter(
                tenant_id=actor.tenant_id,
                client_id=client.pk,
                plan_id=plan.pk,
                status__in=[MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE],
            ).exists()
            if held:
                raise ValidationError({"plan": ALREADY_A_MEMBER})
            membership, invoice = do_start_membership(client, plan, actor=seller)
        do_set_autopay(membership, card, actor=actor, consent=True)
        return charge_portal_sale(invoice, card, actor=actor)
