"""Incoming gateway webhooks: each refusal attacked, and the replay store on a real PostgreSQL.

Signatures are made here with `hmac` as Stripe documents them (HMAC-SHA256 over
`timestamp.body`, `Stripe-Signature: t=...,v1=...`), independently of the stripe package the
verifier uses. Events are the recorded shapes (recorded/event.json and its objects).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from custodia import embedded
from custodia.vault.gateways.base import Outcome
from custodia.vault.gateways.incoming import (
    FORGET_OLD_EVENTS,
    SEEN_EVENTS_TABLE,
    RefusalReason,
    SqlSeenEvents,
    VerifiedEvent,
    WebhookRefused,
    verify_gateway_event,
)
from tests.vault.gateways.fake_stripe import recorded, stripe_id

SECRET = "whsec_custodiaTestSecret0000000000"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seen_database() -> Iterator[str]:
    """A scratch database on the test server with the vault's table, dropped afterwards."""
    admin = settings.ADMIN_DATABASE
    if settings.EMBEDDED_DATABASE:
        admin["HOST"] = str(embedded.start_embedded(settings.EMBEDDED_PGDATA))
    name = f"{settings.DATABASES['default']['TEST']['NAME']}_webhooks_{os.getpid()}"
    embedded.drop_database(admin, name)
    with embedded.admin_connection(admin, "postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with embedded.admin_connection(admin, name) as conn:
        conn.execute(SEEN_EVENTS_TABLE)
    yield name
    embedded.drop_database(admin, name)


@pytest.fixture
def connection(seen_database: str) -> Iterator[psycopg.Connection]:
    with embedded.admin_connection(settings.ADMIN_DATABASE, seen_database) as conn:
        conn.execute("TRUNCATE vault_gateway_event")
        yield conn


@pytest.fixture
def seen(connection: psycopg.Connection) -> SqlSeenEvents:
    return SqlSeenEvents(connection)


def signed(body: bytes, at: datetime, secret: str = SECRET) -> dict[str, str]:
    timestamp = int(at.timestamp())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}


def event(event_type: str, thing: dict[str, Any]) -> bytes:
    body = recorded("event")
    body.update(id=stripe_id("evt"), type=event_type, created=int(NOW.timestamp()))
    body["data"] = {"object": thing}
    return json.dumps(body).encode()


def succeeded_intent(key: str = "charge-1") -> dict[str, Any]:
    intent = recorded("payment_intent")
    intent.update(
        id="pi_3QdEmo0000000000000000",
        amount=2500,
        amount_received=2500,
        status="succeeded",
        last_payment_error=None,
        metadata={"idempotency_key": key},
    )
    return intent


def verify(body: bytes, headers: dict[str, str], seen: SqlSeenEvents, **kw: Any) -> VerifiedEvent:
    kw.setdefault("now", NOW)
    return verify_gateway_event("stripe", body, headers, SECRET, seen, **kw)


def refused(body: bytes, headers: dict[str, str], seen: SqlSeenEvents, **kw: Any) -> str:
    with pytest.raises(WebhookRefused) as refusal:
        verify(body, headers, seen, **kw)
    return refusal.value.reason


# --- accepted ----------------------------------------------------------------------------------


def test_a_valid_payment_succeeded_is_accepted(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent("charge-1"))

    verified = verify(body, signed(body, NOW), seen)

    assert verified == VerifiedEvent(
        gateway="stripe",
        event_id=json.loads(body)["id"],
        type="payment_intent.succeeded",
        idempotency_key="charge-1",
        outcome=Outcome.APPROVED,
        reference="pi_3QdEmo0000000000000000",
        amount=2500,
    )


def test_a_payment_failure_carries_the_decline_code(seen: SqlSeenEvents) -> None:
    intent = succeeded_intent("charge-2")
    intent.update(status="requires_payment_method", amount_received=0)
    intent["last_payment_error"] = recorded("error_card_declined")["error"] | {
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    }
    body = event("payment_intent.payment_failed", intent)

    verified = verify(body, signed(body, NOW), seen)

    assert verified.outcome is Outcome.DECLINED
    assert verified.decline_code == "insufficient_funds"
    assert verified.idempotency_key == "charge-2"


def test_a_refunded_charge_names_its_payment_intent(seen: SqlSeenEvents) -> None:
    charge = recorded("charge")
    charge.update(
        payment_intent="pi_3QdEmo0000000000000000",
        amount=2500,
        amount_refunded=700,
        refunded=False,
        metadata={"idempotency_key": "charge-1"},
    )
    body = event("charge.refunded", charge)

    verified = verify(body, signed(body, NOW), seen)

    assert (verified.outcome, verified.reference, verified.amount) == (
        Outcome.APPROVED,
        "pi_3QdEmo0000000000000000",
        700,
    )
    assert verified.idempotency_key == "charge-1"


def test_an_event_that_decides_nothing_is_accepted_without_an_outcome(
    seen: SqlSeenEvents,
) -> None:
    body = event("payment_method.attached", recorded("payment_method"))

    verified = verify(body, signed(body, NOW), seen)

    assert verified.type == "payment_method.attached"
    assert verified.outcome is None


def test_header_names_are_matched_whatever_their_case(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())
    (value,) = signed(body, NOW).values()

    assert verify(body, {"stripe-signature": value}, seen).outcome is Outcome.APPROVED


def test_the_clock_is_the_default_now(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())
    headers = signed(body, datetime.now(UTC))

    assert verify_gateway_event("stripe", body, headers, SECRET, seen).outcome is Outcome.APPROVED


# --- refused -----------------------------------------------------------------------------------


def test_a_missing_signature_is_refused(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    assert refused(body, {}, seen) == RefusalReason.MISSING_SIGNATURE
    assert refused(body, {"Stripe-Signature": ""}, seen) == RefusalReason.MISSING_SIGNATURE


def test_a_signature_with_another_secret_is_refused(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    headers = signed(body, NOW, secret="whsec_someoneElse")

    assert refused(body, headers, seen) == RefusalReason.BAD_SIGNATURE


def test_a_tampered_body_is_refused(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())
    headers = signed(body, NOW)
    tampered = body.replace(b'"amount": 2500', b'"amount": 9')
    assert tampered != body

    assert refused(tampered, headers, seen) == RefusalReason.BAD_SIGNATURE


def test_a_signature_moved_to_another_time_is_refused(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())
    (value,) = signed(body, NOW).values()
    later = int((NOW + timedelta(seconds=10)).timestamp())
    moved = value.replace(f"t={int(NOW.timestamp())}", f"t={later}")

    assert refused(body, {"Stripe-Signature": moved}, seen) == RefusalReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "header", ["v1=abc", "t=notanumber,v1=abc", "garbage", "t=1733313600,v0=abc"]
)
def test_a_malformed_signature_header_is_refused(seen: SqlSeenEvents, header: str) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    assert refused(body, {"Stripe-Signature": header}, seen) == RefusalReason.BAD_SIGNATURE


@pytest.mark.parametrize("offset", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_a_timestamp_outside_five_minutes_is_refused(
    seen: SqlSeenEvents, offset: timedelta
) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    assert refused(body, signed(body, NOW + offset), seen) == RefusalReason.OUTSIDE_TOLERANCE


@pytest.mark.parametrize("offset", [timedelta(seconds=-300), timedelta(seconds=300)])
def test_a_timestamp_within_five_minutes_is_accepted(
    seen: SqlSeenEvents, offset: timedelta
) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    assert verify(body, signed(body, NOW + offset), seen).outcome is Outcome.APPROVED


def test_a_replayed_event_id_is_refused(
    seen: SqlSeenEvents, connection: psycopg.Connection
) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())
    verify(body, signed(body, NOW), seen)

    # The same request again, and the same event re-signed later (a fresh signature).
    assert refused(body, signed(body, NOW), seen) == RefusalReason.REPLAYED
    later = NOW + timedelta(minutes=2)
    assert refused(body, signed(body, later), seen, now=later) == RefusalReason.REPLAYED
    rows = connection.execute("SELECT gateway, event_id, received_at FROM vault_gateway_event")
    assert rows.fetchall() == [("stripe", json.loads(body)["id"], NOW)]


def test_a_refused_event_is_not_remembered(seen: SqlSeenEvents) -> None:
    """An id is recorded only once every other check passed: a forged or stale copy of an
    event cannot burn its id before the real delivery arrives."""
    body = event("payment_intent.succeeded", succeeded_intent())
    refused(body, signed(body, NOW, secret="whsec_forger"), seen)
    refused(body, signed(body, NOW - timedelta(hours=1)), seen)

    assert verify(body, signed(body, NOW), seen).outcome is Outcome.APPROVED


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"object": "event", "type": "x", "data": {"object": {}}}).encode(),
        json.dumps({"object": "event", "id": "evt_1", "data": {"object": {}}}).encode(),
        json.dumps({"object": "charge", "id": "evt_1", "type": "x", "data": {}}).encode(),
        json.dumps({"object": "event", "id": "evt_1", "type": "x", "data": []}).encode(),
    ],
)
def test_a_malformed_body_is_refused(seen: SqlSeenEvents, body: bytes) -> None:
    assert refused(body, signed(body, NOW), seen) == RefusalReason.MALFORMED_BODY


def test_an_unknown_gateway_is_refused(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    with pytest.raises(WebhookRefused) as refusal:
        verify_gateway_event("paypal", body, signed(body, NOW), SECRET, seen, now=NOW)
    assert refusal.value.reason == RefusalReason.UNKNOWN_GATEWAY


def test_an_empty_secret_is_a_configuration_error(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())

    with pytest.raises(ValueError, match="secret is empty"):
        verify_gateway_event("stripe", body, signed(body, NOW), "", seen, now=NOW)


def test_a_naive_now_is_a_programming_error(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent())
    naive = NOW.replace(tzinfo=None)

    with pytest.raises(ValueError, match="aware"):
        verify_gateway_event("stripe", body, signed(body, NOW), SECRET, seen, now=naive)


def test_a_refusal_message_holds_nothing_of_the_request(seen: SqlSeenEvents) -> None:
    body = event("payment_intent.succeeded", succeeded_intent("secret-key-of-ours"))
    headers = signed(body, NOW, secret="whsec_forger")

    with pytest.raises(WebhookRefused) as refusal:
        verify(body, headers, seen)
    assert str(refusal.value) == "webhook refused: bad signature"
    assert refusal.value.__context__ is None and refusal.value.__cause__ is None


# --- the store ---------------------------------------------------------------------------------


def test_the_store_is_per_gateway_and_forgets_old_ids(
    seen: SqlSeenEvents, connection: psycopg.Connection
) -> None:
    assert seen.first_time("stripe", "evt_1", NOW)
    assert not seen.first_time("stripe", "evt_1", NOW + timedelta(days=1))
    assert seen.first_time("sandbox", "evt_1", NOW)

    connection.execute(FORGET_OLD_EVENTS, (NOW + timedelta(seconds=1),))
    assert seen.first_time("stripe", "evt_1", NOW + timedelta(days=31))


def test_the_store_joins_the_callers_transaction(seen_database: str) -> None:
    """An event whose handling failed (its transaction rolled back) is not remembered, so
    the gateway's retry of it is accepted."""
    with psycopg.connect(
        dbname=seen_database,
        user=settings.ADMIN_DATABASE["USER"] or None,
        password=settings.ADMIN_DATABASE["PASSWORD"] or None,
        host=settings.ADMIN_DATABASE["HOST"] or None,
        port=settings.ADMIN_DATABASE["PORT"] or None,
    ) as conn:
        store = SqlSeenEvents(conn)
        assert store.first_time("stripe", "evt_rolled_back", NOW)
        conn.rollback()
        assert store.first_time("stripe", "evt_rolled_back", NOW)
        conn.rollback()
