"""Autopay: a membership's renewals charged to a saved card its client consented to, declines
retried, the client and the business told.

- **Consent.** `do_set_autopay` records the card (a saved card of the membership's client), when
  and by whom (the membership id of the person) consent was given; the client in the portal, or
  an owner or a manager with the cards grant, each through the card window. `do_stop_autopay`
  turns it off (the client, or any manager: stopping charges moves no money). Removing the card
  turns it off too (cards.py: `stop_autopay_with`).
- **Charging.** The renewal notes its invoice on the membership with the next attempt due at
  once (renewals.py). `run_autopay` (the periodic task, hourly) takes each membership whose
  attempt is due, as the business's system actor of the `membership-autopay` task, and charges
  the invoice with `cards.do_autopay_charge`, the one card charge without the card window.
- **Retries.** Before the pending charge commits, the next attempt is put an hour ahead, so the
  task run again (or twice at once: the membership row is locked) charges once. The answer
  then sets it: approved, nothing more to do (the receipt is the charge's); declined, a new
  charge (a new idempotency key: a decline is final) 1, 3 and 7 days after the first, second
  and third decline, and after the fourth none until the next renewal (the membership stays
  past due; autopay stays on); no answer, the same payment is asked again an hour later under
  its own key, never charged twice. An invoice paid another way meanwhile ends the attempts.
- **Emails** (plain text, after commit): the client on each decline (card brand and last four,
  the vault's message, the next attempt, a link to the membership's page) and when the attempts
  are exhausted; the owners and the managers with the cards grant on each decline and the last.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from custodia.accounts import adapter as mail
from custodia.accounts.links import public_url
from custodia.clients.models import Client
from custodia.core.actor import Actor, acting_as, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.payments.actions.cards import (
    AUTOPAY_TASK,
    _require_card_work,
    do_autopay_charge,
    send_charge,
)
from custodia.payments.actions.passes import do_start_membership
from custodia.payments.models import (
    ClientMembership,
    Invoice,
    InvoiceStatus,
    MembershipPlan,
    MembershipStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentType,
)
from custodia.payments.money import format_money
from custodia.tenancy.actors import SystemActor, system_actor
from custodia.tenancy.models import Membership
from custodia.tenancy.zones import zone_for

# After the first, second and third declined charge of a renewal: the next one.
RETRY_AFTER = (dt.timedelta(days=1), dt.timedelta(days=3), dt.timedelta(days=7))
# A charge sent and not answered yet is asked about again (same key) this long after.
CONFIRM_AFTER = dt.timedelta(hours=1)
AUTOPAY_FIELDS = ["autopay_card", "autopay_consent_at", "autopay_consent_by"]
ATTEMPT_FIELDS = ["autopay_attempts", "autopay_next_at"]


def consent_text(membership: ClientMembership, card: PaymentMethod) -> str:
    """What the person agrees to, shown beside the checkbox."""
    return consent_for(card, membership.monthly_price_minor, membership.currency)


def consent_for(card: PaymentMethod, price_minor: int, currency: str) -> str:
    """The consent to a monthly charge of `price_minor` to `card` (a membership being bought)."""
    price = format_money(price_minor, currency)
    return f"Charge {card} {price} every month until I cancel."


# --- Consent -------------------------------------------------------------------------------------


def do_set_autopay(
    membership: ClientMembership, card: PaymentMethod, *, actor: Actor, consent: bool
) -> ClientMembership:
    """Charge the membership's renewals to `card` from now on, with the consent recorded; the
    client for their own membership, an owner or a granted manager (card window)."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_CHARGE, membership, card)
    if card.client_id != membership.client_id or card.removed_at is not None:
        raise ValidationError({"card": "Choose a saved card of this membership's client."})
    if not consent:
        raise ValidationError({"consent": "Tick the box to agree to the monthly charge."})
    with transaction.atomic():
        locked = ClientMembership.objects.select_for_update().get(
            tenant_id=actor.tenant_id, pk=membership.pk
        )
        if locked.status == MembershipStatus.CANCELLED:
            raise ValidationError("A cancelled membership is not renewed: nothing to charge.")
        locked.autopay_card = card
        locked.autopay_consent_at = timezone.now()
        locked.autopay_consent_by = actor.membership.pk
        locked.save(update_fields=AUTOPAY_FIELDS)
        record(
            AuditAction.MEMBERSHIP_AUTOPAY_ON,
            actor=actor,
            target=locked,
            subject_ids=[locked.client_id],
            detail={"card": str(card.pk), "amount_minor": locked.monthly_price_minor},
        )
    membership.refresh_from_db()
    return membership


def do_start_membership_with_autopay(
    client: Client,
    plan: MembershipPlan,
    card: PaymentMethod,
    *,
    actor: Actor,
    consent: bool,
) -> tuple[ClientMembership, Invoice]:
    """An owner or a granted manager starts a client's membership with its renewals charged to a
    saved card of the client, who agreed to it (the consent names the person recording it): the
    membership and its invoice (`do_start_membership`) and the autopay (`do_set_autopay`, in the
    card window), together or not at all. The first invoice stays open, as for any start."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_CHARGE, client, card)
    if card.client_id != client.pk or card.removed_at is not None:
        raise ValidationError({"autopay_card": "Choose a saved card of this client."})
    if not consent:
        raise ValidationError(
            {"consent": "Confirm that the client agreed to the monthly charge to this card."}
        )
    with transaction.atomic():
        membership, invoice = do_start_membership(client, plan, actor=actor)
        do_set_autopay(membership, card, actor=actor, consent=True)
    return membership, invoice


def do_stop_autopay(membership: ClientMembership, *, actor: Actor) -> ClientMembership:
    """Stop charging the membership's renewals to a card (no more attempts either): the client
    for their own, any owner or manager. No card window: it moves no money."""
    require_active(actor)
    ensure_in_business(actor, membership)
    if actor.role == Role.CLIENT:
        if membership.client_id != actor.membership.client_id:
            raise Http404("No such membership.")
    else:
        actor.require(Permission.PAYMENTS_PASS_WRITE)
    with transaction.atomic():
        locked = ClientMembership.objects.select_for_update().get(
            tenant_id=actor.tenant_id, pk=membership.pk
        )
        if locked.autopay_card_id is None:
            return locked
        card_id = locked.autopay_card_id
        locked.autopay_card = None
        locked.autopay_consent_at = locked.autopay_consent_by = None
        fields = list(AUTOPAY_FIELDS)
        if actor.role != Role.CLIENT:  # a client's context changes only the consent (0007)
            locked.autopay_next_at = None
            fields.append("autopay_next_at")
        locked.save(update_fields=fields)
        record(
            AuditAction.MEMBERSHIP_AUTOPAY_OFF,
            actor=actor,
            target=locked,
            subject_ids=[locked.client_id],
            detail={"card": str(card_id)},
        )
    membership.refresh_from_db()
    return membership


# --- The periodic task's work --------------------------------------------------------------------


def autopay_actor(business_id: uuid.UUID) -> SystemActor:
    """The business's system actor that charges autopay cards."""
    return system_actor(business_id, task=AUTOPAY_TASK)


def run_autopay(business_id: uuid.UUID, *, now: dt.datetime | None = None) -> int:
    """Start every autopay attempt due in the business (inside its task's transaction: the
    charges are sent once it commits); how many were started."""
    moment = now or timezone.now()
    actor = autopay_actor(business_id)
    started = 0
    with acting_as(actor):
        due = list(
            ClientMembership.objects.filter(
                tenant_id=business_id, autopay_next_at__lte=moment
            ).values_list("pk", flat=True)
        )
        for membership_id in due:
            started += _attempt(membership_id, actor=actor, now=moment)
    return started


def _attempt(membership_id: uuid.UUID, *, actor: SystemActor, now: dt.datetime) -> bool:
    """Charge (or ask again about) one membership's renewal invoice; False when nothing is due
    after all (its attempts are then ended)."""
    with transaction.atomic():
        locked = (
            ClientMembership.objects.select_for_update(of=("self",))
            .select_related("autopay_invoice")
            .get(tenant_id=actor.tenant_id, pk=membership_id)
        )
        if locked.autopay_next_at is None or locked.autopay_next_at > now:
            return False  # another run took it
        invoice = locked.autopay_invoice
        if (
            locked.autopay_card_id is None
            or invoice is None
            or invoice.status != InvoiceStatus.OPEN
            or locked.status != MembershipStatus.PAST_DUE
        ):
            locked.autopay_next_at = None
            locked.save(update_fields=["autopay_next_at"])
            return False
        pending = Payment.objects.filter(
            tenant_id=actor.tenant_id,
            invoice_id=invoice.pk,
            method=PaymentType.CARD,
            status=PaymentStatus.PENDING,
        ).first()
        locked.autopay_next_at = now + CONFIRM_AFTER
        locked.save(update_fields=["autopay_next_at"])
        if pending is not None:
            # Not answered yet: the same payment, its same key, asked again.
            payment = pending
            transaction.on_commit(lambda: send_charge(payment, actor=actor))
        else:
            try:
                payment = do_autopay_charge(invoice, locked, actor=actor)
            except ValidationError:
                locked.autopay_next_at = None  # refused (e.g. more due): a person decides
                locked.save(update_fields=["autopay_next_at"])
                return False
    # After the charge's own callback (registered first): the answer decides what comes next.
    transaction.on_commit(lambda: settle_attempt(payment, membership_id, now=now))
    return True


def settle_attempt(payment: Payment, membership_id: uuid.UUID, *, now: dt.datetime) -> None:
    """Write what a charge's answer means for the membership's attempts, and tell people."""
    if payment.status == PaymentStatus.PENDING:
        return  # asked again an hour on (already set)
    actor = autopay_actor(payment.tenant_id)
    with transaction.atomic(), acting_as(actor):
        locked = ClientMembership.objects.select_for_update(of=("self",)).get(
            tenant_id=payment.tenant_id, pk=membership_id
        )
        if payment.status == PaymentStatus.SUCCEEDED:
            locked.autopay_attempts, locked.autopay_next_at = 0, None
            locked.save(update_fields=ATTEMPT_FIELDS)
            return
        locked.autopay_attempts += 1
        final = locked.autopay_attempts > len(RETRY_AFTER)
        locked.autopay_next_at = None if final else now + RETRY_AFTER[locked.autopay_attempts - 1]
        locked.save(update_fields=ATTEMPT_FIELDS)
        _tell_of_decline(locked, payment, final=final)


# --- Emails --------------------------------------------------------------------------------------


def _tell_of_decline(membership: ClientMembership, payment: Payment, *, final: bool) -> None:
    """The client, and the owners and granted managers, are emailed about a declined renewal
    charge (brand and last four of the card, the vault's message; never more of the card)."""
    invoice = Invoice.objects.select_related("client", "tenant").get(
        tenant_id=payment.tenant_id, pk=payment.invoice_id
    )
    context = {
        "business": invoice.tenant.name,
        "membership": membership,
        "invoice": invoice,
        "card": payment.payment_method,
        "amount": format_money(payment.amount_minor, payment.currency),
        "reason": payment.message,
        "next_at": membership.autopay_next_at,
        "attempts": membership.autopay_attempts,
        "final": final,
        "link": public_url(reverse("membership_detail", kwargs={"membership_id": membership.pk})),
    }
    what = "could not be charged" if not final else "was not paid: no more attempts"
    zone = zone_for(invoice.tenant)  # a job's mail: times in the business's zone
    client_email = invoice.client.email
    if client_email:
        with timezone.override(zone):
            body = render_to_string("payments/email/autopay_declined.txt", context)
        subject = f"Your membership payment {what}"
        mail.send_after_commit(
            EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [client_email])
        )
    addresses = sorted(
        {
            address
            for address in Membership.objects.filter(tenant_id=payment.tenant_id, is_active=True)
            .filter(Q(role=Role.OWNER) | Q(role=Role.MANAGER, cards_granted=True))
            .values_list("user__email", flat=True)
            if address
        }
    )
    if addresses:
        with timezone.override(zone):
            body = render_to_string("payments/email/autopay_declined_business.txt", context)
        subject = f"Membership renewal {what}: invoice {invoice.number}"
        mail.send_after_commit(EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, addresses))
