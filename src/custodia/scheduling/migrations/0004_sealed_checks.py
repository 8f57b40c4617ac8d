"""The database refuses anything but a sealed value in an encrypted column (crypto/rows.py)."""

from __future__ import annotations

from django.db import migrations

from custodia.crypto.rows import SealedTable, sealed_constraints

VISIT = SealedTable("scheduling_visit", "id", ("request_note", "report"))


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0003_encrypt_fields")]

    operations = [sealed_constraints(VISIT)]
