"""The vault with CUSTODIA_VAULT_GATEWAY=stripe, against the local fake Stripe API
(tests/vault/gateways/fake_stripe.py): the same flow as with the sandbox, through Stripe's
requests, one charge per idempotency key; and the replay table of incoming webhooks in the
vault's database."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from custodia.vault.gateways.incoming import SqlSeenEvents
from custodia.vault.idempotency import gateway_key
from tests.vault.gateways.fake_stripe import API_KEY, FakeStripe
from tests.vaults import LiveVault, connect_as, running_vault, vault_db_password

WEBHOOK_SECRET = "whsec_custodiaTestEndpointSecret0000"


def stripe_event(event_type: str, thing: dict[str, Any]) -> bytes:
    """A Stripe event as its webhooks send it."""
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": event_type,
            "created": int(dt.datetime.now(dt.UTC).timestamp()),
            "data": {"object": thing},
        }
    ).encode()


def post_event(
    vault: LiveVault,
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    age_seconds: int = 0,
    gateway: str = "stripe",
) -> tuple[int, dict[str, Any]]:
    """POST an event signed as Stripe signs (HMAC-SHA256 over "timestamp.body")."""
    timestamp = int(dt.datetime.now(dt.UTC).timestamp()) - age_seconds
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    answer = vault.http().request(
        "POST",
        f"{vault.url}/gateway-events/{gateway}/",
        body=body,
        headers={
            "Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}",
            "Content-Type": "application/json",
        },
    )
    return answer.status, json.loads(answer.data or b"{}")


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stripe_vault(
    tmp_path_factory: pytest.TempPathFactory,
    page_origins: tuple[str, str],
    stripe_api: FakeStripe,
) -> Iterator[LiveVault]:
    with running_vault(
        tmp_path_factory.mktemp("stripe-vault"),
        "stripe",
        *page_origins,
        CUSTODIA_VAULT_GATEWAY="stripe",
        CUSTODIA_STRIPE_API_KEY=API_KEY,
        CUSTODIA_STRIPE_API_BASE=stripe_api.url,
        CUSTODIA_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    ) as live:
        yield live


def test_a_card_is_added_charged_and_refunded_through_stripe(
    stripe_vault: LiveVault, stripe_api: FakeStripe
) -> None:
    business = uuid.uuid4()
    client = stripe_vault.client()
    card = stripe_vault.add_card(business, "4242424242424242", security_code="314")
    assert (card.brand, card.last4) == ("visa", "4242")
    assert len(stripe_api.posts("/v1/setup_intents")) == 1  # the card check, with its code
    charge = client.charge(business, card.token, amount=2500, currency="EUR", idempotency_key="s1")
    again = client.charge(business, card.token, amount=2500, currency="EUR", idempotency_key="s1")
    assert charge == again and charge.status == "approved"
    assert charge.gateway_reference and charge.gateway_reference.startswith("pi_")
    assert len(stripe_api.posts("/v1/payment_intents")) == 1  # one charge for one key
    refund = client.refund(business, charge.charge_id, amount=1000, idempotency_key="s1r")
    assert refund.status == "approved" and refund.gateway_reference
    assert client.get_charge(business, charge.charge_id).refunded == 1000
    # The security code went to Stripe once, for the card check; the charge's card had none.
    methods = stripe_api.posts("/v1/payment_methods")
    assert [method.params.get("card[cvc]") for method in methods] == ["314", None]


def test_a_stripe_decline_reaches_the_app(stripe_vault: LiveVault) -> None:
    business = uuid.uuid4()
    card = stripe_vault.add_card(business, "4000000000009995")
    charge = stripe_vault.client().charge(
        business, card.token, amount=100, currency="USD", idempotency_key="s2"
    )
    assert (charge.status, charge.decline_code) == ("declined", "insufficient_funds")


def test_a_card_stripe_refuses_is_not_added(stripe_vault: LiveVault) -> None:
    form = stripe_vault.client().create_form(uuid.uuid4(), f"{stripe_vault.app_origin}/done")
    answer = stripe_vault.submit_card(form.form_url, number="4000000000000127")
    assert answer.status == 400 and "security code is incorrect" in answer.data.decode()


def test_the_webhook_replay_table_is_the_vaults(vault: LiveVault) -> None:
    """incoming.SqlSeenEvents over the vault's own table, as the vault's role."""
    with connect_as("custodia_vault", vault_db_password(), vault.db_name) as conn:
        seen = SqlSeenEvents(conn)
        now = dt.datetime.now(dt.UTC)
        event = f"evt_{uuid.uuid4().hex}"
        assert seen.first_time("stripe", event, now) is True
        assert seen.first_time("stripe", event, now) is False
        assert seen.first_time("stripe", f"evt_{uuid.uuid4().hex}", now) is True


def test_a_charge_left_unknown_is_settled_by_stripe_s_webhook(stripe_vault: LiveVault) -> None:
    business = uuid.uuid4()
    client = stripe_vault.client()
    card = stripe_vault.add_card(business, "4242424242424242")
    charge = client.charge(business, card.token, amount=900, currency="EUR", idempotency_key="w1")
    # As if the answer had been lost: the vault knows nothing but that it asked.
    stripe_vault.sql(
        "UPDATE vault_charge SET status = 'unknown', gateway_reference = '' WHERE charge_id = %s",
        (charge.charge_id,),
    )
    body = stripe_event(
        "payment_intent.succeeded",
        {
            "id": charge.gateway_reference,
            "object": "payment_intent",
            "amount": 900,
            "metadata": {"idempotency_key": gateway_key("ch", business, "w1")},
        },
    )
    assert post_event(stripe_vault, body) == (200, {"received": True})
    settled = client.get_charge(business, charge.charge_id)
    assert (settled.status, settled.gateway_reference) == ("approved", charge.gateway_reference)
    # The same event again is acknowledged and changes nothing; a decline after approval
    # cannot undo a settled charge.
    assert post_event(stripe_vault, body) == (200, {"received": True, "replayed": True})
    failed = stripe_event(
        "payment_intent.payment_failed",
        {
            "id": charge.gateway_reference,
            "object": "payment_intent",
            "metadata": {"idempotency_key": gateway_key("ch", business, "w1")},
            "last_payment_error": {"code": "card_declined"},
        },
    )
    assert post_event(stripe_vault, failed)[0] == 200
    assert client.get_charge(business, charge.charge_id).status == "approved"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": "whsec_notTheEndpointSecret"}, "bad signature"),
        ({"age_seconds": 400}, "timestamp outside tolerance"),
    ],
)
def test_forged_or_stale_gateway_events_are_refused(
    stripe_vault: LiveVault, change: dict[str, Any], reason: str
) -> None:
    body = stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    status, answer = post_event(stripe_vault, body, **change)
    assert (status, answer) == (400, {"error": f"webhook refused: {reason}"})


def test_a_gateway_without_a_webhook_secret_has_no_endpoint(
    stripe_vault: LiveVault, vault: LiveVault
) -> None:
    body = stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    assert post_event(vault, body)[0] == 404  # the sandbox vault: no Stripe secret
    assert post_event(stripe_vault, body, gateway="acme")[0] == 404
