"""Cards: saving a client's card through the vault's hosted form, removing it, charging an open
invoice with it (and retrying a charge not confirmed), refunding a card payment.

Every action here calls `require_card_window(actor)` first (accounts/stepup.py: the password
again after 15 minutes without card work), and talks to the vault only through `vault()`.

A charge is two transactions around one vault call. The first writes the payment `pending` with
the idempotency key the vault will charge it under, and commits; only then is the vault asked
(`transaction.on_commit`: in a request, once the request's transaction committed). The answer is
written in a second transaction: approved -> `succeeded` (and the invoice settled), declined ->
`failed` with the vault's message, no answer or `unknown`/`pending` -> still `pending`, shown as
not confirmed; retrying sends the same key again, which the vault answers without charging twice.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone

from custodia.accounts import adapter as mail
from custodia.accounts.stepup import require_card_window
from custodia.clients.models import Client
from custodia.core.actor import Actor, acting_as, ensure_in_business, require_active
from custodia.core.audit import AuditAction, record
from custodia.core.permissions import Permission, Role
from custodia.payments.actions.invoices import do_void_invoice, settle_if_covered
from custodia.payments.actions.passes import do_cancel_membership, do_void_pass
from custodia.payments.events import announce_payment, announce_refund
from custodia.payments.models import (
    ClientMembership,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    MembershipStatus,
    PassStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentType,
    Refund,
    RefundStatus,
)
from custodia.payments.money import format_money
from custodia.payments.totals import refunded_of, totals_of
from custodia.payments.vault import vault
from custodia.tenancy.actors import SystemActor, system_actor
from custodia.tenancy.models import Membership
from custodia.vault.client import ChargeResult, HostedForm, VaultRefused, VaultUnavailable
from custodia.webhooks.models import EventType

logger = logging.getLogger(__name__)

VAULT_DOWN = "The card vault cannot be reached just now: nothing was charged or saved. Try again."
NOT_CONFIRMED = "Not confirmed yet: the card network did not answer. Retry to confirm."
ALREADY_ON_FILE = "This card is already on file."
UNCONFIRMED = "A card payment of this invoice is not confirmed yet: retry it instead."
MESSAGE_LENGTH = 200
# The system actor that writes the vault's answer to a charge (its audit rows' request id).
CHARGE_TASK = "card-charge"
# The system actor that makes a pass or membership a client buys in the portal, and undoes it
# when its charge is declined (portal.py).
SALE_TASK = "portal-pass-sale"
MEMBERSHIP_SALE_TASK = "portal-membership-sale"
# The reference of the card payment that pays for what a client buys in the portal.
PORTAL_SALE = "Bought in the portal"
AUTOPAY_OFF_FIELDS = ("autopay_card", "autopay_consent_at", "autopay_consent_by", "autopay_next_at")
# The system actor that charges memberships' renewals to their autopay cards (autopay.py).
AUTOPAY_TASK = "membership-autopay"


def _require_card_work(actor: Actor, permission: Permission, *records: object) -> None:
    """The actor, its permission, its business, the client's own records for a client, and
    the card window (StepUpRequired when it closed)."""
    require_active(actor)
    actor.require(permission)
    ensure_in_business(actor, *records)
    if actor.role == Role.CLIENT:
        for item in records:
            client_id = (
                getattr(item, "client_id", None) if not isinstance(item, Client) else item.pk
            )
            if client_id is not None and client_id != actor.membership.client_id:
                raise Http404("No such record.")  # another client's, as if it did not exist
    require_card_window(actor)


# --- Saving and removing cards -------------------------------------------------------------------


def do_start_card_form(client: Client, *, actor: Actor, return_url: str) -> HostedForm:
    """A one-time hosted card form of the vault for `client`, coming back to `return_url`."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_WRITE, client)
    try:
        return vault().create_form(actor.tenant_id, return_url)
    except VaultUnavailable:
        raise ValidationError(VAULT_DOWN) from None
    except VaultRefused as exc:
        logger.warning("the vault refused a card form (%s)", exc.status)
        raise ValidationError("The card form could not be opened. Try again.") from None


def do_add_card(client: Client, ref: str, *, actor: Actor) -> tuple[PaymentMethod, bool]:
    """Redeem the hosted form's one-time reference and save the card for `client`: the card and
    whether it is new (False: the same card was already on file for this client)."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_WRITE, client)
    try:
        info = vault().redeem_reference(actor.tenant_id, ref)
    except VaultUnavailable:
        raise ValidationError(VAULT_DOWN) from None
    except VaultRefused:
        raise ValidationError(
            "This card form was already used or has expired: add the card again."
        ) from None
    same = PaymentMethod.objects.filter(
        tenant_id=actor.tenant_id, fingerprint=info.fingerprint, removed_at__isnull=True
    ).first()
    if same is None:
        try:
            with transaction.atomic():
                card = PaymentMethod.objects.create(
                    tenant_id=actor.tenant_id,
                    client=client,
                    vault_token=info.token,
                    brand=info.brand,
                    last4=info.last4,
                    exp_month=info.exp_month,
                    exp_year=info.exp_year,
                    fingerprint=info.fingerprint,
                )
                record(
                    AuditAction.PAYMENT_METHOD_ADD,
                    actor=actor,
                    target=card,
                    subject_ids=[client.pk],
                    detail={"client": str(client.pk)},
                )
            return card, True
        except IntegrityError:
            same = None  # on file for a client this actor cannot see (another client's)
    # The vault made a second token for a card already on file: it is not kept.
    _delete_quietly(actor.tenant_id, info.token)
    if same is not None and same.client_id == client.pk:
        return same, False
    raise ValidationError(ALREADY_ON_FILE)


def _delete_quietly(business_id: uuid.UUID, token: str) -> None:
    try:
        vault().delete_card(business_id, token)
    except (VaultUnavailable, VaultRefused) as exc:
        logger.warning(
            "a duplicate card token was not deleted at the vault (%s)", type(exc).__name__
        )


def do_remove_card(card: PaymentMethod, *, actor: Actor) -> PaymentMethod:
    """The vault destroys the card's number, then the card is marked removed (its payments keep
    naming it)."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_WRITE, card)
    if card.removed_at is not None:
        return card
    try:
        vault().delete_card(actor.tenant_id, card.vault_token)
    except VaultUnavailable:
        raise ValidationError(VAULT_DOWN) from None
    except VaultRefused as exc:
        if exc.status not in (404, 410):  # already gone at the vault: remove it here too
            raise ValidationError("The vault refused to delete this card.") from None
    with transaction.atomic():
        card.removed_at = timezone.now()
        card.save(update_fields=["removed_at"])
        record(
            AuditAction.PAYMENT_METHOD_REMOVE,
            actor=actor,
            target=card,
            subject_ids=[card.client_id],
            detail={"client": str(card.client_id)},
        )
        stop_autopay_with(card, actor=actor)
    return card


def stop_autopay_with(card: PaymentMethod, *, actor: Actor) -> int:
    """Turn autopay off on every membership that charged `card`, a card being removed (inside
    the removal's transaction), audited `client_membership.autopay_off`; how many."""
    memberships = list(
        ClientMembership.objects.select_for_update().filter(
            tenant_id=card.tenant_id, autopay_card_id=card.pk
        )
    )
    for membership in memberships:
        _autopay_off(membership, actor=actor, reason="card removed")
    return len(memberships)


def _autopay_off(membership: ClientMembership, *, actor: Actor, reason: str) -> None:
    """Clear a locked membership's autopay card, consent and next attempt, audited."""
    card_id = membership.autopay_card_id
    if card_id is None:
        return
    membership.autopay_card = None
    membership.autopay_consent_at = membership.autopay_consent_by = None
    membership.autopay_next_at = None
    membership.save(
        update_fields=[
            "autopay_card",
            "autopay_consent_at",
            "autopay_consent_by",
            "autopay_next_at",
        ]
    )
    record(
        AuditAction.MEMBERSHIP_AUTOPAY_OFF,
        actor=actor,
        target=membership,
        subject_ids=[membership.client_id],
        detail={"card": str(card_id), "reason": reason},
    )


def forget_cards_of(client: Client, *, actor: Actor) -> int:
    """Delete every saved card of a client being erased, at the vault and here (inside the
    erasure, which checked its own permission and step-up); how many. ValidationError when
    the vault cannot be reached: the erasure waits for it rather than leave a card behind."""
    require_active(actor)
    ensure_in_business(actor, client)
    cards = list(
        PaymentMethod.objects.filter(
            tenant_id=actor.tenant_id, client_id=client.pk, removed_at__isnull=True
        )
    )
    for card in cards:
        try:
            vault().delete_card(actor.tenant_id, card.vault_token)
        except VaultUnavailable:
            raise ValidationError(
                "The card vault cannot be reached, and the client's saved cards go with their "
                "data: try again shortly."
            ) from None
        except VaultRefused:
            pass  # already gone at the vault
    now = timezone.now()
    for card in cards:
        card.removed_at = now
        card.save(update_fields=["removed_at"])
        record(
            AuditAction.PAYMENT_METHOD_REMOVE,
            actor=actor,
            target=card,
            subject_ids=[client.pk],
            detail={"client": str(client.pk), "reason": "client erased"},
        )
        stop_autopay_with(card, actor=actor)
    return len(cards)


def destroy_business_at_vault(business_id: uuid.UUID) -> None:
    """Crypto-shred a business's cards at the vault when it ever saved one (inside the deletion
    of its rows, as the actor deleting them); ValidationError when the vault cannot be reached."""
    if not PaymentMethod.objects.filter(tenant_id=business_id).exists():
        return
    try:
        vault().destroy_business(business_id)
    except VaultUnavailable:
        raise ValidationError(
            "The card vault cannot be reached, and the business's cards go with it: "
            "try again shortly."
        ) from None
    except VaultRefused as exc:
        if exc.status != 410:  # 410: destroyed already
            raise ValidationError(
                "The card vault refused to destroy the business's cards."
            ) from None
    logger.info("business destroyed at the card vault tenant=%s", business_id)


# --- Charging ------------------------------------------------------------------------------------


def do_charge_invoice(invoice: Invoice, method: PaymentMethod, *, actor: Actor) -> Payment:
    """Charge what is due on an open invoice to a saved card of its client.

    The payment is committed `pending` under a fresh idempotency key before the vault is asked;
    the answer settles it (see the module's docstring). Returns the payment (still pending when
    the caller's transaction has not committed yet)."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_CHARGE, invoice, method)
    return _start_charge(invoice, method, actor=actor)


def do_autopay_charge(invoice: Invoice, membership: ClientMembership, *, actor: Actor) -> Payment:
    """Charge a membership's renewal invoice to its autopay card, off session.

    The one card action without the card window: nobody is there to enter a password, so the
    client's recorded consent for exactly this card stands in for it, and everything else is
    narrowed instead. Only the system actor of the autopay task, only the membership's own
    renewal invoice of its current period (open, of the same client), only the card consent was
    given for (saved, of that client), never more than the membership's monthly price."""
    require_active(actor)
    if not isinstance(actor, SystemActor) or actor.task != AUTOPAY_TASK:
        raise PermissionDenied("Only the autopay task charges a card off session.")
    ensure_in_business(actor, invoice, membership)
    current = ClientMembership.objects.select_related("autopay_card").get(
        tenant_id=actor.tenant_id, pk=membership.pk
    )
    card = current.autopay_card
    if (
        card is None
        or current.autopay_consent_at is None
        or current.autopay_consent_by is None
        or card.removed_at is not None
        or card.client_id != current.client_id
    ):
        raise ValidationError("This membership has no autopay card consented to.")
    renewal = (
        current.autopay_invoice_id == invoice.pk
        and invoice.client_id == current.client_id
        and current.status == MembershipStatus.PAST_DUE
        and invoice.issued_at is not None
        and invoice.issued_at >= current.current_period_start
        and invoice.lines.filter(membership_id=current.pk, voided=False).exists()
    )
    if not renewal:
        raise ValidationError("Only the membership's own renewal invoice is charged by autopay.")
    payment = _start_charge(invoice, card, actor=actor, at_most=current.monthly_price_minor)
    record(
        AuditAction.MEMBERSHIP_AUTOPAY_CHARGE,
        actor=actor,
        target=current,
        detail={
            "invoice": str(invoice.pk),
            "payment": str(payment.pk),
            "card": str(card.pk),
            "amount_minor": payment.amount_minor,
        },
    )
    return payment


def _start_charge(
    invoice: Invoice,
    method: PaymentMethod,
    *,
    actor: Actor,
    at_most: int | None = None,
    reference: str = "",
) -> Payment:
    """The pending payment of a charge, committed, then sent (its callers checked who may)."""
    if method.client_id != invoice.client_id or method.removed_at is not None:
        raise ValidationError({"card": "Choose a saved card of this invoice's client."})
    with transaction.atomic():
        invoices = Invoice.objects.filter(tenant_id=actor.tenant_id, pk=invoice.pk)
        # Managers lock the invoice; a client may not (row-level security gives them no UPDATE
        # on invoices), and the unique pending card payment per invoice guards them instead.
        if actor.role != Role.CLIENT:
            invoices = invoices.select_for_update()
        locked = invoices.get()
        if locked.status != InvoiceStatus.OPEN:
            raise ValidationError("Only an open invoice can be paid.")
        unconfirmed = Payment.objects.filter(
            tenant_id=actor.tenant_id,
            invoice_id=locked.pk,
            method=PaymentType.CARD,
            status=PaymentStatus.PENDING,
        ).exists()
        if unconfirmed:
            raise ValidationError(UNCONFIRMED)
        due = totals_of(locked).due
        if due <= 0:
            raise ValidationError("Nothing is due on this invoice.")
        if at_most is not None and due > at_most:
            raise ValidationError("More is due than the membership's monthly price.")
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    tenant_id=actor.tenant_id,
                    invoice=locked,
                    amount_minor=due,
                    currency=locked.currency,
                    method=PaymentType.CARD,
                    status=PaymentStatus.PENDING,
                    payment_method=method,
                    idempotency_key=f"pay_{uuid.uuid4().hex}",
                    message=NOT_CONFIRMED,
                    reference=reference,
                    recorded_by_id=actor.membership.pk,
                )
        except IntegrityError:
            raise ValidationError(UNCONFIRMED) from None
        record(
            AuditAction.PAYMENT_CHARGE,
            actor=actor,
            target=locked,
            detail={"payment": str(payment.pk), "amount_minor": due, "status": "pending"},
        )
    transaction.on_commit(lambda: send_charge(payment, actor=actor))
    return payment


def do_retry_charge(payment: Payment, *, actor: Actor) -> Payment:
    """Ask the vault again about a card payment not confirmed, under the same idempotency key:
    the vault answers the first charge's outcome and never charges twice."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_CHARGE, payment.invoice)
    if not payment.is_card or payment.status != PaymentStatus.PENDING:
        raise ValidationError("Only a card payment not confirmed yet can be retried.")
    return send_charge(payment, actor=actor)


def send_charge(payment: Payment, *, actor: Actor) -> Payment:
    """The vault call of a pending card payment and the write of its answer (its own
    transaction; the payment's row is already committed)."""
    card = payment.payment_method
    assert card is not None and payment.idempotency_key  # a card payment (the constraint)
    result: ChargeResult | None
    try:
        result = vault().charge(
            payment.tenant_id,
            card.vault_token,
            amount=payment.amount_minor,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
        )
    except VaultUnavailable:
        result = None
    except VaultRefused as exc:
        result = ChargeResult(
            "", "declined", payment.amount_minor, payment.currency, 0, None, exc.message, None
        )
    # The vault's answer is the business's own bookkeeping, written by its system actor: a
    # client's context may only ever insert a pending payment (payments/0004).
    bookkeeper = system_actor(payment.tenant_id, task=CHARGE_TASK)
    with transaction.atomic(), acting_as(bookkeeper):
        locked = Payment.objects.select_for_update().get(tenant_id=payment.tenant_id, pk=payment.pk)
        if locked.status == PaymentStatus.PENDING and result is not None:
            _apply(locked, result, actor=bookkeeper)
    # Read inside the block: after it no context may be set (an on_commit callback's).
    for field in ("status", "message", "vault_charge_id"):
        setattr(payment, field, getattr(locked, field))
    return payment


def _apply(payment: Payment, result: ChargeResult, *, actor: Actor) -> None:
    """Write the vault's answer to a locked pending payment (unknown or pending: unchanged)."""
    if result.status == "approved":
        payment.status = PaymentStatus.SUCCEEDED
        payment.message = ""
    elif result.status == "declined":
        payment.status = PaymentStatus.FAILED
        payment.message = (result.message or "The card was declined.")[:MESSAGE_LENGTH]
    else:
        payment.message = NOT_CONFIRMED
    payment.vault_charge_id = result.charge_id or None
    payment.save(update_fields=["status", "message", "vault_charge_id"])
    invoice = Invoice.objects.select_for_update().get(
        tenant_id=payment.tenant_id, pk=payment.invoice_id
    )
    record(
        AuditAction.PAYMENT_CHARGE,
        actor=actor,
        target=invoice,
        detail={
            "payment": str(payment.pk),
            "amount_minor": payment.amount_minor,
            "status": str(payment.status),
            "vault_status": result.status,
        },
    )
    if payment.status == PaymentStatus.SUCCEEDED:
        announce_payment(EventType.PAYMENT_SUCCEEDED, payment, actor=actor)
        settle_if_covered(invoice, actor=actor)
        _send_receipt(invoice, payment)
    elif payment.status == PaymentStatus.FAILED:
        announce_payment(EventType.PAYMENT_FAILED, payment, actor=actor)
        _undo_portal_sale(payment, invoice)


def _send_receipt(invoice: Invoice, payment: Payment) -> None:
    """Email the client a receipt of a card payment (brand and last four only), once the
    payment's transaction commits."""
    email = invoice.client.email if invoice.client_id else ""
    if not email:
        return
    card = payment.payment_method
    body = render_to_string(
        "payments/email/receipt.txt",
        {
            "invoice": invoice,
            "amount": format_money(payment.amount_minor, payment.currency),
            "card": card,
            "business": invoice.tenant.name,
        },
    )
    subject = f"Receipt: invoice {invoice.number} paid by card"
    mail.send_after_commit(EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [email]))


# --- What a client buys in the portal ----------------------------------------------------------


def charge_portal_sale(invoice: Invoice, card: PaymentMethod, *, actor: Actor) -> Payment:
    """Charge the invoice of a pass or membership the client is buying in the portal (portal.py
    made it, as the business's system actor, and checked the card work): the payment is marked
    as the sale's, so a decline undoes the sale (`_undo_portal_sale`) and nothing else."""
    return _start_charge(invoice, card, actor=actor, reference=PORTAL_SALE)


def _undo_portal_sale(payment: Payment, invoice: Invoice) -> None:
    """A pass or membership a client bought in the portal goes with its declined charge, and its
    invoice with it: no pass or membership without the money. Whenever the decline comes: at
    once, or on a retry of a charge whose first answer was lost (it was kept meanwhile).

    Only the sale's own charge undoes it (a card payment of the invoice, recorded by its
    client, marked `PORTAL_SALE`): a pass or membership the business sold, a renewal invoice,
    or an invoice the client pays later in the portal keep their open invoice, to be paid
    another way."""
    if (
        invoice.status != InvoiceStatus.OPEN
        or payment.recorded_by_id is None
        or payment.reference != PORTAL_SALE
    ):
        return
    bought = Membership.objects.filter(
        tenant_id=payment.tenant_id,
        pk=payment.recorded_by_id,
        role=Role.CLIENT,
        client_id=invoice.client_id,
    ).exists()
    line = (
        InvoiceLine.objects.filter(tenant_id=payment.tenant_id, invoice_id=invoice.pk)
        .filter(Q(client_pass__isnull=False) | Q(membership__isnull=False))
        .select_related("client_pass", "membership")
        .first()
    )
    if not bought or line is None:
        return
    membership = line.membership
    if (
        membership is not None
        and InvoiceLine.objects.filter(
            tenant_id=payment.tenant_id, membership_id=membership.pk, created_at__lt=line.created_at
        ).exists()
    ):
        return  # not the membership's first month: a renewal is never undone
    task = SALE_TASK if membership is None else MEMBERSHIP_SALE_TASK
    seller = system_actor(payment.tenant_id, task=task)
    with acting_as(seller):
        if line.client_pass is not None and line.client_pass.status != PassStatus.VOID:
            do_void_pass(line.client_pass, actor=seller)
        if membership is not None:
            locked = ClientMembership.objects.select_for_update().get(
                tenant_id=payment.tenant_id, pk=membership.pk
            )
            _autopay_off(locked, actor=seller, reason="first charge declined")
            if locked.status != MembershipStatus.CANCELLED:
                do_cancel_membership(locked, actor=seller)
        do_void_invoice(invoice, actor=seller)


# --- Refunds -------------------------------------------------------------------------------------


def do_refund_payment(payment: Payment, amount_minor: int, *, actor: Actor) -> Refund:
    """Give back `amount_minor` of a succeeded card payment (never more than is left of it).
    The refund is committed `pending` under its idempotency key first, like a charge."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_REFUND, payment)
    if not payment.is_card or payment.status != PaymentStatus.SUCCEEDED:
        raise ValidationError("Only a card payment that went through can be refunded.")
    if not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationError({"amount_minor": "A refund is more than nothing."})
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(tenant_id=actor.tenant_id, pk=payment.pk)
        left = locked.amount_minor - refunded_of(locked, include_pending=True)
        if amount_minor > left:
            raise ValidationError(
                {"amount_minor": f"At most {format_money(left, locked.currency)} can be refunded."}
            )
        refund = Refund.objects.create(
            tenant_id=actor.tenant_id,
            payment=locked,
            amount_minor=amount_minor,
            currency=locked.currency,
            idempotency_key=f"ref_{uuid.uuid4().hex}",
        )
        record(
            AuditAction.PAYMENT_REFUND,
            actor=actor,
            target=locked.invoice,
            detail={
                "payment": str(locked.pk),
                "refund": str(refund.pk),
                "amount_minor": amount_minor,
                "status": "pending",
            },
        )
    transaction.on_commit(lambda: send_refund(refund, actor=actor))
    return refund


def do_retry_refund(refund: Refund, *, actor: Actor) -> Refund:
    """Ask the vault again about a refund not confirmed, under the same key."""
    _require_card_work(actor, Permission.PAYMENTS_CARD_REFUND, refund)
    if refund.status != RefundStatus.PENDING:
        raise ValidationError("Only a refund not confirmed yet can be retried.")
    return send_refund(refund, actor=actor)


def send_refund(refund: Refund, *, actor: Actor) -> Refund:
    """The vault call of a pending refund and the write of its answer."""
    payment = refund.payment
    status, message, refund_id = RefundStatus.PENDING, NOT_CONFIRMED, None
    try:
        result = vault().refund(
            payment.tenant_id,
            payment.vault_charge_id or "",
            amount=refund.amount_minor,
            idempotency_key=refund.idempotency_key,
        )
    except VaultUnavailable:
        result = None
    except VaultRefused as exc:
        status, message = RefundStatus.FAILED, exc.message[:MESSAGE_LENGTH]
        result = None
    if result is not None:
        refund_id = result.refund_id
        if result.status == "approved":
            status, message = RefundStatus.SUCCEEDED, ""
        elif result.status == "declined":
            status, message = RefundStatus.FAILED, (result.message or "Refused.")[:MESSAGE_LENGTH]
    with transaction.atomic(), acting_as(actor):
        locked = Refund.objects.select_for_update().get(tenant_id=refund.tenant_id, pk=refund.pk)
        if locked.status == RefundStatus.PENDING and status != RefundStatus.PENDING:
            locked.status, locked.message, locked.vault_refund_id = status, message, refund_id
            locked.save(update_fields=["status", "message", "vault_refund_id"])
            record(
                AuditAction.PAYMENT_REFUND,
                actor=actor,
                target=payment.invoice,
                detail={
                    "payment": str(payment.pk),
                    "refund": str(locked.pk),
                    "amount_minor": locked.amount_minor,
                    "status": str(status),
                },
            )
            if status == RefundStatus.SUCCEEDED:
                announce_refund(locked, payment, actor=actor)
    for field in ("status", "message", "vault_refund_id"):
        setattr(refund, field, getattr(locked, field))
    return refund
