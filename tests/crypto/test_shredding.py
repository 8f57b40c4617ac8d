"""Crypto-shredding: a deleted business's data stays unreadable in a backup taken before the
deletion, while every other business in the same backup still reads.

The backup is one of `custodia backup run` (lifecycle/backups/: pg_dump, age encryption, a
signed manifest) restored into a new database the way `custodia backup restore` does; the rows
are committed first (as the admin role, outside the test's transaction), because a dump sees
only committed data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

from custodia.clients.models import email_key, name_key, phone_key
from custodia.crypto import keystore
from custodia.crypto.actions import do_destroy_business_keys
from custodia.crypto.errors import KeyUnavailable
from custodia.crypto.fields import open_text, seal_text
from custodia.crypto.keyring import blind_index, create_keys
from custodia.embedded import admin_connection
from custodia.lifecycle.backups import BackupStore, restore_backup, run_backup
from tests.lifecycle.support import backup_keys

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

SEALED = ("email", "phone", "address", "notes")
HOME = ("instructions", "door_code", "alarm_code")
VISIT = ("request_note", "report")


def admin(dbname: str) -> psycopg.Connection[Any]:
    return admin_connection(settings.ADMIN_DATABASE, dbname)


def committed_business(connection: psycopg.Connection[Any], label: str) -> dict[str, Any]:
    """A business with three clients, written and committed the way the app stores them."""
    business = uuid.uuid4()
    create_keys(business)
    connection.execute(
        "INSERT INTO tenancy_business (id, name, slug, access_window_before_hours,"
        " access_window_after_hours, created_at) VALUES (%s, %s, %s, 24, 12, now())",
        [business, f"Shred {label}", f"shred-{label}-{business.hex[:6]}"],
    )
    clients = {}
    for number in range(3):
        client = uuid.uuid4()
        values: dict[Any, str] = {
            "email": f"{label}{number}@shred.test",
            "phone": f"+1 555 01{number:02d}",
            "address": f"{number} {label} Road",
            "notes": f"{label} notes {number}",
        }
        sealed = [seal_text(business, "clients_client", c, client, values[c]) for c in SEALED]
        name = f"{label} client {number}"
        connection.execute(
            "INSERT INTO clients_client (id, tenant_id, name, email, phone, address, notes,"
            " name_search, email_search, phone_search, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())",
            [
                client,
                business,
                name,
                *sealed,
                name_key(name),
                blind_index(business, "email", email_key(values["email"])),
                blind_index(business, "phone", phone_key(values["phone"])),
            ],
        )
        clients[client] = values
        home = {
            "instructions": f"{label} key under pot {number}",
            "door_code": f"{label}-{number}-door",
            "alarm_code": f"{label}-{number}-alarm",
        }
        connection.execute(
            "INSERT INTO clients_homeaccess (client_id, tenant_id, instructions, door_code,"
            " alarm_code, updated_at) VALUES (%s, %s, %s, %s, %s, now())",
            [
                client,
                business,
                *(seal_text(business, "clients_homeaccess", c, client, home[c]) for c in HOME),
            ],
        )
        visit = uuid.uuid4()
        notes = {"request_note": f"{label} request {number}", "report": f"{label} report {number}"}
        connection.execute(
            "INSERT INTO scheduling_visit (id, tenant_id, client_id, starts_at, ends_at, status,"
            " request_note, report, created_at, updated_at) VALUES (%s, %s, %s, now(),"
            " now() + interval '1 hour', 'completed', %s, %s, now(), now())",
            [
                visit,
                business,
                client,
                *(seal_text(business, "scheduling_visit", c, visit, notes[c]) for c in VISIT),
            ],
        )
        for column, value in home.items():
            values[("clients_homeaccess", column)] = value
        for column, value in notes.items():
            values[("scheduling_visit", column)] = value
    return {"id": business, "clients": clients}


@pytest.fixture
def live() -> Iterator[tuple[psycopg.Connection[Any], list[uuid.UUID]]]:
    """The admin connection to the test database; committed businesses are removed after."""
    made: list[uuid.UUID] = []
    with admin(str(settings.DATABASES["default"]["NAME"])) as connection:
        yield connection, made
        for business in made:
            connection.execute("DELETE FROM scheduling_visit WHERE tenant_id = %s", [business])
            connection.execute("DELETE FROM clients_homeaccess WHERE tenant_id = %s", [business])
            connection.execute(
                "DELETE FROM clients_clientnamepart WHERE tenant_id = %s", [business]
            )
            connection.execute("DELETE FROM clients_client WHERE tenant_id = %s", [business])
            connection.execute("DELETE FROM tenancy_business WHERE id = %s", [business])
            keystore.destroy(business)


@pytest.fixture
def restored_name() -> Iterator[str]:
    name = f"{settings.DATABASES['default']['NAME']}_restored"
    yield name
    with admin("postgres") as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_from_before_the_deletion_reads_for_everyone_but_the_deleted_business(
    live: tuple[psycopg.Connection[Any], list[uuid.UUID]],
    restored_name: str,
    tmp_path: Path,
    settings: Any,
) -> None:
    identities = backup_keys(settings)
    connection, made = live
    deleted, kept = committed_business(connection, "gone"), committed_business(connection, "kept")
    made += [deleted["id"], kept["id"]]

    # The nightly backup, taken while both businesses exist (lifecycle/backups/).
    backup = run_backup(BackupStore(tmp_path / "backups"))

    # The business is deleted: its keys are destroyed (what do_delete_business does on commit).
    assert do_destroy_business_keys(deleted["id"], reason="business deleted")
    assert not keystore.path_for(deleted["id"]).exists()

    # Restore the backup into a new database and read it with the live keystore.
    restore_backup(backup, identities, restored_name)
    with admin(restored_name) as restored:
        rows = restored.execute(
            "SELECT tenant_id, id, email, phone, address, notes FROM clients_client"
            " WHERE tenant_id = ANY(%s)",
            [[deleted["id"], kept["id"]]],
        ).fetchall()
        homes = restored.execute(
            "SELECT tenant_id, client_id, instructions, door_code, alarm_code"
            " FROM clients_homeaccess WHERE tenant_id = ANY(%s)",
            [[deleted["id"], kept["id"]]],
        ).fetchall()
        visits = restored.execute(
            "SELECT tenant_id, id, client_id, request_note, report FROM scheduling_visit"
            " WHERE tenant_id = ANY(%s)",
            [[deleted["id"], kept["id"]]],
        ).fetchall()
    assert (len(rows), len(homes), len(visits)) == (6, 6, 6), "the backup holds both businesses"
    places = [
        (tenant, "clients_client", column, client, client, blob)
        for tenant, client, *blobs in rows
        for column, blob in zip(SEALED, blobs, strict=True)
    ]
    places += [
        (tenant, "clients_homeaccess", column, client, client, blob)
        for tenant, client, *blobs in homes
        for column, blob in zip(HOME, blobs, strict=True)
    ]
    places += [
        (tenant, "scheduling_visit", column, visit, client, blob)
        for tenant, visit, client, *blobs in visits
        for column, blob in zip(VISIT, blobs, strict=True)
    ]
    readable, shredded = {}, []
    for tenant, table, column, row, client, blob in places:
        key = (client, column) if table == "clients_client" else (client, (table, column))
        try:
            readable[key] = open_text(tenant, table, column, row, bytes(blob))
        except KeyUnavailable:
            shredded.append((tenant, key))
    assert readable == {
        (client, column): value
        for client, values in kept["clients"].items()
        for column, value in values.items()
    }
    assert sorted(shredded, key=str) == sorted(
        (
            (deleted["id"], (client, column))
            for client, values in deleted["clients"].items()
            for column in values
        ),
        key=str,
    )
