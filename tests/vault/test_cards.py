"""Card rules: Luhn, brand, expiry, security code, holder name; errors never hold the number."""

from __future__ import annotations

import datetime as dt

import pytest

from custodia.vault.cards import (
    Brand,
    CardErrors,
    CardInvalid,
    brand_of,
    check_card,
    check_expiry,
    check_number,
    check_security_code,
    luhn_valid,
    parse_expiry,
)

TODAY = dt.date(2026, 12, 4)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", Brand.VISA),
        ("4222222222222", Brand.VISA),
        ("5555555555554444", Brand.MASTERCARD),
        ("2223003122003222", Brand.MASTERCARD),
        ("2720990000000007", Brand.MASTERCARD),
        ("378282246310005", Brand.AMEX),
        ("371449635398431", Brand.AMEX),
        ("6011111111111117", Brand.DISCOVER),
        ("6445644564456445", Brand.DISCOVER),
        ("3056930009020004", Brand.DINERS),
        ("3566002020360505", Brand.JCB),
        ("6200000000000005", Brand.UNIONPAY),
    ],
)
def test_known_test_numbers_pass_with_their_brand(number: str, brand: Brand) -> None:
    digits, found = check_number(number)
    assert (digits, found) == (number, brand)


def test_spaces_and_dashes_are_ignored() -> None:
    assert check_number("4242 4242-4242 4242") == ("4242424242424242", Brand.VISA)


@pytest.mark.parametrize("number", ["4242424242424241", "5555555555554445", "378282246310006"])
def test_a_wrong_check_digit_is_refused(number: str) -> None:
    assert not luhn_valid(number)
    with pytest.raises(CardInvalid, match="not valid") as caught:
        check_number(number)
    assert number not in str(caught.value)


def test_mastercard_two_series_ends_at_2720() -> None:
    assert brand_of("2221000000000009") == Brand.MASTERCARD
    assert brand_of("2220990000000000") is None
    assert brand_of("2721000000000000") is None


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("", "Enter the card number"),
        ("4242x42424242424", "digits only"),
        ("42424242", "12 to 19 digits"),
        ("9999999999999995", "brand is not accepted"),
        ("４２４２４２４２４２４２４２４２", "digits only"),
    ],
)
def test_bad_numbers_say_what_is_wrong(number: str, message: str) -> None:
    with pytest.raises(CardInvalid, match=message):
        check_number(number)


def test_amex_length_must_be_15() -> None:
    # A 16-digit number starting 37 with a valid check digit is no Amex.
    assert brand_of("3782822463100050") is None


@pytest.mark.parametrize(
    ("month", "year", "ok"),
    [
        (12, 2026, True),  # this month: still valid
        (11, 2026, False),
        (1, 2027, True),
        (12, 26, True),  # two-digit year
        (12, 2046, True),
        (1, 2047, False),  # more than 20 years ahead
        (13, 2030, False),
        (0, 2030, False),
    ],
)
def test_expiry(month: int, year: int, ok: bool) -> None:
    if ok:
        assert check_expiry(month, year, today=TODAY)[0] == month
    else:
        with pytest.raises(CardInvalid):
            check_expiry(month, year, today=TODAY)


@pytest.mark.parametrize("text", ["12/30", "12 / 2030", "1/30"])
def test_expiry_text(text: str) -> None:
    month, year = parse_expiry(text, today=TODAY)
    assert year == 2030 and month in {1, 12}


@pytest.mark.parametrize("text", ["1230", "12-30", "ab/cd", "", "12/3"])
def test_malformed_expiry_text(text: str) -> None:
    with pytest.raises(CardInvalid, match="MM/YY"):
        parse_expiry(text, today=TODAY)


def test_security_code_length_by_brand() -> None:
    assert check_security_code("1234", Brand.AMEX) == "1234"
    assert check_security_code("123", Brand.VISA) == "123"
    for code, brand in (
        ("123", Brand.AMEX),
        ("1234", Brand.VISA),
        ("12a", Brand.VISA),
        ("", Brand.MASTERCARD),
    ):
        with pytest.raises(CardInvalid) as caught:
            check_security_code(code, brand)
        assert caught.value.field == "security_code"


def test_check_card_gathers_every_error_and_never_the_values() -> None:
    with pytest.raises(CardErrors) as caught:
        check_card(
            number="4242424242424241", expiry="01/20", security_code="99", holder_name=" ",
            today=TODAY,
        )  # fmt: skip
    assert set(caught.value.by_field) == {"number", "expiry", "security_code", "holder_name"}
    assert "4242424242424241" not in str(caught.value)
    assert "99" not in str(caught.value).replace("1 to 99", "")


def test_a_checked_card_never_shows_its_number_or_code() -> None:
    card = check_card(
        number="378282246310005", expiry="12/30", security_code="4321",
        holder_name="  Ada   Lovelace ", today=TODAY,
    )  # fmt: skip
    assert (card.brand, card.last4, card.holder_name) == (Brand.AMEX, "0005", "Ada Lovelace")
    assert "378282246310005" not in repr(card) and "4321" not in repr(card)
