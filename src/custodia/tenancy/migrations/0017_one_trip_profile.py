"""The one-trip context functions (tenancy/0006, as 0015 left them) return the business's
profile columns too (0016: `opening_hours`, `reminder_hours_before`), so the actor they build
needs no query of its own for them (tests/security/test_token_context.py)."""

from __future__ import annotations

import importlib
from typing import Any

from django.db import migrations

ZONE = importlib.import_module("custodia.tenancy.migrations.0015_one_trip_time_zone")

PROFILE_COLUMNS = ZONE.ZONE_COLUMNS + ", b_opening_hours varchar, b_reminder_hours_before smallint"
PROFILE_SELECT = ZONE.ZONE_SELECT + ", b.opening_hours, b.reminder_hours_before"
PROFILE_INTO = ZONE.ZONE_INTO + ", b_opening_hours, b_reminder_hours_before"


def _functions(profile: bool) -> list[Any]:
    """0015's activation functions, with or without the business's profile columns."""
    statements: list[Any] = ZONE._functions(zone=True)
    if not profile:
        return statements
    return [
        sql.replace(ZONE.ZONE_COLUMNS, PROFILE_COLUMNS)
        .replace(ZONE.ZONE_SELECT, PROFILE_SELECT)
        .replace(ZONE.ZONE_INTO, PROFILE_INTO)
        if isinstance(sql, str)
        else sql
        for sql in statements
    ]


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0016_business_profile")]

    operations = [migrations.RunSQL(_functions(profile=True), _functions(profile=False))]
