"""Adding a card through the hosted form (no JavaScript), references, card reads and deletes,
each business seeing only its own."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from custodia.vault.client import VaultRefused
from tests.vaults import LiveVault

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"


def reference_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["ref"][0]


def test_a_card_added_gives_a_reference_that_redeems_once(
    vault: LiveVault, business: uuid.UUID
) -> None:
    client = vault.client()
    form = client.create_form(business, f"{vault.app_origin}/done?step=2")
    answer = vault.submit_card(form.form_url, number="4242 4242 4242 4242", expiry="07/39")
    assert answer.status == 303
    location = answer.headers["Location"]
    assert location.startswith(f"{vault.app_origin}/done?step=2&ref=")
    card = client.redeem_reference(business, reference_of(location))
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 7, 2039)
    assert card.duplicate_of is None and len(card.fingerprint) == 32
    with pytest.raises(VaultRefused) as again:
        client.redeem_reference(business, reference_of(location))
    assert again.value.status == 410
    assert client.get_card(business, card.token) == card


def test_an_expired_reference_is_gone(vault: LiveVault, business: uuid.UUID) -> None:
    client = vault.client()
    form = client.create_form(business, f"{vault.app_origin}/done")
    ref = reference_of(vault.submit_card(form.form_url, number=VISA).headers["Location"])
    vault.sql("UPDATE vault_reference SET expires_at = now() WHERE ref = %s", (ref,))
    with pytest.raises(VaultRefused) as refused:
        client.redeem_reference(business, ref)
    assert refused.value.status == 410 and "expired" in refused.value.message


def test_the_form_is_used_up_and_unknown_forms_are_not_found(
    vault: LiveVault, business: uuid.UUID
) -> None:
    form = vault.client().create_form(business, f"{vault.app_origin}/done")
    assert vault.submit_card(form.form_url, number=MASTERCARD).status == 303
    used = vault.http().request("GET", form.form_url)
    assert used.status == 410 and "used or has expired" in used.data.decode()
    unknown = vault.http().request("GET", f"{vault.url}/form/form_nothing/")
    assert unknown.status == 404


def test_an_expired_form_is_gone(vault: LiveVault, business: uuid.UUID) -> None:
    form = vault.client().create_form(business, f"{vault.app_origin}/done")
    vault.sql("UPDATE vault_formsession SET expires_at = now() WHERE form_id = %s", (form.form_id,))
    answer = vault.submit_card(form.form_url, number=VISA)
    assert answer.status == 410


def test_forms_and_references_a_day_past_expiry_are_purged(
    vault: LiveVault, business: uuid.UUID
) -> None:
    client = vault.client()
    old = client.create_form(business, f"{vault.app_origin}/done")
    ref = reference_of(vault.submit_card(old.form_url, number=VISA).headers["Location"])
    vault.sql(
        "UPDATE vault_formsession SET expires_at = now() - interval '25 hours' WHERE form_id = %s",
        (old.form_id,),
    )
    vault.sql(
        "UPDATE vault_reference SET expires_at = now() - interval '25 hours' WHERE ref = %s",
        (ref,),
    )
    client.create_form(business, f"{vault.app_origin}/done")
    assert vault.sql("SELECT 1 FROM vault_formsession WHERE form_id = %s", (old.form_id,)) == []
    assert vault.sql("SELECT 1 FROM vault_reference WHERE ref = %s", (ref,)) == []
    cards = vault.sql("SELECT count(*) FROM vault_card WHERE business_id = %s", (business,))
    assert cards == [(1,)]  # the card itself stays


def test_bad_details_rerender_with_messages_and_never_echo_the_number(
    vault: LiveVault, business: uuid.UUID
) -> None:
    form = vault.client().create_form(business, f"{vault.app_origin}/done")
    answer = vault.submit_card(
        form.form_url, number="4242424242424241", expiry="01/20", security_code="9876",
        holder_name="Ada Lovelace",
    )  # fmt: skip
    page = answer.data.decode()
    assert answer.status == 400
    assert "not valid: check it for a typo" in page and "This card has expired" in page
    assert "4242424242424241" not in page and "9876" not in page
    assert 'value="Ada Lovelace"' in page  # the name is kept, the number and code are not
    # The form is still open: the next try with good details works.
    assert vault.submit_card(form.form_url, number=VISA).status == 303


@pytest.mark.parametrize(
    ("number", "code", "field_message"),
    [
        ("4000000000000127", "123", "security code is incorrect"),
        ("4000000000000069", "123", "The card has expired"),
        ("378282246310005", "123", "4 digits for this card"),
    ],
)
def test_gateway_and_rule_declines_show_on_the_form(
    vault: LiveVault, business: uuid.UUID, number: str, code: str, field_message: str
) -> None:
    form = vault.client().create_form(business, f"{vault.app_origin}/done")
    answer = vault.submit_card(form.form_url, number=number, security_code=code)
    assert answer.status == 400 and field_message in answer.data.decode()
    cards = vault.sql("SELECT count(*) FROM vault_card WHERE business_id = %s", (business,))
    assert cards == [(0,)]


def test_a_form_closes_after_five_failed_tries(vault: LiveVault, business: uuid.UUID) -> None:
    """Card testing (trying stolen numbers one after another) needs many tries: a form gives
    five, declines included."""
    form = vault.client().create_form(business, f"{vault.app_origin}/done")
    for attempt in range(4):
        number = "4000000000000127" if attempt % 2 else "4242424242424241"
        assert vault.submit_card(form.form_url, number=number).status == 400
    last = vault.submit_card(form.form_url, number="4242424242424241")
    assert last.status == 400 and "Too many tries" in last.data.decode()
    assert vault.submit_card(form.form_url, number=VISA).status == 410
    cards = vault.sql("SELECT count(*) FROM vault_card WHERE business_id = %s", (business,))
    assert cards == [(0,)]


def test_the_form_post_needs_its_csrf_token(vault: LiveVault, business: uuid.UUID) -> None:
    form = vault.client().create_form(business, f"{vault.app_origin}/done")
    answer = vault.http().request(
        "POST", form.form_url, fields={"number": VISA, "expiry": "12/40", "security_code": "123",
        "holder_name": "X"}, encode_multipart=False, headers={"Origin": vault.url},
    )  # fmt: skip
    assert answer.status == 403
    # Django logs the refusal with the path: the form's id (a one-time secret) is redacted.
    log = vault.log.read_text()
    assert "Forbidden (CSRF" in log and form.form_id not in log
    assert vault.sql(
        "SELECT used_at FROM vault_formsession WHERE form_id = %s", (form.form_id,)
    ) == [(None,)]


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/done",
        "{other}/done",
        "{app}@evil.example/done",
        "javascript:alert(1)",
        "/done",
        "",
    ],
)
def test_return_urls_off_the_app_origin_are_refused(
    vault: LiveVault, business: uuid.UUID, return_url: str
) -> None:
    url = return_url.format(app=vault.app_origin, other=vault.other_origin)
    with pytest.raises(VaultRefused) as refused:
        vault.client().create_form(business, url)
    assert refused.value.status == 400 and "app's origin" in refused.value.message


def test_the_same_card_twice_is_spotted_within_a_business_only(
    vault: LiveVault, business: uuid.UUID, other_business: uuid.UUID
) -> None:
    first = vault.add_card(business, "6011111111111117")
    second = vault.add_card(business, "6011 1111 1111 1117")
    elsewhere = vault.add_card(other_business, "6011111111111117")
    assert second.duplicate_of == first.token and second.fingerprint == first.fingerprint
    assert elsewhere.duplicate_of is None and elsewhere.fingerprint != first.fingerprint


def test_another_business_gets_404_for_tokens_and_references(
    vault: LiveVault, business: uuid.UUID, other_business: uuid.UUID
) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    form = client.create_form(business, f"{vault.app_origin}/done")
    ref = reference_of(vault.submit_card(form.form_url, number=MASTERCARD).headers["Location"])
    for attempt in (
        lambda: client.get_card(other_business, card.token),
        lambda: client.delete_card(other_business, card.token),
        lambda: client.redeem_reference(other_business, ref),
        lambda: client.charge(
            other_business, card.token, amount=100, currency="EUR", idempotency_key="x"
        ),
    ):
        with pytest.raises(VaultRefused) as refused:
            attempt()
        assert refused.value.status == 404
    # Nothing was spent: the owner still redeems its reference and reads its card.
    assert client.redeem_reference(business, ref).last4 == "4444"
    assert client.get_card(business, card.token).last4 == "4242"


def test_deleting_a_card_destroys_its_sealed_number(vault: LiveVault, business: uuid.UUID) -> None:
    client = vault.client()
    card = vault.add_card(business, VISA)
    before = vault.sql(
        "SELECT number_sealed, holder_sealed FROM vault_card WHERE token = %s", (card.token,)
    )
    assert all(value is not None for value in before[0])
    client.delete_card(business, card.token)
    after = vault.sql(
        "SELECT number_sealed, holder_sealed FROM vault_card WHERE token = %s", (card.token,)
    )
    assert after == [(None, None)]
    for attempt in (
        lambda: client.get_card(business, card.token),
        lambda: client.charge(
            business, card.token, amount=100, currency="EUR", idempotency_key="d"
        ),
    ):
        with pytest.raises(VaultRefused) as refused:
            attempt()
        assert refused.value.status == 404


def test_bad_json_is_a_clear_400(vault: LiveVault, business: uuid.UUID) -> None:
    client = vault.client()
    body = b"[1, 2"
    headers = client.signed_headers("POST", "/v1/forms", str(business), "", body)
    answer = vault.http().request("POST", f"{vault.url}/v1/forms", body=body, headers=headers)
    assert answer.status == 400 and b"JSON object" in answer.data
    with pytest.raises(VaultRefused, match="business_id must be"):
        client.request(
            "POST", "/v1/forms", business, {"business_id": str(uuid.uuid4()), "return_url": "x"}
        )
