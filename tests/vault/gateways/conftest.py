"""The fake Stripe API on a local port, and an adapter pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from custodia.vault.gateways.stripe import StripeGateway
from tests.vault.gateways.fake_stripe import API_KEY, FakeStripe

# Short enough for the timeout tests to be quick, long enough for a loaded CI machine.
TIMEOUT_SECONDS = 1.0


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def gateway(fake_stripe: FakeStripe) -> StripeGateway:
    return StripeGateway(API_KEY, api_base=fake_stripe.url, timeout_seconds=TIMEOUT_SECONDS)
