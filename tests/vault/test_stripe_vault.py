"""The vault with CUSTODIA_VAULT_GATEWAY=stripe, against the local fake Stripe API
(tests/vault/gateways/fake_stripe.py): the same flow as with the sandbox, through Stripe's
requests, one charge per idempotency key; and the replay table of incoming webhooks in the
vault's database."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from custodia.vault.gateways.incoming import SqlSeenEvents
from tests.vault.conftest import LiveVault, connect_as, running_vault, vault_db_password
from tests.vault.gateways.fake_stripe import API_KEY, FakeStripe


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
