"""The one-trip context functions (tenancy/0006, as 0013 left them) return the business's
`time_zone` too (0014), so the actor they build needs no query of its own for it
(tests/security/test_token_context.py)."""

from __future__ import annotations

import importlib
from typing import Any

from django.db import migrations

MONEY = importlib.import_module("custodia.tenancy.migrations.0011_one_trip_money")
CARDS = importlib.import_module("custodia.tenancy.migrations.0013_one_trip_cards")

ZONE_COLUMNS = MONEY.MONEY_COLUMNS + ", b_time_zone varchar"
ZONE_SELECT = MONEY.MONEY_SELECT + ", b.time_zone"
ZONE_INTO = MONEY.MONEY_INTO + ", b_time_zone"


def _functions(zone: bool) -> list[Any]:
    """0013's activation functions, with or without the business's time zone."""
    statements: list[Any] = CARDS._functions(cards=True)
    if not zone:
        return statements
    return [
        sql.replace(MONEY.MONEY_COLUMNS, ZONE_COLUMNS)
        .replace(MONEY.MONEY_SELECT, ZONE_SELECT)
        .replace(MONEY.MONEY_INTO, ZONE_INTO)
        if isinstance(sql, str)
        else sql
        for sql in statements
    ]


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0014_business_time_zone")]

    operations = [migrations.RunSQL(_functions(zone=True), _functions(zone=False))]
