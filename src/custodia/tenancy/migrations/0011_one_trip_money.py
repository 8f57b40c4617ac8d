"""The one-trip context functions (tenancy/0006, with 0008's closing columns) return the business's
money columns too (0010: `currency`, `credit_back_on_cancel`), so the actor they build needs no
query of its own for them (tests/security/test_token_context.py)."""

from __future__ import annotations

import importlib
from typing import Any

from django.db import migrations

ONE_TRIP = importlib.import_module("custodia.tenancy.migrations.0006_one_trip_context")
CLOSING = importlib.import_module("custodia.tenancy.migrations.0008_closing_guards")

MONEY_COLUMNS = ",\n    b_currency varchar, b_credit_back_on_cancel boolean"
MONEY_SELECT = ", b.currency, b.credit_back_on_cancel"
MONEY_INTO = ", b_currency, b_credit_back_on_cancel"


def _functions(money: bool) -> list[Any]:
    """tenancy/0006's two activation functions with 0008's closing columns, and with or
    without the money columns."""
    columns = CLOSING.NEW_BUSINESS_COLUMNS + (MONEY_COLUMNS if money else "")
    select = CLOSING.NEW_SELECT_BUSINESS + (MONEY_SELECT if money else "")
    into = CLOSING.NEW_INTO_BUSINESS + (MONEY_INTO if money else "")
    statements: list[Any] = [
        "DROP FUNCTION IF EXISTS custodia_activate_member(text, uuid, uuid)",
        "DROP FUNCTION IF EXISTS custodia_activate_token(text, text, text[])",
    ]
    # FORWARD[0:2] is custodia_put_context and its REVOKE, which stay.
    for sql in ONE_TRIP.FORWARD[2:]:
        statements.append(
            sql.replace(ONE_TRIP.BUSINESS_COLUMNS, columns)
            .replace(ONE_TRIP.SELECT_BUSINESS, select)
            .replace(ONE_TRIP.INTO_BUSINESS, into)
        )
    return statements


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0010_business_money")]

    operations = [migrations.RunSQL(_functions(money=True), _functions(money=False))]
