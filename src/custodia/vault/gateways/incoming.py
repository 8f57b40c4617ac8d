"""Verification of the webhooks a payment gateway sends the vault.

`verify_gateway_event` checks an event's signature with the gateway's own package (Stripe:
HMAC-SHA256 over `timestamp.raw_body`, `Stripe-Signature: t=...,v1=...`), refuses a timestamp
more than five minutes away from now (in the past or the future), then refuses an event id seen
before, and answers a gateway-neutral `VerifiedEvent`. Any refusal is a `WebhookRefused` whose
reason says which check failed and whose message holds nothing of the request.

The ids seen are kept by a `SeenEvents` store: the vault backs it with its database
(`SqlSeenEvents` over the table `SEEN_EVENTS_TABLE`), inside the transaction that acts on the
event, so that an event whose handling failed is not remembered and the gateway's retry of it is
accepted (docs/stripe-gateway.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import stripe

from custodia.vault.gateways.base import Outcome

TOLERANCE_SECONDS = 300
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"


class RefusalReason(StrEnum):
    UNKNOWN_GATEWAY = "unknown gateway"
    MISSING_SIGNATURE = "missing signature"
    BAD_SIGNATURE = "bad signature"
    OUTSIDE_TOLERANCE = "timestamp outside tolerance"
    REPLAYED = "replayed id"
    MALFORMED_BODY = "malformed body"


class WebhookRefused(Exception):
    """An incoming webhook failed a check; `reason` says which."""

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__(f"webhook refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class VerifiedEvent:
    """A gateway's event whose signature, time and novelty were checked.

    `outcome` is None for an event type that decides nothing (the vault acknowledges it and does
    nothing more); `reference` is the gateway's reference of the charge the event is about (a
    Stripe PaymentIntent id, as `charge` answered); `amount` is the charge's amount, or the total
    refunded so far for a refund event."""

    gateway: str
    event_id: str
    type: str
    idempotency_key: str | None
    outcome: Outcome | None
    reference: str | None
    decline_code: str | None = None
    amount: int | None = None


class SeenEvents(Protocol):
    def first_time(self, gateway: str, event_id: str, received_at: datetime) -> bool:
        """Record the event id; True the first time it is seen, False ever after."""
        ...


# The table the vault keeps the ids in (its migration creates it; the tests run this very
# statement) and the one statement that records an id and says whether it is new.
SEEN_EVENTS_TABLE = """
CREATE TABLE vault_gateway_event (
    gateway text NOT NULL,
    event_id text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (gateway, event_id)
)
"""
FIRST_TIME = """
INSERT INTO vault_gateway_event (gateway, event_id, received_at) VALUES (%s, %s, %s)
ON CONFLICT (gateway, event_id) DO NOTHING
RETURNING 1
"""
# What the vault's maintenance removes: ids older than any retry the gateway still sends
# (Stripe retries a delivery for up to three days).
FORGET_OLD_EVENTS = "DELETE FROM vault_gateway_event WHERE received_at < %s"


class _Connection(Protocol):
    def cursor(self) -> Any: ...


class SqlSeenEvents:
    """`SeenEvents` over `vault_gateway_event`, through any DB-API connection with `%s`
    parameters (psycopg's, or Django's `connection`): the insert joins the caller's transaction."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection

    def first_time(self, gateway: str, event_id: str, received_at: datetime) -> bool:
        """Insert the id; a conflict (seen before) inserts nothing and returns no row."""
        with self.connection.cursor() as cursor:
            cursor.execute(FIRST_TIME, (gateway, event_id, received_at))
            return cursor.fetchone() is not None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (a plain dict's keys keep the sender's)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _signed_at(header: str) -> int:
    """The `t=` of a signature header that the stripe package has already verified."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise WebhookRefused(RefusalReason.BAD_SIGNATURE)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _stripe_event(event_id: str, event: Mapping[str, Any]) -> VerifiedEvent:
    """A Stripe event as a gateway-neutral one."""
    event_type = event.get("type")
    data = event.get("data")
    thing = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_type, str) or not isinstance(thing, Mapping):
        raise WebhookRefused(RefusalReason.MALFORMED_BODY)
    metadata = thing.get("metadata")
    key = _text(metadata.get("idempotency_key")) if isinstance(metadata, Mapping) else None
    outcome: Outcome | None = None
    reference: str | None = None
    decline_code: str | None = None
    amount: int | None = None
    if event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        reference = _text(thing.get("id"))
        amount = thing.get("amount") if isinstance(thing.get("amount"), int) else None
        if event_type == "payment_intent.succeeded":
            outcome = Outcome.APPROVED
        else:
            outcome = Outcome.DECLINED
            error = thing.get("last_payment_error")
            if isinstance(error, Mapping):
                decline_code = _text(error.get("decline_code")) or _text(error.get("code"))
            decline_code = decline_code or "card_declined"
    elif event_type == "charge.refunded":
        # The charge's metadata is its PaymentIntent's (ours: the charge's idempotency key);
        # the reference is that PaymentIntent, as `charge` answered it.
        reference = _text(thing.get("payment_intent"))
        refunded = thing.get("amount_refunded")
        amount = refunded if isinstance(refunded, int) else None
        outcome = Outcome.APPROVED
    return VerifiedEvent(
        gateway="stripe",
        event_id=event_id,
        type=event_type,
        idempotency_key=key,
        outcome=outcome,
        reference=reference,
        decline_code=decline_code,
        amount=amount,
    )


def _signature_holds(payload: str, header: str, secret: str) -> bool:
    """Whether the header signs the payload with the secret (the stripe package's check)."""
    try:
        # The signature only: the package checks the past alone and against the clock; the
        # time is checked by the caller, both ways, against its `now`.
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        return False
    return True


def _text_of(raw_body: bytes) -> str | None:
    """The body as text, or None when it is not UTF-8 (never a gateway's event)."""
    try:
        return raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _json(payload: str) -> object:
    """The body's JSON, or None when it is not JSON."""
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _verify_stripe(
    raw_body: bytes, headers: Mapping[str, str], secret: str, now: datetime
) -> VerifiedEvent:
    """Check a Stripe webhook's signature and time, and read its event. Refusals are raised
    outside any handler, so that they carry nothing of the request along."""
    header = _header(headers, STRIPE_SIGNATURE_HEADER)
    if not header:
        raise WebhookRefused(RefusalReason.MISSING_SIGNATURE)
    payload = _text_of(raw_body)
    if payload is None:
        raise WebhookRefused(RefusalReason.MALFORMED_BODY)
    if not _signature_holds(payload, header, secret):
        raise WebhookRefused(RefusalReason.BAD_SIGNATURE)
    if abs(now.timestamp() - _signed_at(header)) > TOLERANCE_SECONDS:
        raise WebhookRefused(RefusalReason.OUTSIDE_TOLERANCE)
    event = _json(payload)
    if not isinstance(event, dict) or event.get("object") != "event":
        raise WebhookRefused(RefusalReason.MALFORMED_BODY)
    event_id = _text(event.get("id"))
    if event_id is None or not event_id.startswith("evt_"):
        raise WebhookRefused(RefusalReason.MALFORMED_BODY)
    return _stripe_event(event_id, event)


Verifier = Callable[[bytes, Mapping[str, str], str, datetime], VerifiedEvent]
GATEWAYS: dict[str, Verifier] = {"stripe": _verify_stripe}


def verify_gateway_event(
    gateway_name: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    secret: str,
    seen: SeenEvents,
    now: datetime | None = None,
) -> VerifiedEvent:
    """The verified event, or `WebhookRefused` naming the check it failed. `now` (aware; the
    clock by default) is what the signature's time is checked against and the id recorded
    with, once every other check has passed."""
    if not secret:
        raise ValueError(f"the {gateway_name} webhook secret is empty")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if gateway_name not in GATEWAYS:
        raise WebhookRefused(RefusalReason.UNKNOWN_GATEWAY)
    received_at = now or datetime.now(UTC)
    verified = GATEWAYS[gateway_name](raw_body, headers, secret, received_at)
    if not seen.first_time(gateway_name, verified.event_id, received_at):
        raise WebhookRefused(RefusalReason.REPLAYED)
    return verified
