"""The one adapter every payment gateway implements, used only inside the vault process.

A gateway receives a card's details (the vault decrypts them for this one call) and answers with
an outcome that holds no card data: never a number, never a security code. Amounts are integers
in the currency's minor unit (cents); currencies are ISO 4217 codes in upper case.

Every call that moves money carries the caller's idempotency key; the gateway must treat a
repeated key as the same operation (charge once). A call that times out raises `GatewayTimeout`:
the outcome is then unknown, and `lookup(idempotency_key)` is how the vault finds out later
whether the money moved (late success) before it ever tries again with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    # The gateway accepted the request but has not decided yet (late success or failure follows,
    # by lookup or by the gateway's webhook).
    PENDING = "pending"


@dataclass(frozen=True)
class CardDetails:
    """A card as the vault hands it to a gateway for one call. `security_code` is present only
    for the authorization made when the card is added, and never stored anywhere."""

    number: str
    exp_month: int
    exp_year: int
    holder_name: str
    security_code: str | None = None

    def __repr__(self) -> str:  # never a number or a code in a traceback or a log line
        return f"CardDetails(last4={self.number[-4:]}, exp={self.exp_month:02d}/{self.exp_year})"


@dataclass(frozen=True)
class GatewayResult:
    outcome: Outcome
    # The gateway's reference for the charge or refund (safe to store and show to owners).
    reference: str | None = None
    # A short machine code for a decline ("card_declined", "insufficient_funds", "expired_card",
    # "incorrect_cvc", ...) and a message fit to show the business; neither holds card data.
    decline_code: str | None = None
    message: str = ""


class GatewayError(Exception):
    """The gateway refused the request itself (bad configuration, invalid request). The message
    names the problem and holds no card data."""


class GatewayTimeout(GatewayError):
    """No answer in time: the operation may or may not have happened. Resolve with `lookup`."""


class Gateway(Protocol):
    name: str

    def verify_card(self, card: CardDetails, *, idempotency_key: str) -> GatewayResult:
        """A zero-amount authorization when a card is added (the one use of the security code)."""
        ...

    def charge(
        self, card: CardDetails, *, amount: int, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """Authorize and capture `amount`."""
        ...

    def refund(
        self, *, charge_reference: str, amount: int, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """Give back `amount` (all or part) of an approved charge."""
        ...

    def lookup(self, *, idempotency_key: str) -> GatewayResult | None:
        """What became of the operation sent with `idempotency_key`, or None if the gateway never
        received it (then it is safe to send again with the same key)."""
        ...
