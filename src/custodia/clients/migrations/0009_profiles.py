"""Pets and household details (docs/profiles.md): the tables, row-level security, the sealed
checks on their encrypted columns, same-tenant references and the closed-business guard.

Who reads a row: managers and owners of the business; staff assigned to the client; the client
themself. Who writes: managers and owners. The household's sealed details (Wi-Fi, emergency
contact) are shown to staff only around their own visits: clients/profiles.py decides that, as
clients/access.py does for door codes.
"""

from __future__ import annotations

import uuid

import django.db.models.deletion
from django.db import migrations, models

import custodia.crypto.fields
from custodia.core.rls import CLIENT_OF_ACTOR, IN_TENANT, closed_guard, guard_table, same_tenant
from custodia.crypto.rows import SealedTable, sealed_constraints

MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
ASSIGNED = """EXISTS (SELECT 1 FROM clients_assignment a
    WHERE a.tenant_id = {table}.tenant_id AND a.client_id = {table}.client_id
      AND a.staff_id = custodia_membership_id())"""
PET = SealedTable("clients_pet", "id", ("medication", "vet_name", "vet_phone", "notes"))
HOUSEHOLD = SealedTable(
    "clients_household", "client_id", ("wifi_name", "wifi_password", "emergency_contact")
)


def readers(table: str) -> str:
    """Managers, assigned staff, and the client themself."""
    return f"""{IN_TENANT} AND (custodia_is_manager()
        OR (custodia_role() = 'staff' AND {ASSIGNED.format(table=table)})
        OR (custodia_role() = 'client' AND client_id = {CLIENT_OF_ACTOR}))"""


def tenant_field() -> models.ForeignKey:  # type: ignore[type-arg]
    return models.ForeignKey(
        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="tenancy.business"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0008_nameparts"),
        ("tenancy", "0008_closing_guards"),
    ]

    operations = [
        migrations.CreateModel(
            name="Pet",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=120)),
                ("species", models.CharField(blank=True, default="", max_length=60)),
                ("breed", models.CharField(blank=True, default="", max_length=120)),
                ("birthday", models.DateField(blank=True, null=True)),
                ("feeding", models.TextField(blank=True, default="")),
                ("medication", custodia.crypto.fields.EncryptedTextField()),
                ("vet_name", custodia.crypto.fields.EncryptedTextField()),
                ("vet_phone", custodia.crypto.fields.EncryptedTextField()),
                ("notes", custodia.crypto.fields.EncryptedTextField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "client",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pets",
                        to="clients.client",
                    ),
                ),
                ("tenant", tenant_field()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["tenant", "client", "name"], name="pet_tenant_client")
                ],
            },
        ),
        migrations.CreateModel(
            name="Household",
            fields=[
                (
                    "client",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="household",
                        serialize=False,
                        to="clients.client",
                    ),
                ),
                ("keys_held", models.CharField(blank=True, default="", max_length=200)),
                ("parking", models.TextField(blank=True, default="")),
                ("wifi_name", custodia.crypto.fields.EncryptedTextField()),
                ("wifi_password", custodia.crypto.fields.EncryptedTextField()),
                ("emergency_contact", custodia.crypto.fields.EncryptedTextField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("tenant", tenant_field()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["tenant", "client"], name="household_tenant_client")
                ],
            },
        ),
        guard_table(
            "clients_pet",
            select=readers("clients_pet"),
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "clients_household",
            select=readers("clients_household"),
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        same_tenant("clients_pet", "client_id", "clients_client"),
        same_tenant("clients_household", "client_id", "clients_client"),
        sealed_constraints(PET),
        sealed_constraints(HOUSEHOLD),
        closed_guard("clients_pet"),
        closed_guard("clients_household"),
    ]
