"""Amounts in minor units and their currency: checking a currency code, converting a decimal a
person typed into minor units and back, and formatting for display (Babel's CLDR data)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, is_currency
from django.core.exceptions import ValidationError

DISPLAY_LOCALE = "en_US"


def check_currency(code: str) -> str:
    """The ISO 4217 code, upper-cased; ValidationError naming the field for anything else."""
    code = str(code).strip().upper()
    if len(code) != 3 or not code.isalpha() or not is_currency(code):
        raise ValidationError({"currency": "Choose an ISO 4217 currency code such as USD or EUR."})
    return code


def decimals(currency: str) -> int:
    """How many decimals the currency's minor unit has (USD 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """A decimal amount as an integer of minor units; ValueError when it has more decimals than
    the currency or is not a number."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError("Enter an amount such as 12.50.") from None
    if not value.is_finite():
        raise ValueError("Enter an amount such as 12.50.")
    scaled = value.scaleb(decimals(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {decimals(currency)} decimals.")
    return int(scaled)


def from_minor(amount_minor: int, currency: str) -> Decimal:
    """Minor units as a decimal amount (for a form's initial value)."""
    return Decimal(amount_minor).scaleb(-decimals(currency))


def format_money(amount_minor: int, currency: str) -> str:
    """An amount for people: `$12.50`, `€3.00`, `¥1,200`."""
    return str(format_currency(from_minor(amount_minor, currency), currency, locale=DISPLAY_LOCALE))
