"""UNIQUE (tenant_id, id) on visits: what the payments app's same-tenant foreign keys point at
(a credit use's or an invoice line's visit)."""

from __future__ import annotations

from django.db import migrations

from custodia.core.rls import tenant_key


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0004_sealed_checks")]

    operations = [tenant_key("scheduling_visit")]
