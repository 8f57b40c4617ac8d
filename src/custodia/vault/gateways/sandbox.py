"""The sandbox gateway: a simulator that answers from documented test card numbers
(docs/payments.md, "Test cards"). No money moves and nothing leaves the vault.

Its state lives in the vault's database (SandboxOperation, through a connection of its own),
so `lookup` answers the same in every vault worker process. An idempotency key seen before
gets the first answer again (and is counted in `calls`, so tests can prove a charge was sent
once).
"""

from __future__ import annotations

import secrets
import time

from django.db import IntegrityError, transaction
from django.db.models import F

from custodia.vault.gateways.base import (
    CardDetails,
    GatewayError,
    GatewayResult,
    GatewayTimeout,
    Outcome,
)
from custodia.vault.models import SandboxOperation

# Test numbers and what they do (docs/payments.md). Any other valid card is approved.
DECLINE = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
EXPIRED_CARD = "4000000000000069"
INCORRECT_CVC = "4000000000000127"
TIMEOUT = "4000000000000119"
LATE_SUCCESS = "4000000000000317"

# Refused when the card is added (the zero-amount verification): (decline code, message).
VERIFY_DECLINES = {
    EXPIRED_CARD: ("expired_card", "The card has expired."),
    INCORRECT_CVC: ("incorrect_cvc", "The card's security code is incorrect."),
}
CHARGE_DECLINES = {
    DECLINE: ("card_declined", "The card was declined."),
    INSUFFICIENT_FUNDS: ("insufficient_funds", "The card has insufficient funds."),
}
# The sandbox writes through a connection of its own, committed at once, as an outside gateway
# would: what it did survives whatever becomes of the vault's own transaction.
DB = "gateway"
# How long a simulated timeout "waits": a few milliseconds, never a real timeout.
SIMULATED_WAIT_SECONDS = 0.005


def _reference(prefix: str) -> str:
    return f"sbx_{prefix}_{secrets.token_hex(8)}"


def _result(operation: SandboxOperation) -> GatewayResult:
    return GatewayResult(
        outcome=Outcome(operation.outcome),
        reference=operation.reference or None,
        decline_code=operation.decline_code or None,
        message=operation.message,
    )


class SandboxGateway:
    """The simulator (see the module docstring)."""

    name = "sandbox"

    def _repeat(self, idempotency_key: str) -> GatewayResult | None:
        """The first answer for a key seen before (its call counted), else None."""
        updated = (
            SandboxOperation.objects.using(DB)
            .filter(idempotency_key=idempotency_key)
            .update(calls=F("calls") + 1)
        )
        if not updated:
            return None
        return _result(SandboxOperation.objects.using(DB).get(idempotency_key=idempotency_key))

    def _record(self, idempotency_key: str, **fields: object) -> GatewayResult:
        try:
            with transaction.atomic(using=DB):
                operation = SandboxOperation.objects.using(DB).create(
                    idempotency_key=idempotency_key, **fields
                )
        except IntegrityError:
            # The same key at the same moment from another worker: its answer is the answer.
            repeated = self._repeat(idempotency_key)
            assert repeated is not None
            return repeated
        return _result(operation)

    def verify_card(self, card: CardDetails, *, idempotency_key: str) -> GatewayResult:
        """A zero-amount authorization: refused for the expired and wrong-code test cards."""
        repeated = self._repeat(idempotency_key)
        if repeated is not None:
            return repeated
        if not card.security_code:
            raise GatewayError("a card verification needs the security code")
        code, message = VERIFY_DECLINES.get(card.number, ("", "Card verified."))
        return self._record(
            idempotency_key,
            kind="verify",
            outcome=Outcome.DECLINED if code else Outcome.APPROVED,
            reference=_reference("auth"),
            decline_code=code,
            message=message,
        )

    def charge(
        self, card: CardDetails, *, amount: int, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """Approve, decline, time out (nothing recorded) or time out after charging."""
        repeated = self._repeat(idempotency_key)
        if repeated is not None:
            return repeated
        if amount <= 0:
            raise GatewayError("the amount must be positive")
        if card.number == TIMEOUT:
            time.sleep(SIMULATED_WAIT_SECONDS)
            raise GatewayTimeout("the sandbox gateway did not answer (test card: timeout)")
        code, message = CHARGE_DECLINES.get(card.number, ("", "Approved."))
        result = self._record(
            idempotency_key,
            kind="charge",
            outcome=Outcome.DECLINED if code else Outcome.APPROVED,
            reference=_reference("ch"),
            decline_code=code,
            message=message,
            amount=amount,
            currency=currency,
        )
        if card.number == LATE_SUCCESS:
            time.sleep(SIMULATED_WAIT_SECONDS)
            raise GatewayTimeout("the sandbox gateway did not answer (test card: late success)")
        return result

    def refund(
        self, *, charge_reference: str, amount: int, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """Give back part or all of an approved sandbox charge."""
        repeated = self._repeat(idempotency_key)
        if repeated is not None:
            return repeated
        charged = (
            SandboxOperation.objects.using(DB)
            .filter(kind="charge", reference=charge_reference, outcome=Outcome.APPROVED)
            .first()
        )
        if charged is None:
            raise GatewayError("no approved sandbox charge has this reference")
        if amount <= 0 or amount > charged.amount or currency != charged.currency:
            raise GatewayError("the refund's amount or currency does not fit the charge")
        return self._record(
            idempotency_key,
            kind="refund",
            outcome=Outcome.APPROVED,
            reference=_reference("re"),
            message="Refunded.",
            amount=amount,
            currency=currency,
        )

    def lookup(self, *, idempotency_key: str) -> GatewayResult | None:
        """What became of the operation sent with this key, or None if it never arrived."""
        operation = (
            SandboxOperation.objects.using(DB).filter(idempotency_key=idempotency_key).first()
        )
        return None if operation is None else _result(operation)
