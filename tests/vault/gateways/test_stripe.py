"""The Stripe adapter against the fake Stripe API over real HTTP (fake_stripe.py).

Each test attacks one promise of gateways/base.py: a repeated key charges once, a timeout leaves
a state that `lookup` resolves, a refusal names the problem and never a card number, security
code or API key, and nothing of the card reaches a log line, the stripe package's included.
"""

from __future__ import annotations

import logging
import re
import time
import traceback

import pytest
import stripe

from custodia.vault.gateways.base import CardDetails, GatewayError, GatewayTimeout, Outcome
from custodia.vault.gateways.stripe import StripeGateway
from tests.vault.gateways.conftest import TIMEOUT_SECONDS
from tests.vault.gateways.fake_stripe import API_KEY, AUTHENTICATION_REQUIRED, FakeStripe

APPROVED = "4242424242424242"
SECURITY_CODE = "737"


def card(number: str = APPROVED, security_code: str | None = SECURITY_CODE) -> CardDetails:
    return CardDetails(number, 12, 2034, "Ada Lovelace", security_code=security_code)


# --- charges -----------------------------------------------------------------------------------


def test_an_approved_charge_is_one_confirmed_payment_intent_under_our_key(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    result = gateway.charge(card(), amount=2500, currency="EUR", idempotency_key="charge-1")

    assert result.outcome is Outcome.APPROVED
    assert result.reference is not None and result.reference.startswith("pi_")
    (method,) = fake_stripe.posts("/v1/payment_methods")
    assert method.params["card[number]"] == APPROVED
    assert method.params["card[cvc]"] == SECURITY_CODE
    assert method.idempotency_key == "charge-1:payment-method"
    (intent,) = fake_stripe.posts("/v1/payment_intents")
    assert intent.idempotency_key == "charge-1"
    assert intent.headers["authorization"] == f"Bearer {API_KEY}"
    assert intent.params["amount"] == "2500"
    assert intent.params["currency"] == "eur"
    assert intent.params["confirm"] == "true"
    assert intent.params["metadata[idempotency_key]"] == "charge-1"
    assert "card[number]" not in intent.params
    stored = fake_stripe.state.payment_intents[result.reference]
    assert stored["status"] == "succeeded" and stored["amount_received"] == 2500


def test_a_card_without_a_security_code_sends_none(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    result = gateway.charge(
        card(security_code=None), amount=100, currency="USD", idempotency_key="no-code"
    )

    assert result.outcome is Outcome.APPROVED
    (method,) = fake_stripe.posts("/v1/payment_methods")
    assert "card[cvc]" not in method.params


@pytest.mark.parametrize(
    ("number", "decline_code", "message"),
    [
        ("4000000000000002", "generic_decline", "The card was declined."),
        ("4000000000009995", "insufficient_funds", "The card has insufficient funds."),
        ("4000000000000069", "expired_card", "The card has expired."),
        ("4000000000000127", "incorrect_cvc", "The card's security code is incorrect."),
    ],
)
def test_each_decline_is_an_outcome_with_stripes_code(
    gateway: StripeGateway, fake_stripe: FakeStripe, number: str, decline_code: str, message: str
) -> None:
    result = gateway.charge(card(number), amount=900, currency="USD", idempotency_key="declined")

    assert result.outcome is Outcome.DECLINED
    assert result.decline_code == decline_code
    assert result.message == message
    # The PaymentIntent the decline left behind, so the vault can refer to it.
    assert result.reference in fake_stripe.state.payment_intents


def test_a_number_stripe_finds_incorrect_is_declined_before_any_intent(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    result = gateway.charge(
        card("4242424242424241"), amount=900, currency="USD", idempotency_key="bad-number"
    )

    assert result.outcome is Outcome.DECLINED
    assert result.decline_code == "incorrect_number"
    assert result.reference is None
    assert fake_stripe.posts("/v1/payment_intents") == []


def test_a_charge_awaiting_authentication_is_pending(gateway: StripeGateway) -> None:
    result = gateway.charge(
        card(AUTHENTICATION_REQUIRED), amount=900, currency="USD", idempotency_key="3ds"
    )

    assert result.outcome is Outcome.PENDING
    assert result.reference is not None and result.reference.startswith("pi_")


def test_the_same_key_charges_once(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    first = gateway.charge(card(), amount=1200, currency="USD", idempotency_key="order-7")
    again = gateway.charge(card(), amount=1200, currency="USD", idempotency_key="order-7")
    other = gateway.charge(card(), amount=1200, currency="USD", idempotency_key="order-8")

    assert again == first
    assert other.reference != first.reference
    assert len(fake_stripe.state.payment_intents) == 2
    sent = [r.idempotency_key for r in fake_stripe.posts("/v1/payment_intents")]
    assert sent == ["order-7", "order-7", "order-8"]


def test_the_same_key_for_another_amount_is_refused(gateway: StripeGateway) -> None:
    gateway.charge(card(), amount=1200, currency="USD", idempotency_key="order-9")

    with pytest.raises(GatewayError, match="idempotency key was used before"):
        gateway.charge(card(), amount=1300, currency="USD", idempotency_key="order-9")


# --- timeouts and lookup -----------------------------------------------------------------------


def test_a_late_success_times_out_then_lookup_finds_it(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    fake_stripe.hang("/v1/payment_intents", TIMEOUT_SECONDS * 5, after_acting=True)

    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        gateway.charge(card(), amount=700, currency="USD", idempotency_key="late")
    assert time.monotonic() - started < TIMEOUT_SECONDS * 3

    found = gateway.lookup(idempotency_key="late")
    assert found is not None
    assert found.outcome is Outcome.APPROVED
    (intent,) = fake_stripe.state.payment_intents.values()
    assert found.reference == intent["id"]
    # Stripe's own retries are off: the one request that hung was the only one sent.
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1


def test_a_lost_request_times_out_lookup_finds_nothing_and_a_resend_charges_once(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    fake_stripe.hang("/v1/payment_intents", TIMEOUT_SECONDS * 5, after_acting=False)

    with pytest.raises(GatewayTimeout):
        gateway.charge(card(), amount=700, currency="USD", idempotency_key="lost")

    assert gateway.lookup(idempotency_key="lost") is None
    assert fake_stripe.state.payment_intents == {}
    result = gateway.charge(card(), amount=700, currency="USD", idempotency_key="lost")
    assert result.outcome is Outcome.APPROVED
    assert len(fake_stripe.state.payment_intents) == 1
    # The resend made the same PaymentMethod again (its own key), not a second one.
    assert len(fake_stripe.state.payment_methods) == 1


def test_lookup_finds_a_declined_charge(gateway: StripeGateway) -> None:
    gateway.charge(card("4000000000009995"), amount=700, currency="USD", idempotency_key="poor")

    found = gateway.lookup(idempotency_key="poor")

    assert found is not None
    assert (found.outcome, found.decline_code) == (Outcome.DECLINED, "insufficient_funds")


def test_lookup_finds_refunds_and_card_checks(gateway: StripeGateway) -> None:
    charged = gateway.charge(card(), amount=1000, currency="USD", idempotency_key="c-1")
    assert charged.reference is not None
    refunded = gateway.refund(
        charge_reference=charged.reference, amount=100, currency="USD", idempotency_key="r-1"
    )
    checked = gateway.verify_card(card(), idempotency_key="v-1")

    assert gateway.lookup(idempotency_key="r-1") == refunded
    assert gateway.lookup(idempotency_key="v-1") == checked
    assert gateway.lookup(idempotency_key="c-1") == charged


def test_a_stripe_server_error_is_an_unknown_outcome(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    """A 5xx may come after Stripe acted: like no answer, it is resolved by lookup."""
    fake_stripe.fail("/v1/payment_intents")

    with pytest.raises(GatewayTimeout, match="HTTP 500"):
        gateway.charge(card(), amount=700, currency="USD", idempotency_key="broken")

    assert len(fake_stripe.posts("/v1/payment_intents")) == 1
    assert gateway.lookup(idempotency_key="broken") is None


@pytest.mark.parametrize("path", ["/v1/refunds", "/v1/setup_intents"])
def test_a_late_refund_or_card_check_is_found_by_lookup(
    gateway: StripeGateway, fake_stripe: FakeStripe, path: str
) -> None:
    charged = gateway.charge(card(), amount=1000, currency="USD", idempotency_key="base")
    assert charged.reference is not None
    fake_stripe.hang(path, TIMEOUT_SECONDS * 5, after_acting=True)

    with pytest.raises(GatewayTimeout):
        if path == "/v1/refunds":
            gateway.refund(
                charge_reference=charged.reference,
                amount=400,
                currency="USD",
                idempotency_key="late-op",
            )
        else:
            gateway.verify_card(card(), idempotency_key="late-op")

    found = gateway.lookup(idempotency_key="late-op")
    assert found is not None and found.outcome is Outcome.APPROVED
    made = fake_stripe.state.refunds if path == "/v1/refunds" else fake_stripe.state.setup_intents
    assert list(made) == [found.reference]


def test_no_answer_at_all_is_a_timeout(fake_stripe: FakeStripe) -> None:
    fake_stripe.stop()
    gateway = StripeGateway(API_KEY, api_base=fake_stripe.url, timeout_seconds=TIMEOUT_SECONDS)

    with pytest.raises(GatewayTimeout):
        gateway.charge(card(), amount=700, currency="USD", idempotency_key="down")


# --- card checks -------------------------------------------------------------------------------


def test_a_card_check_is_a_confirmed_setup_intent(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    result = gateway.verify_card(card(), idempotency_key="check-1")

    assert result.outcome is Outcome.APPROVED
    assert result.reference is not None and result.reference.startswith("seti_")
    (setup,) = fake_stripe.posts("/v1/setup_intents")
    assert setup.idempotency_key == "check-1"
    assert setup.params["confirm"] == "true"
    assert fake_stripe.posts("/v1/payment_intents") == []


def test_a_card_check_with_a_wrong_security_code_is_declined(gateway: StripeGateway) -> None:
    result = gateway.verify_card(card("4000000000000127"), idempotency_key="check-2")

    assert result.outcome is Outcome.DECLINED
    assert result.decline_code == "incorrect_cvc"
    assert result.reference is not None and result.reference.startswith("seti_")


# --- refunds -----------------------------------------------------------------------------------


def test_partial_refunds_up_to_the_charge_then_refused(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    charged = gateway.charge(card(), amount=1000, currency="USD", idempotency_key="visit-1")
    assert charged.reference is not None

    part = gateway.refund(
        charge_reference=charged.reference, amount=300, currency="USD", idempotency_key="rf-1"
    )
    rest = gateway.refund(
        charge_reference=charged.reference, amount=700, currency="USD", idempotency_key="rf-2"
    )

    assert part.outcome is rest.outcome is Outcome.APPROVED
    assert part.reference is not None and part.reference.startswith("re_")
    assert part.reference != rest.reference
    amounts = sorted(r["amount"] for r in fake_stripe.state.refunds.values())
    assert amounts == [300, 700]
    (first, _second) = fake_stripe.posts("/v1/refunds")
    assert first.idempotency_key == "rf-1"
    assert first.params["payment_intent"] == charged.reference
    with pytest.raises(GatewayError, match="charge_already_refunded"):
        gateway.refund(
            charge_reference=charged.reference, amount=1, currency="USD", idempotency_key="rf-3"
        )


def test_a_full_refund_and_its_repeat_refund_once(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    charged = gateway.charge(card(), amount=1000, currency="USD", idempotency_key="visit-2")
    assert charged.reference is not None

    first = gateway.refund(
        charge_reference=charged.reference, amount=1000, currency="USD", idempotency_key="rf-4"
    )
    again = gateway.refund(
        charge_reference=charged.reference, amount=1000, currency="USD", idempotency_key="rf-4"
    )

    assert first.outcome is Outcome.APPROVED
    assert again == first
    assert len(fake_stripe.state.refunds) == 1


def test_a_refund_above_the_charge_is_refused(gateway: StripeGateway) -> None:
    charged = gateway.charge(card(), amount=1000, currency="USD", idempotency_key="visit-3")
    assert charged.reference is not None

    with pytest.raises(GatewayError, match=r"amount_too_large, parameter amount"):
        gateway.refund(
            charge_reference=charged.reference, amount=1001, currency="USD", idempotency_key="rf-5"
        )


def test_a_refund_in_another_currency_is_refused_before_anything_moves(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    charged = gateway.charge(card(), amount=1000, currency="USD", idempotency_key="visit-4")
    assert charged.reference is not None

    with pytest.raises(GatewayError, match="not in EUR"):
        gateway.refund(
            charge_reference=charged.reference, amount=10, currency="EUR", idempotency_key="rf-6"
        )
    assert fake_stripe.posts("/v1/refunds") == []


def test_a_refund_of_an_unknown_charge_is_refused(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    with pytest.raises(GatewayError, match="not a Stripe PaymentIntent"):
        gateway.refund(
            charge_reference="ch_123", amount=10, currency="USD", idempotency_key="rf-7"
        )
    with pytest.raises(GatewayError, match="resource_missing"):
        gateway.refund(
            charge_reference="pi_Missing", amount=10, currency="USD", idempotency_key="rf-8"
        )
    assert fake_stripe.posts("/v1/refunds") == []


# --- refusals ----------------------------------------------------------------------------------


def test_a_wrong_api_key_is_a_gateway_error_naming_neither_key(fake_stripe: FakeStripe) -> None:
    wrong = "sk_test_wrongWrongWrong1234"
    gateway = StripeGateway(wrong, api_base=fake_stripe.url, timeout_seconds=TIMEOUT_SECONDS)

    with pytest.raises(GatewayError) as refused:
        gateway.charge(card(), amount=100, currency="USD", idempotency_key="k")

    assert not isinstance(refused.value, GatewayTimeout)
    assert "API key is not valid" in str(refused.value)
    text = "".join(traceback.format_exception(refused.value))
    assert wrong not in text and "1234" not in text and API_KEY not in text
    assert fake_stripe.received[0].headers["authorization"] == f"Bearer {wrong}"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"idempotency_key": "it's"}, "idempotency key"),
        ({"idempotency_key": ""}, "idempotency key"),
        ({"amount": 0}, "positive whole number"),
        ({"amount": True}, "positive whole number"),
        ({"currency": "usd"}, "ISO 4217"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    gateway: StripeGateway, fake_stripe: FakeStripe, kwargs: dict[str, object], problem: str
) -> None:
    arguments: dict[str, object] = {"amount": 100, "currency": "USD", "idempotency_key": "ok"}
    arguments.update(kwargs)

    with pytest.raises(GatewayError, match=problem):
        gateway.charge(card(), **arguments)  # type: ignore[arg-type]
    assert fake_stripe.received == []


@pytest.mark.parametrize("setting", ["debug", "info"])
def test_the_package_printing_requests_to_stderr_is_refused(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setattr(stripe, "log", setting)

    with pytest.raises(GatewayError, match="stripe.log"):
        StripeGateway(API_KEY)


@pytest.mark.parametrize(
    "base",
    [
        "http://api.stripe.example",
        "ftp://127.0.0.1",
        "127.0.0.1:8000",
        "https://user:secret@api.stripe.example",
    ],
)
def test_an_api_base_other_than_https_or_this_machine_is_refused(base: str) -> None:
    with pytest.raises(GatewayError, match="CUSTODIA_STRIPE_API_BASE"):
        StripeGateway(API_KEY, api_base=base)


@pytest.mark.parametrize("base", ["https://stripe.internal.example:8443", "", None])
def test_an_https_api_base_or_none_is_accepted(base: str | None) -> None:
    """None or empty (an unset CUSTODIA_STRIPE_API_BASE) is Stripe's own address."""
    assert StripeGateway(API_KEY, api_base=base).name == "stripe"


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(GatewayError, match="CUSTODIA_STRIPE_API_KEY"):
        StripeGateway("")


# --- no card data anywhere ---------------------------------------------------------------------


def test_no_card_number_or_code_in_any_message_or_log_line(
    gateway: StripeGateway, fake_stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    """Every path, with a Stripe that echoes the card number in its error messages, logged at
    DEBUG everywhere (the stripe package logs request bodies at DEBUG)."""
    caplog.set_level(logging.DEBUG)
    fake_stripe.state.echo_card_number = True
    numbers = ["4000000000000002", "4000000000009995", "4000000000000069", "4000000000000127"]
    texts: list[str] = []

    for number in [APPROVED, *numbers, "4242424242424241"]:
        result = gateway.charge(card(number), amount=500, currency="USD", idempotency_key=number)
        texts.append(repr(result))
        texts.append(repr(gateway.verify_card(card(number), idempotency_key=f"v{number}")))
    fake_stripe.state.refuse_card_echoing_it = True
    with pytest.raises(GatewayError) as refused:
        gateway.charge(card(), amount=500, currency="USD", idempotency_key="echo")
    texts.append("".join(traceback.format_exception(refused.value)))
    fake_stripe.state.refuse_card_echoing_it = False
    fake_stripe.hang("/v1/payment_intents", TIMEOUT_SECONDS * 5, after_acting=True)
    with pytest.raises(GatewayTimeout) as timed_out:
        gateway.charge(card(), amount=500, currency="USD", idempotency_key="slow")
    texts.append("".join(traceback.format_exception(timed_out.value)))

    # Our exceptions carry no Stripe exception along (its text is what echoed the number).
    for failure in (refused.value, timed_out.value):
        assert failure.__context__ is None and failure.__cause__ is None
    stripe_lines = [r for r in caplog.records if r.name == "stripe"]
    assert stripe_lines, "the stripe package's logger was not captured"
    own = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
    for record in caplog.records:
        texts.append(record.getMessage())
        # What came in through `extra=` (the record's own fields are times and line numbers).
        texts.extend(f"{k}={v}" for k, v in vars(record).items() if k not in own)
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    text = "\n".join(texts)
    for number in [APPROVED, *numbers, "4242424242424241"]:
        assert number not in text
    # Stripe's ids and the fake's port are letters and digits: the code alone is a leak.
    assert re.search(rf"(?<![A-Za-z0-9]){SECURITY_CODE}(?![A-Za-z0-9])", text) is None


def test_the_fake_does_echo_the_card_number(fake_stripe: FakeStripe) -> None:
    """What the test above defends against is real: the raw answer holds the number."""
    fake_stripe.state.refuse_card_echoing_it = True
    client = stripe.StripeClient(API_KEY, base_addresses={"api": fake_stripe.url})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": APPROVED, "exp_month": 1, "exp_year": 2034}}
        )
    assert APPROVED in str(refused.value)
