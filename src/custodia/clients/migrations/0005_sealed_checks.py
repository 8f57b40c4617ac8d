"""The database refuses anything but a sealed value in an encrypted column (crypto/rows.py)."""

from __future__ import annotations

from django.db import migrations

from custodia.crypto.rows import SealedTable, sealed_constraints

CLIENT = SealedTable("clients_client", "id", ("email", "phone", "address", "notes"))
HOME_ACCESS = SealedTable(
    "clients_homeaccess", "client_id", ("instructions", "door_code", "alarm_code")
)


class Migration(migrations.Migration):
    dependencies = [("clients", "0004_encrypt_fields")]

    operations = [sealed_constraints(CLIENT), sealed_constraints(HOME_ACCESS)]
