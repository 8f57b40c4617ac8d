"""Charges and refunds: outcomes, idempotency under a race, timeouts that never charge twice,
late success, partial and full refunds, and another business's charge a 404."""

from __future__ import annotations

import threading
import uuid

import pytest

from custodia.vault.client import ChargeResult, VaultRefused
from custodia.vault.idempotency import gateway_key
from tests.vaults import LiveVault

VISA = "4242424242424242"
DECLINE = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
TIMEOUT = "4000000000000119"
LATE_SUCCESS = "4000000000000317"


def charges_sent(vault: LiveVault, business: uuid.UUID, key: str) -> int:
    """How many times the sandbox was asked to charge for this request (repeats included)."""
    rows = vault.sql(
        "SELECT calls FROM vault_sandboxoperation WHERE idempotency_key = %s",
        (gateway_key("ch", business, key),),
    )
    return int(rows[0][0]) if rows else 0


def test_an_approved_charge(vault: LiveVault, business: uuid.UUID) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    charge = client.charge(business, card.token, amount=2500, currency="EUR", idempotency_key="a1")
    assert (charge.status, charge.amount, charge.currency, charge.decline_code) == (
        "approved", 2500, "EUR", None,
    )  # fmt: skip
    assert charge.gateway_reference and charge.gateway_reference.startswith("sbx_ch_")
    assert client.get_charge(business, charge.charge_id) == charge


@pytest.mark.parametrize(
    ("number", "code"), [(DECLINE, "card_declined"), (INSUFFICIENT_FUNDS, "insufficient_funds")]
)
def test_declines_say_why(vault: LiveVault, business: uuid.UUID, number: str, code: str) -> None:
    card = vault.add_card(business, number)
    charge = vault.client().charge(
        business, card.token, amount=100, currency="USD", idempotency_key="d"
    )
    assert (charge.status, charge.decline_code) == ("declined", code) and charge.message


def test_same_key_same_body_is_the_same_charge_and_another_body_a_409(
    vault: LiveVault, business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    first = client.charge(business, card.token, amount=700, currency="EUR", idempotency_key="k")
    again = client.charge(business, card.token, amount=700, currency="EUR", idempotency_key="k")
    assert again == first
    with pytest.raises(VaultRefused) as refused:
        client.charge(business, card.token, amount=701, currency="EUR", idempotency_key="k")
    assert refused.value.status == 409 and "different request" in refused.value.message
    assert charges_sent(vault, business, "k") == 1


def test_two_racing_requests_with_one_key_charge_once(
    vault: LiveVault, business: uuid.UUID
) -> None:
    card = vault.add_card(business, VISA)
    results: list[ChargeResult] = []
    start = threading.Barrier(4)

    def pay() -> None:
        client = vault.client()
        start.wait()
        results.append(
            client.charge(business, card.token, amount=1234, currency="EUR", idempotency_key="race")
        )

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len({result.charge_id for result in results}) == 1
    assert {result.status for result in results} == {"approved"}
    assert charges_sent(vault, business, "race") == 1


def test_a_timeout_is_unknown_and_a_retry_never_charges_twice(
    vault: LiveVault, business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(business, TIMEOUT)
    first = client.charge(business, card.token, amount=900, currency="EUR", idempotency_key="t")
    assert first.status == "unknown" and "retry with the same Idempotency-Key" in first.message
    # The gateway never received it (lookup says so): the retry sends it again, under the same
    # gateway key; it times out again, and still no money has moved.
    again = client.charge(business, card.token, amount=900, currency="EUR", idempotency_key="t")
    assert (again.charge_id, again.status) == (first.charge_id, "unknown")
    assert charges_sent(vault, business, "t") == 0
    assert vault.sql(
        "SELECT count(*) FROM vault_charge WHERE business_id = %s AND idempotency_key = 't'",
        (business,),
    ) == [(1,)]


def test_late_success_is_resolved_by_lookup_without_a_second_charge(
    vault: LiveVault, business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(business, LATE_SUCCESS)
    first = client.charge(business, card.token, amount=4200, currency="GBP", idempotency_key="late")
    assert first.status == "unknown"
    assert client.get_charge(business, first.charge_id).status == "unknown"
    resolved = client.charge(
        business, card.token, amount=4200, currency="GBP", idempotency_key="late"
    )
    assert (resolved.charge_id, resolved.status) == (first.charge_id, "approved")
    assert resolved.gateway_reference
    assert charges_sent(vault, business, "late") == 1  # the first call only: lookup is no charge
    assert (
        client.charge(business, card.token, amount=4200, currency="GBP", idempotency_key="late")
        == resolved
    )
    assert charges_sent(vault, business, "late") == 1


def test_partial_and_full_refunds_and_never_more(vault: LiveVault, business: uuid.UUID) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    charge = client.charge(business, card.token, amount=1000, currency="EUR", idempotency_key="r")
    part = client.refund(business, charge.charge_id, amount=300, idempotency_key="r1")
    assert (part.status, part.amount, part.charge_id) == ("approved", 300, charge.charge_id)
    assert client.refund(business, charge.charge_id, amount=300, idempotency_key="r1") == part
    with pytest.raises(VaultRefused) as over:
        client.refund(business, charge.charge_id, amount=701, idempotency_key="r2")
    assert over.value.status == 409 and "700 EUR" in over.value.message
    rest = client.refund(business, charge.charge_id, amount=700, idempotency_key="r3")
    assert rest.status == "approved"
    assert client.get_charge(business, charge.charge_id).refunded == 1000
    with pytest.raises(VaultRefused) as nothing_left:
        client.refund(business, charge.charge_id, amount=1, idempotency_key="r4")
    assert nothing_left.value.status == 409
    with pytest.raises(VaultRefused) as reused:
        client.refund(business, charge.charge_id, amount=200, idempotency_key="r1")
    assert reused.value.status == 409


def test_a_declined_charge_cannot_be_refunded(vault: LiveVault, business: uuid.UUID) -> None:
    client = vault.client()
    card = vault.add_card(business, DECLINE)
    charge = client.charge(business, card.token, amount=100, currency="EUR", idempotency_key="x")
    with pytest.raises(VaultRefused, match="Only an approved charge"):
        client.refund(business, charge.charge_id, amount=100, idempotency_key="x")


def test_another_business_cannot_see_or_refund_a_charge(
    vault: LiveVault, business: uuid.UUID, other_business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    charge = client.charge(business, card.token, amount=500, currency="EUR", idempotency_key="o")
    for attempt in (
        lambda: client.get_charge(other_business, charge.charge_id),
        lambda: client.refund(other_business, charge.charge_id, amount=100, idempotency_key="o"),
    ):
        with pytest.raises(VaultRefused) as refused:
            attempt()
        assert refused.value.status == 404
    assert client.get_charge(business, charge.charge_id).refunded == 0


@pytest.mark.parametrize(
    ("amount", "currency", "key", "message"),
    [
        (0, "EUR", "b", "amount must be"),
        (-5, "EUR", "b", "amount must be"),
        (10**12, "EUR", "b", "amount must be"),
        (100, "eur", "b", "ISO 4217"),
        (100, "EUR", "", "Idempotency-Key header is required"),
    ],
)
def test_bad_charges_are_clear_400s(
    vault: LiveVault, business: uuid.UUID, amount: int, currency: str, key: str, message: str
) -> None:
    card = vault.add_card(business, VISA)
    with pytest.raises(VaultRefused, match=message) as refused:
        vault.client().charge(
            business, card.token, amount=amount, currency=currency, idempotency_key=key
        )
    assert refused.value.status == 400
