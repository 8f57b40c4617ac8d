"""Encrypt visits' request notes and reports at rest (crypto/, docs/keys.md); not reversible."""

from __future__ import annotations

from typing import Any

from django.db import migrations

import custodia.crypto.fields
from custodia.crypto.rows import SealedTable, encrypt_plain_columns, plain_columns_to_bytes

VISIT = SealedTable("scheduling_visit", "id", ("request_note", "report"))


def encrypt(apps: Any, schema_editor: Any) -> None:
    encrypt_plain_columns(schema_editor.connection.alias, VISIT)


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0002_rls"),
        ("clients", "0004_encrypt_fields"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="visit",
                    name=column,
                    field=custodia.crypto.fields.EncryptedTextField(),
                )
                for column in VISIT.columns
            ],
            database_operations=[
                plain_columns_to_bytes(VISIT),
                migrations.RunPython(encrypt),
            ],
        ),
    ]
