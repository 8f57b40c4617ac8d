"""Exports are the owners' alone: row-level security, a same-business starter, sealed file keys."""

from __future__ import annotations

from django.db import migrations

from custodia.core.rls import IN_TENANT, guard_table, same_tenant
from custodia.crypto.rows import SealedTable, sealed_constraints

OWNER_HERE = f"{IN_TENANT} AND custodia_role() = 'owner'"
EXPORT = SealedTable("export_export", "id", ("file_key",))


class Migration(migrations.Migration):
    dependencies = [
        ("export", "0001_initial"),
        ("tenancy", "0006_one_trip_context"),
    ]

    operations = [
        guard_table(
            "export_export",
            select=OWNER_HERE,
            insert=OWNER_HERE,
            update=OWNER_HERE,
            delete=OWNER_HERE,
        ),
        same_tenant("export_export", "started_by_id", "tenancy_membership"),
        sealed_constraints(EXPORT),
    ]
