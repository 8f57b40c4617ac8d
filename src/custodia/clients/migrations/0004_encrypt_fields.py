"""Encrypt clients' contact details, notes and home access at rest (crypto/, docs/keys.md).

Each column becomes `bytea`: first the text's UTF-8 bytes, then, business by business, a sealed
value under the business's data key (made here for businesses that have none). The email and
phone search keys become keyed blind indexes. Not reversible: going back would write the
plaintext into the database again.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

import custodia.crypto.fields
from custodia.crypto.rows import (
    SealedTable,
    business_ids,
    encrypt_plain_columns,
    enter_business,
    plain_columns_to_bytes,
)

CLIENT = SealedTable("clients_client", "id", ("email", "phone", "address", "notes"))
HOME_ACCESS = SealedTable(
    "clients_homeaccess", "client_id", ("instructions", "door_code", "alarm_code")
)


def blind_indexes(apps: Any, schema_editor: Any) -> None:
    from custodia.clients.models import email_key, phone_key
    from custodia.crypto.keyring import blind_index, create_keys

    cursor = schema_editor.connection.cursor()
    for business in business_ids(schema_editor.connection.alias):
        create_keys(business)
        enter_business(cursor, business)
        cursor.execute(
            "SELECT id, convert_from(email, 'UTF8'), convert_from(phone, 'UTF8') "
            "FROM clients_client WHERE tenant_id = %s",
            [str(business)],
        )
        updates = [
            [
                blind_index(business, "email", email_key(email)),
                blind_index(business, "phone", phone_key(phone)),
                client,
            ]
            for client, email, phone in cursor.fetchall()
        ]
        cursor.executemany(
            "UPDATE clients_client SET email_search = %s, phone_search = %s WHERE id = %s", updates
        )


def encrypt(apps: Any, schema_editor: Any) -> None:
    for table in (CLIENT, HOME_ACCESS):
        encrypt_plain_columns(schema_editor.connection.alias, table)


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0003_rls"),
        # The owner role lists businesses through the policy that migration adds.
        ("audit", "0002_integrity"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *(
                    migrations.AlterField(
                        model_name="client",
                        name=column,
                        field=custodia.crypto.fields.EncryptedTextField(),
                    )
                    for column in CLIENT.columns
                ),
                *(
                    migrations.AlterField(
                        model_name="homeaccess",
                        name=column,
                        field=custodia.crypto.fields.EncryptedTextField(),
                    )
                    for column in HOME_ACCESS.columns
                ),
                migrations.AlterField(
                    model_name="client",
                    name="email_search",
                    field=models.BinaryField(editable=False, null=True),
                ),
                migrations.AlterField(
                    model_name="client",
                    name="phone_search",
                    field=models.BinaryField(editable=False, null=True),
                ),
            ],
            database_operations=[
                plain_columns_to_bytes(CLIENT),
                plain_columns_to_bytes(HOME_ACCESS),
                migrations.RunSQL(
                    [
                        f"ALTER TABLE clients_client ALTER COLUMN {column} DROP NOT NULL, "
                        f"ALTER COLUMN {column} TYPE bytea USING NULL"
                        for column in ("email_search", "phone_search")
                    ]
                ),
                migrations.RunPython(blind_indexes),
                migrations.RunPython(encrypt),
            ],
        ),
    ]
