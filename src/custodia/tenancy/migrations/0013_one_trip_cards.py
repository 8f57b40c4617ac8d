"""The one-trip context functions (tenancy/0006, as 0011 left them) return the membership's
`cards_granted` too (0012), so the actor they build needs no query of its own to know whether a
manager may take card payments (tests/security/test_token_context.py)."""

from __future__ import annotations

import importlib
from typing import Any

from django.db import migrations

ONE_TRIP = importlib.import_module("custodia.tenancy.migrations.0006_one_trip_context")
MONEY = importlib.import_module("custodia.tenancy.migrations.0011_one_trip_money")


def _functions(cards: bool) -> list[Any]:
    """0011's activation functions, with or without the membership's cards grant."""
    statements: list[Any] = MONEY._functions(money=True)
    if not cards:
        return statements
    return [
        sql.replace(
            ONE_TRIP.MEMBERSHIP_COLUMNS, ONE_TRIP.MEMBERSHIP_COLUMNS + ", m_cards_granted boolean"
        )
        .replace(ONE_TRIP.SELECT_MEMBERSHIP, ONE_TRIP.SELECT_MEMBERSHIP + ", m.cards_granted")
        .replace(ONE_TRIP.INTO_MEMBERSHIP, ONE_TRIP.INTO_MEMBERSHIP + ", m_cards_granted")
        if isinstance(sql, str)
        else sql
        for sql in statements
    ]


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0012_membership_cards_granted")]

    operations = [migrations.RunSQL(_functions(cards=True), _functions(cards=False))]
