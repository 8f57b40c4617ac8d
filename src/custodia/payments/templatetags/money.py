"""`{{ amount_minor|money:currency }}`: an amount in minor units as people read it ($12.50)."""

from __future__ import annotations

from django import template

from custodia.payments.money import format_money

register = template.Library()


@register.filter
def money(amount_minor: int | None, currency: str) -> str:
    """The amount formatted in its currency (payments/money.py); empty for none."""
    if amount_minor is None:
        return ""
    return format_money(int(amount_minor), currency)
