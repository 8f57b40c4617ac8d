"""Card rules: Luhn, brand, expiry, security code length, last four.

Pure functions: nothing here stores, logs or returns a card number. Errors are `CardInvalid`
with a field name and a message fit to show the person typing, never the value typed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    DINERS = "diners"
    JCB = "jcb"
    UNIONPAY = "unionpay"


# (brand, prefix ranges as (low, high) over the first `width` digits, accepted lengths)
_RANGES: list[tuple[Brand, list[tuple[int, int, int]], tuple[int, ...]]] = [
    (Brand.AMEX, [(34, 34, 2), (37, 37, 2)], (15,)),
    # Mastercard: 51-55 and the 2-series 2221-2720.
    (Brand.MASTERCARD, [(51, 55, 2), (2221, 2720, 4)], (16,)),
    (Brand.VISA, [(4, 4, 1)], (13, 16, 19)),
    (
        Brand.DISCOVER,
        [(6011, 6011, 4), (644, 649, 3), (65, 65, 2), (622126, 622925, 6)],
        (16, 17, 18, 19),
    ),
    (Brand.DINERS, [(300, 305, 3), (36, 36, 2), (38, 39, 2)], (14, 16, 17, 18, 19)),
    (Brand.JCB, [(3528, 3589, 4)], (16, 17, 18, 19)),
    (Brand.UNIONPAY, [(62, 62, 2)], (16, 17, 18, 19)),
]
SECURITY_CODE_LENGTH = {Brand.AMEX: 4}
DEFAULT_SECURITY_CODE_LENGTH = 3
# A card valid further ahead than this is a typing mistake (issuers go up to about 10 years).
MAX_YEARS_AHEAD = 20
MAX_HOLDER_NAME = 100


class CardInvalid(ValueError):
    """A card detail is not acceptable: `field` names which, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def digits_only(number: str) -> str:
    """The number without the spaces and dashes people type; CardInvalid for anything else."""
    cleaned = re.sub(r"[\s-]", "", number)
    if not cleaned:
        raise CardInvalid("number", "Enter the card number.")
    if not cleaned.isascii() or not cleaned.isdigit():
        raise CardInvalid("number", "A card number has digits only.")
    return cleaned


def luhn_valid(number: str) -> bool:
    """Whether the digits pass the Luhn check (ISO/IEC 7812)."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> Brand | None:
    """The brand the number's prefix and length belong to, or None."""
    for brand, ranges, lengths in _RANGES:
        if len(number) not in lengths:
            continue
        for low, high, width in ranges:
            if len(number) >= width and low <= int(number[:width]) <= high:
                return brand
    return None


def check_number(number: str) -> tuple[str, Brand]:
    """(digits, brand) of an acceptable card number; CardInvalid otherwise."""
    digits = digits_only(number)
    if not 12 <= len(digits) <= 19:
        raise CardInvalid("number", "A card number has 12 to 19 digits.")
    if not luhn_valid(digits):
        raise CardInvalid("number", "This card number is not valid: check it for a typo.")
    brand = brand_of(digits)
    if brand is None:
        raise CardInvalid("number", "This card's brand is not accepted.")
    return digits, brand


def check_expiry(month: int, year: int, *, today: dt.date | None = None) -> tuple[int, int]:
    """(month, four-digit year) of a card not yet expired nor absurdly far ahead."""
    today = today or dt.date.today()
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardInvalid("expiry", "The month must be 01 to 12.")
    if (year, month) < (today.year, today.month):
        raise CardInvalid("expiry", "This card has expired.")
    if year > today.year + MAX_YEARS_AHEAD:
        raise CardInvalid("expiry", "This expiry date is too far ahead: check it.")
    return month, year


def parse_expiry(text: str, *, today: dt.date | None = None) -> tuple[int, int]:
    """An expiry typed as MM/YY or MM/YYYY."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", text)
    if match is None:
        raise CardInvalid("expiry", "Enter the expiry date as MM/YY.")
    return check_expiry(int(match.group(1)), int(match.group(2)), today=today)


def check_security_code(code: str, brand: Brand) -> str:
    """The security code, of the length the brand uses (4 for Amex, else 3)."""
    code = code.strip()
    wanted = SECURITY_CODE_LENGTH.get(brand, DEFAULT_SECURITY_CODE_LENGTH)
    if not (code.isascii() and code.isdigit() and len(code) == wanted):
        raise CardInvalid("security_code", f"The security code has {wanted} digits for this card.")
    return code


def check_holder_name(name: str) -> str:
    """The name on the card, trimmed; required and of sane length."""
    name = " ".join(name.split())
    if not name:
        raise CardInvalid("holder_name", "Enter the name on the card.")
    if len(name) > MAX_HOLDER_NAME:
        raise CardInvalid("holder_name", f"The name is longer than {MAX_HOLDER_NAME} characters.")
    return name


@dataclass(frozen=True)
class CheckedCard:
    """A card that passed every rule; its repr never shows the number or the code."""

    number: str
    brand: Brand
    exp_month: int
    exp_year: int
    holder_name: str
    security_code: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def __repr__(self) -> str:
        return f"CheckedCard({self.brand}, last4={self.last4})"


def check_card(
    *, number: str, expiry: str, security_code: str, holder_name: str, today: dt.date | None = None
) -> CheckedCard:
    """Every rule at once; raises a list of CardInvalid as `CardErrors`."""
    errors: list[CardInvalid] = []
    digits, brand, month, year, code, name = "", None, 0, 0, "", ""
    try:
        digits, brand = check_number(number)
    except CardInvalid as exc:
        errors.append(exc)
    try:
        month, year = parse_expiry(expiry, today=today)
    except CardInvalid as exc:
        errors.append(exc)
    try:
        code = check_security_code(security_code, brand or Brand.VISA)
    except CardInvalid as exc:
        errors.append(exc)
    try:
        name = check_holder_name(holder_name)
    except CardInvalid as exc:
        errors.append(exc)
    if errors or brand is None:
        raise CardErrors(errors)
    return CheckedCard(digits, brand, month, year, name, code)


class CardErrors(ValueError):
    """Several card details are wrong: {field: message}."""

    def __init__(self, errors: list[CardInvalid]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.by_field = {error.field: error.message for error in errors}
