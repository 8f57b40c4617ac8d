"""`{% wallet_offers as offers %}`: which wallets this install offers (offers.apple,
offers.google), so a page links only to those configured."""

from __future__ import annotations

from django import template

from custodia.wallet import config

register = template.Library()


@register.simple_tag
def wallet_offers() -> dict[str, bool]:
    """The wallets configured here."""
    return {"apple": config.apple_enabled(), "google": config.google_enabled()}
