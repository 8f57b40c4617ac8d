"""Charges and refunds: idempotent, raced safely, and never sent twice for money that moved.

A charge is one row per (business, Idempotency-Key), made under a unique constraint and held
with a row lock while the gateway is called, so two requests with the same key charge once: the
second waits and gets the first one's answer. The same key with another body is a 409.

When the gateway does not answer (GatewayTimeout) the charge is stored as `unknown` and
answered 202. A retry with the same key asks the gateway's `lookup` first: if the money moved
(late success) that is the answer; only if the gateway never received it is the charge sent
again, under the same gateway idempotency key. A `pending` charge (the gateway has not decided
yet) is asked about the same way when retried.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TypeVar

from django.db import IntegrityError, transaction

from custodia.vault import keys
from custodia.vault.access import card_by_token, charge_by_id, require_live_business
from custodia.vault.actions import new_id
from custodia.vault.errors import Conflict, Gone, Refusal
from custodia.vault.gateways.base import (
    CardDetails,
    GatewayError,
    GatewayResult,
    GatewayTimeout,
    Outcome,
)
from custodia.vault.gateways.incoming import VerifiedEvent
from custodia.vault.gateways.registry import gateway
from custodia.vault.idempotency import gateway_key
from custodia.vault.models import Charge, ChargeStatus, Refund

logger = logging.getLogger(__name__)
MAX_AMOUNT = 100_000_000  # a million in major units: beyond it, a typing mistake
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_KEY_LENGTH = 255
# Outcomes a retry with the same key asks the gateway about again (lookup first, never a
# second charge for money that moved).
UNSETTLED = {ChargeStatus.UNKNOWN, ChargeStatus.PENDING}
ClaimedRow = TypeVar("ClaimedRow", Charge, Refund)
NO_ANSWER = "The gateway did not answer: retry with the same Idempotency-Key to learn the outcome."


def check_idempotency_key(key: str) -> str:
    if not key:
        raise Refusal("An Idempotency-Key header is required.")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Refusal(f"The Idempotency-Key must be printable and at most {MAX_KEY_LENGTH} long.")
    return key


def check_amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise Refusal(
            f"amount must be a whole number of minor units (cents) from 1 to {MAX_AMOUNT}."
        )
    return amount


def _apply(row: Charge | Refund, result: GatewayResult) -> None:
    row.status = result.outcome.value
    row.decline_code = result.decline_code or ""
    row.message = result.message[:300]
    row.gateway_reference = result.reference or ""


def _claim(
    model: type[ClaimedRow], business_id: uuid.UUID, key: str, **fields: object
) -> tuple[ClaimedRow, bool]:
    """The locked row for (business, key): made now (True) or found (False)."""
    manager = model._default_manager
    rows = manager.select_for_update().filter(business_id=business_id, idempotency_key=key)
    row = rows.first()
    if row is not None:
        return row, False
    try:
        with transaction.atomic():
            return manager.create(business_id=business_id, idempotency_key=key, **fields), True
    except IntegrityError:
        # A racing request made it first (and has committed, or we would still be waiting).
        return rows.get(), False


def _card_details(charge: Charge) -> CardDetails:
    card = charge.card
    if card.deleted_at is not None or card.number_sealed is None or card.holder_sealed is None:
        raise Gone("This card was deleted.")
    try:
        number = keys.open_sealed(charge.business_id, "number", card.token, card.number_sealed)
        holder = keys.open_sealed(charge.business_id, "holder", card.token, card.holder_sealed)
    except keys.CardUnreadable:
        raise Gone("This card can no longer be read.") from None
    return CardDetails(
        number=number, exp_month=card.exp_month, exp_year=card.exp_year, holder_name=holder
    )


def do_charge(
    business_id: uuid.UUID,
    *,
    token: object,
    amount: object,
    currency: object,
    idempotency_key: str,
    digest: str,
) -> Charge:
    """Charge a card of the business once per idempotency key (see the module docstring)."""
    require_live_business(business_id)
    key = check_idempotency_key(idempotency_key)
    amount = check_amount(amount)
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        raise Refusal("currency must be an ISO 4217 code in capitals, such as EUR or USD.")
    if not isinstance(token, str):
        raise Refusal("token must be a card token.")
    with transaction.atomic():
        existing = Charge.objects.filter(business_id=business_id, idempotency_key=key).first()
        card = existing.card if existing is not None else card_by_token(business_id, token)
        charge, created = _claim(
            Charge,
            business_id,
            key,
            charge_id=new_id("ch"),
            request_digest=digest,
            gateway_key=gateway_key("ch", business_id, key),
            card=card,
            amount=amount,
            currency=currency,
            status=ChargeStatus.UNKNOWN,
        )
        if charge.request_digest != digest:
            raise Conflict(
                "This Idempotency-Key was used for a different request: use a new key for a new"
                " charge."
            )
        if not created and charge.status not in UNSETTLED:
            return charge  # the first answer, again
        sent_before = not created
        _send_charge(charge, sent_before=sent_before)
        charge.save(
            update_fields=["status", "decline_code", "message", "gateway_reference", "updated_at"]
        )
    logger.info("charge %s of business %s: %s", charge.charge_id, business_id, charge.status)
    return charge


def _send_charge(charge: Charge, *, sent_before: bool) -> None:
    """Ask the gateway (lookup first when it may have been sent before) and record the answer."""
    gw = gateway()
    key = charge.gateway_key
    if sent_before:
        known = gw.lookup(idempotency_key=key)
        if known is not None:
            _apply(charge, known)
            return
    details = _card_details(charge)
    try:
        result = gw.charge(
            details, amount=charge.amount, currency=charge.currency, idempotency_key=key
        )
    except GatewayTimeout:
        charge.status, charge.message = ChargeStatus.UNKNOWN, NO_ANSWER
        return
    except GatewayError as exc:
        raise Refusal(f"The gateway refused the charge: {exc}", status=502) from None
    _apply(charge, result)


def do_refund(
    business_id: uuid.UUID,
    charge_id: str,
    *,
    amount: object,
    idempotency_key: str,
    digest: str,
) -> Refund:
    """Give back part or all of an approved charge, never more than what is left of it."""
    require_live_business(business_id)
    key = check_idempotency_key(idempotency_key)
    amount = check_amount(amount)
    with transaction.atomic():
        charge = charge_by_id(business_id, charge_id, for_update=True)
        refund, created = _claim(
            Refund,
            business_id,
            key,
            refund_id=new_id("re"),
            request_digest=digest,
            charge=charge,
            amount=amount,
            status=ChargeStatus.UNKNOWN,
        )
        if refund.request_digest != digest:
            raise Conflict(
                "This Idempotency-Key was used for a different request: use a new key for a new"
                " refund."
            )
        if not created and refund.status not in UNSETTLED:
            return refund
        if created:
            if charge.status != ChargeStatus.APPROVED:
                raise Conflict("Only an approved charge can be refunded.")
            left = charge.amount - charge.refunded
            if amount > left:
                raise Conflict(
                    "The refund is more than what is left of the charge"
                    f" ({left} {charge.currency})."
                )
            # Held against the charge from now on, even while the outcome is unknown.
            charge.refunded += amount
        _send_refund(refund, charge, sent_before=not created)
        if refund.status == ChargeStatus.DECLINED:
            charge.refunded -= amount
        charge.save(update_fields=["refunded", "updated_at"])
        refund.save(update_fields=["status", "decline_code", "message", "gateway_reference"])
    logger.info("refund %s of charge %s: %s", refund.refund_id, charge.charge_id, refund.status)
    return refund


def _send_refund(refund: Refund, charge: Charge, *, sent_before: bool) -> None:
    gw = gateway()
    key = gateway_key("re", refund.business_id, refund.idempotency_key)
    if sent_before:
        known = gw.lookup(idempotency_key=key)
        if known is not None:
            _apply(refund, known)
            return
    try:
        result = gw.refund(
            charge_reference=charge.gateway_reference,
            amount=refund.amount,
            currency=charge.currency,
            idempotency_key=key,
        )
    except GatewayTimeout:
        refund.status, refund.message = ChargeStatus.UNKNOWN, NO_ANSWER
        return
    except GatewayError as exc:
        raise Refusal(f"The gateway refused the refund: {exc}", status=502) from None
    _apply(refund, result)


# Gateway events that settle a charge (docs/payments.md, "Gateway webhooks"); the others (a
# refund's, say) are acknowledged and change nothing.
CHARGE_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed"}
EVENT_MESSAGES = {
    Outcome.APPROVED: "Approved (the gateway's notification).",
    Outcome.DECLINED: "The card was declined (the gateway's notification).",
}


def do_apply_gateway_event(event: VerifiedEvent) -> Charge | None:
    """Settle the unknown or pending charge a verified gateway event is about (found by the key
    the gateway knows it by, else by its reference); a settled charge never changes. Runs in the
    caller's transaction, the one that recorded the event's id. The charge changed, or None."""
    if event.type not in CHARGE_EVENTS or event.outcome not in EVENT_MESSAGES:
        return None
    charges = Charge.objects.select_for_update()
    charge = None
    if event.idempotency_key:
        charge = charges.filter(gateway_key=event.idempotency_key).first()
    if charge is None and event.reference:
        charge = charges.filter(gateway_reference=event.reference).first()
    if charge is None or charge.status not in UNSETTLED:
        return None
    charge.status = event.outcome.value
    charge.decline_code = event.decline_code or ""
    charge.message = EVENT_MESSAGES[event.outcome]
    charge.gateway_reference = event.reference or charge.gateway_reference
    charge.save(
        update_fields=["status", "decline_code", "message", "gateway_reference", "updated_at"]
    )
    logger.info("charge %s settled by gateway event: %s", charge.charge_id, charge.status)
    return charge
