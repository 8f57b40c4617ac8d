"""The Stripe adapter (gateways/base.py's `Gateway`) on the official `stripe` package.

Each adapter has a `StripeClient` of its own (never the package's global key), with the
package's network retries off: a call that gets no answer raises `GatewayTimeout` and the vault
resolves it with `lookup` before it sends again, always with the same idempotency key.

A charge is two requests: a PaymentMethod made from the card (its own idempotency key, derived
from ours, so a repeat gets the same PaymentMethod back) and a PaymentIntent confirmed at once
with Stripe's idempotency key = ours and ours in its metadata; a card check is the same with a
SetupIntent; a refund is a Refund of the PaymentIntent. `lookup` searches PaymentIntents by that
metadata, then the most recent SetupIntents and Refunds (docs/stripe-gateway.md says why).

Nothing Stripe writes is passed on verbatim: its error messages can echo input (a card number
among it), so results and `GatewayError`s carry messages of our own and machine codes checked to
be codes, and the `stripe` logger keeps only its request and response lines (its DEBUG lines hold
the request body, card number included).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import stripe
from stripe.params import PaymentMethodCreateParamsCard

from custodia.vault.gateways.base import (
    CardDetails,
    GatewayError,
    GatewayResult,
    GatewayTimeout,
    Outcome,
)

logger = logging.getLogger(__name__)

R = TypeVar("R")

# Our idempotency keys go into a search query and a metadata value: letters, digits and a few
# separators only, within Stripe's 255 characters once the PaymentMethod suffix is added.
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
PAYMENT_METHOD_KEY_SUFFIX = ":payment-method"
METADATA_KEY = "idempotency_key"
CURRENCY = re.compile(r"[A-Z]{3}")
PAYMENT_INTENT_ID = re.compile(r"pi_[A-Za-z0-9]{1,250}")
# What a Stripe code or id looks like; anything else is dropped rather than passed on.
STRIPE_CODE = re.compile(r"[a-z0-9_]{1,64}")
STRIPE_PARAM = re.compile(r"[a-z0-9_\[\]]{1,64}")
STRIPE_ID = re.compile(r"[a-z]{2,8}_[A-Za-z0-9_]{1,250}")
# Where lookup looks for SetupIntents and Refunds: the most recent ones (docs/stripe-gateway.md).
RECENT_LIMIT = 100

DECLINE_MESSAGES = {
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "incorrect_number": "The card number is incorrect.",
    "lost_card": "The card was declined.",
    "stolen_card": "The card was declined.",
    "processing_error": "The card could not be processed; try again.",
    "canceled": "The payment was canceled.",
}
DECLINED = "The card was declined."

PENDING_INTENT = {"processing", "requires_action", "requires_confirmation", "requires_capture"}
PENDING_REFUND = {"pending", "requires_action"}


class _StripeLogRedaction(logging.Filter):
    """Keeps the `stripe` logger's request and response lines (method, address, status) and
    drops the rest: its request bodies, response bodies and error messages can hold card data."""

    SAFE = (
        re.compile(r"message='Request to Stripe api' method=[a-z]+ url=\S+"),
        re.compile(r"message='Stripe API response' path=\S+ response_code=\d+"),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return any(pattern.fullmatch(text) for pattern in self.SAFE)


def _redact_stripe_logs() -> None:
    """Install the redaction on the `stripe` logger once per process."""
    stripe_logger = logging.getLogger("stripe")
    if not any(isinstance(f, _StripeLogRedaction) for f in stripe_logger.filters):
        stripe_logger.addFilter(_StripeLogRedaction())


def _refuse_console_logging() -> None:
    """The package prints its log lines, request bodies included, to stderr past any filter
    when `stripe.log` or STRIPE_LOG says so: refuse to run like that."""
    for source, value in (("stripe.log", stripe.log), ("STRIPE_LOG", os.environ.get("STRIPE_LOG"))):
        if value in ("debug", "info"):
            raise GatewayError(
                f"{source} is {value!r}: the stripe package would print request bodies (card "
                "numbers) to stderr; unset it"
            )


def _acceptable_base(address: str) -> bool:
    """HTTPS, or plain HTTP to this machine only (the tests' local Stripe)."""
    parts = urlsplit(address)
    if not parts.netloc or parts.username or parts.password:
        return False
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    )


def _code(value: object) -> str | None:
    """A Stripe machine code, or None when the value does not look like one."""
    return value if isinstance(value, str) and STRIPE_CODE.fullmatch(value) else None


def _reference(value: object) -> str | None:
    """A Stripe object id, or None when the value does not look like one."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and STRIPE_ID.fullmatch(value) else None


def _declined(code: str | None, reference: str | None) -> GatewayResult:
    return GatewayResult(
        Outcome.DECLINED,
        reference=reference,
        decline_code=code or "card_declined",
        message=DECLINE_MESSAGES.get(code or "", DECLINED),
    )


def _error_code(error: Mapping[str, Any] | None) -> str | None:
    """The decline reason of a Stripe error object: its `decline_code`, else its `code`."""
    if not error:
        return None
    return _code(error.get("decline_code")) or _code(error.get("code"))


def _intent_result(intent: Mapping[str, Any], error_field: str) -> GatewayResult:
    """A PaymentIntent's or SetupIntent's state as an outcome."""
    status = intent.get("status")
    reference = _reference(intent)
    if status == "succeeded":
        return GatewayResult(Outcome.APPROVED, reference=reference)
    if status in PENDING_INTENT:
        return GatewayResult(
            Outcome.PENDING, reference=reference, message="The payment awaits the card's bank."
        )
    if status == "canceled":
        return _declined("canceled", reference)
    return _declined(_error_code(intent.get(error_field)), reference)


def _refund_result(refund: Mapping[str, Any]) -> GatewayResult:
    status = refund.get("status")
    reference = _reference(refund)
    if status == "succeeded":
        return GatewayResult(Outcome.APPROVED, reference=reference)
    if status in PENDING_REFUND:
        return GatewayResult(Outcome.PENDING, reference=reference, message="The refund is pending.")
    reason = _code(refund.get("failure_reason")) or "refund_failed"
    return GatewayResult(
        Outcome.DECLINED, reference=reference, decline_code=reason, message="The refund failed."
    )


def _card_error_result(error: stripe.CardError) -> GatewayResult:
    """A declined card: Stripe's codes, the intent it left behind, a message of our own."""
    body = error.json_body if isinstance(error.json_body, dict) else {}
    found = body.get("error")
    details: Mapping[str, Any] = found if isinstance(found, dict) else {}
    reference = _reference(details.get("payment_intent")) or _reference(
        details.get("setup_intent")
    )
    return _declined(_error_code(details), reference)


def _check_key(idempotency_key: str) -> None:
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise GatewayError(
            "the idempotency key must be 1 to 200 letters, digits or the characters _ . : -"
        )


def _check_money(amount: int, currency: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise GatewayError("the amount must be a positive whole number of minor units")
    if not CURRENCY.fullmatch(currency):
        raise GatewayError("the currency must be an ISO 4217 code in upper case, such as USD")


class StripeGateway:
    """Charges, card checks and refunds through Stripe's API (docs/stripe-gateway.md)."""

    name = "stripe"

    def __init__(
        self, api_key: str, api_base: str | None = None, timeout_seconds: float = 10
    ) -> None:
        if not api_key:
            raise GatewayError("the Stripe API key is empty (CUSTODIA_STRIPE_API_KEY)")
        if api_base and not _acceptable_base(api_base):
            raise GatewayError(
                "the Stripe API base must be an https:// address (or http:// on this machine, "
                "for a local test server) (CUSTODIA_STRIPE_API_BASE)"
            )
        if timeout_seconds <= 0:
            raise GatewayError("the Stripe timeout must be a positive number of seconds")
        _refuse_console_logging()
        _redact_stripe_logs()
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    # --- the Gateway protocol ----------------------------------------------------------------

    def verify_card(self, card: CardDetails, *, idempotency_key: str) -> GatewayResult:
        """A SetupIntent confirmed at once: Stripe checks the card (and its code) with the bank
        without moving money."""
        _check_key(idempotency_key)

        def send() -> GatewayResult:
            method = self._payment_method(card, idempotency_key)
            intent = self._client.v1.setup_intents.create(
                params={
                    "payment_method": method,
                    "confirm": True,
                    "allowed_payment_method_types": ["card"],
                    "usage": "off_session",
                    "metadata": {METADATA_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
            return _intent_result(intent.to_dict(), "last_setup_error")

        return self._decided("verify_card", send)

    def charge(
        self, card: CardDetails, *, amount: int, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """A PaymentIntent confirmed (and so captured) at once."""
        _check_key(idempotency_key)
        _check_money(amount, currency)

        def send() -> GatewayResult:
            method = self._payment_method(card, idempotency_key)
            intent = self._client.v1.payment_intents.create(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "payment_method": method,
                    "allowed_payment_method_types": ["card"],
                    "confirm": True,
                    "metadata": {METADATA_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
            return _intent_result(intent.to_dict(), "last_payment_error")

        return self._decided("charge", send)

    def refund(
        self, *, charge_reference: str, amount: int, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """A Refund of `amount` of the PaymentIntent, after checking the charge's currency."""
        _check_key(idempotency_key)
        _check_money(amount, currency)
        if not PAYMENT_INTENT_ID.fullmatch(charge_reference):
            raise GatewayError("the charge reference is not a Stripe PaymentIntent id (pi_...)")

        def send() -> GatewayResult:
            intent = self._client.v1.payment_intents.retrieve(charge_reference)
            if intent.to_dict().get("currency") != currency.lower():
                raise GatewayError(
                    f"the charge {charge_reference} is not in {currency}: nothing was refunded"
                )
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": charge_reference,
                    "amount": amount,
                    "metadata": {METADATA_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
            return _refund_result(refund.to_dict())

        return self._decided("refund", send)

    def lookup(self, *, idempotency_key: str) -> GatewayResult | None:
        """The PaymentIntent, SetupIntent or Refund whose metadata holds the key, or None."""
        _check_key(idempotency_key)

        def send() -> GatewayResult | None:
            query = f"metadata['{METADATA_KEY}']:'{idempotency_key}'"
            found = self._client.v1.payment_intents.search(params={"query": query, "limit": 1})
            if found.data:
                return _intent_result(found.data[0].to_dict(), "last_payment_error")
            setups = self._client.v1.setup_intents.list(params={"limit": RECENT_LIMIT})
            for setup in (item.to_dict() for item in setups.data):
                if (setup.get("metadata") or {}).get(METADATA_KEY) == idempotency_key:
                    return _intent_result(setup, "last_setup_error")
            refunds = self._client.v1.refunds.list(params={"limit": RECENT_LIMIT})
            for refund in (item.to_dict() for item in refunds.data):
                if (refund.get("metadata") or {}).get(METADATA_KEY) == idempotency_key:
                    return _refund_result(refund)
            return None

        return self._send("lookup", send)

    # --- helpers ----------------------------------------------------------------------------

    def _payment_method(self, card: CardDetails, idempotency_key: str) -> str:
        """A PaymentMethod made from the card; a repeat with the same key gets the same one."""
        details: PaymentMethodCreateParamsCard = {
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
        }
        if card.security_code:
            details["cvc"] = card.security_code
        method = self._client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": details,
                "billing_details": {"name": card.holder_name},
            },
            options={"idempotency_key": idempotency_key + PAYMENT_METHOD_KEY_SUFFIX},
        )
        return str(method.id)

    def _decided(self, operation: str, send: Callable[[], GatewayResult]) -> GatewayResult:
        """Send a request that moves money or checks a card: a declined card is an outcome."""

        def attempt() -> GatewayResult:
            try:
                return send()
            except stripe.CardError as error:
                logger.info(
                    "stripe declined a card",
                    extra={"operation": operation, "stripe_request_id": error.request_id},
                )
                return _card_error_result(error)

        result = self._send(operation, attempt)
        logger.info(
            "stripe answered",
            extra={
                "operation": operation,
                "outcome": str(result.outcome),
                "reference": result.reference,
                "decline_code": result.decline_code,
            },
        )
        return result

    def _send(self, operation: str, send: Callable[[], R]) -> R:
        """Send, turning Stripe's errors into the gateway's: no answer is a `GatewayTimeout`,
        a refusal a `GatewayError`, each with a message of our own. They are raised outside
        the handler, so that they carry no Stripe exception (whose text may echo the card)."""
        failure: GatewayError
        try:
            return send()
        except stripe.APIConnectionError:
            logger.warning("no answer from stripe", extra={"operation": operation})
            failure = GatewayTimeout(
                f"Stripe did not answer the {operation} in time: resolve it with lookup"
            )
        except stripe.APIError as error:
            # A 5xx: Stripe may or may not have acted, as with no answer at all.
            logger.warning(
                "stripe failed",
                extra={"operation": operation, "stripe_request_id": error.request_id},
            )
            failure = GatewayTimeout(
                f"Stripe failed on the {operation} (HTTP {error.http_status}): resolve it with "
                "lookup"
            )
        except stripe.StripeError as error:
            logger.warning(
                "stripe refused a request",
                extra={
                    "operation": operation,
                    "stripe_error": type(error).__name__,
                    "stripe_request_id": error.request_id,
                },
            )
            failure = GatewayError(_refusal(operation, error))
        raise failure


def _refusal(operation: str, error: stripe.StripeError) -> str:
    """What went wrong, in our words: Stripe's own message may echo the request's values."""
    if isinstance(error, stripe.AuthenticationError):
        return f"Stripe refused the {operation}: the API key is not valid (CUSTODIA_STRIPE_API_KEY)"
    if isinstance(error, stripe.PermissionError):
        return f"Stripe refused the {operation}: the API key may not do this"
    if isinstance(error, stripe.RateLimitError):
        return f"Stripe refused the {operation}: too many requests, try again later"
    if isinstance(error, stripe.IdempotencyError):
        return (
            f"Stripe refused the {operation}: its idempotency key was used before for a "
            "different request"
        )
    details = getattr(error, "error", None)
    code = _code(getattr(details, "code", None)) or "no code"
    param = getattr(details, "param", None)
    named = isinstance(param, str) and STRIPE_PARAM.fullmatch(param)
    where = f", parameter {param}" if named else ""
    return f"Stripe refused the {operation} as invalid ({code}{where})"
