"""The migrations that introduced encryption seal the plaintext rows that were already there.

A scratch database is migrated only up to the state before encryption (clients 0003_rls,
scheduling 0002_rls), filled with plaintext rows the way the old code stored them (as the
database superuser, which row-level security does not hold back), then migrated the rest of the
way, with a keystore of this test only, where the migrations make the businesses' keys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction

from custodia import embedded
from custodia.clients.models import Client, email_key, phone_key
from custodia.crypto import keyring, keystore
from custodia.crypto.errors import IntegrityFailure
from custodia.crypto.fields import open_text, value_context
from custodia.crypto.keyring import Unauthentic, blind_index, version_of
from custodia.crypto.rows import enter_business
from custodia.ops.management.commands.setup import (
    drop_database,
    open_database,
    point_connections_at,
)

SEALED_COLUMNS = {
    "clients_client": ("id", ("email", "phone", "address", "notes")),
    "clients_homeaccess": ("client_id", ("instructions", "door_code", "alarm_code")),
    "scheduling_visit": ("id", ("request_note", "report")),
}
SHARED_EMAIL = "Shared.Person@Example.TEST"  # one address in both businesses
NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class OldBusiness:
    """A business of before the encryption, with what its rows held in plaintext."""

    slug: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    # (table, column, row) -> plaintext
    values: dict[tuple[str, str, uuid.UUID], str] = field(default_factory=dict)
    # client id -> (email, phone)
    contacts: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)


@pytest.fixture
def pre_encryption_database(
    django_db_setup: None, django_db_blocker: Any, tmp_path: Path
) -> Iterator[str]:
    """A scratch database migrated up to just before encryption, and a keystore of its own."""
    original = dict(settings.DATABASES["default"])
    original_keystore = settings.KEYSTORE_DIR
    name = f"{settings.DATABASES['default']['NAME']}_migration"
    with django_db_blocker.unblock():
        try:
            settings.KEYSTORE_DIR = tmp_path / "keys"
            keyring.reset()
            open_database(name, fresh=True)
            for app, migration in (("clients", "0003_rls"), ("scheduling", "0002_rls")):
                call_command(
                    "migrate", app, migration, database="owner", interactive=False, verbosity=0
                )
            yield name
        finally:
            drop_database(name)
            point_connections_at(original["NAME"], original["HOST"])
            settings.KEYSTORE_DIR = original_keystore
            keyring.reset()


def insert_old_rows(database: str, business: OldBusiness, clients: list[dict[str, str]]) -> None:
    """The business and its clients, home access and visits, stored as the old code did."""
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as conn:
        conn.execute(
            "INSERT INTO tenancy_business (id, name, slug, access_window_before_hours, "
            "access_window_after_hours, created_at) VALUES (%s, %s, %s, 24, 12, %s)",
            [business.id, business.slug.title(), business.slug, NOW],
        )
        for number, client in enumerate(clients):
            client_id, visit_id = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                "INSERT INTO clients_client (id, tenant_id, name, email, phone, address, notes, "
                "name_search, email_search, phone_search, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    client_id,
                    business.id,
                    f"Client {number}",
                    client["email"],
                    client["phone"],
                    client["address"],
                    client["notes"],
                    f"client {number}",
                    client["email"].lower(),
                    "".join(ch for ch in client["phone"] if ch.isdigit()),
                    NOW,
                    NOW,
                ],
            )
            conn.execute(
                "INSERT INTO clients_homeaccess (client_id, tenant_id, instructions, door_code, "
                "alarm_code, updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    client_id,
                    business.id,
                    client["instructions"],
                    client["door_code"],
                    client["alarm_code"],
                    NOW,
                ],
            )
            conn.execute(
                "INSERT INTO scheduling_visit (id, tenant_id, client_id, starts_at, ends_at, "
                "status, request_note, report, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, 'completed', %s, %s, %s, %s)",
                [
                    visit_id,
                    business.id,
                    client_id,
                    NOW,
                    NOW + dt.timedelta(hours=2),
                    client["request_note"],
                    client["report"],
                    NOW,
                    NOW,
                ],
            )
            business.contacts[client_id] = (client["email"], client["phone"])
            for table, (_pk, columns) in SEALED_COLUMNS.items():
                row = visit_id if table == "scheduling_visit" else client_id
                for column in columns:
                    business.values[(table, column, row)] = client[column]


def stored(database: str, table: str, column: str, row: uuid.UUID) -> bytes:
    pk = SEALED_COLUMNS[table][0]
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as conn:
        found = conn.execute(
            f"SELECT {column} FROM {table} WHERE {pk} = %s",  # noqa: S608  (names from the test)
            [row],
        ).fetchone()
    assert found is not None and found[0] is not None, (table, column, row)
    assert isinstance(found[0], bytes | memoryview), f"{table}.{column} is not bytea"
    return bytes(found[0])


ALPHA_CLIENTS = [
    {
        "email": SHARED_EMAIL,
        "phone": "+31 (6) 1234-5678",
        "address": "Rue de l'Église 5, Zürich",
        "notes": 'Spare key: C:\\keys\\spare; says "hello" \u2014 \U0001f44d',
        "instructions": "Key behind the blue pot; dog's name is Bo\\b",
        "door_code": "4412#",
        "alarm_code": "0'0\"77",
        "request_note": "Please come before noon \u2615",
        "report": "Found the back door open; closed it.",
    },
    {
        "email": "",
        "phone": "",
        "address": "",
        "notes": "",
        "instructions": "",
        "door_code": "",
        "alarm_code": "",
        "request_note": "",
        "report": "",
    },
]
BRAVO_CLIENTS = [
    {
        "email": SHARED_EMAIL.lower(),
        "phone": "06-12345678",
        "address": "Keizersgracht 1, Amsterdam",
        "notes": "Bravo's only client \u00e9\u00e8",
        "instructions": "Ring twice",
        "door_code": "1234",
        "alarm_code": "9876",
        "request_note": "Any time",
        "report": "All well",
    },
]


def test_the_encryption_migrations_seal_existing_plaintext_rows(
    pre_encryption_database: str,
) -> None:
    database = pre_encryption_database
    alpha, bravo = OldBusiness("alpha-old"), OldBusiness("bravo-old")
    insert_old_rows(database, alpha, ALPHA_CLIENTS)
    insert_old_rows(database, bravo, BRAVO_CLIENTS)
    assert keystore.business_ids() == []

    call_command("migrate", database="owner", interactive=False, verbosity=0)

    # The migration made each business's keys, in the configured keystore.
    assert keystore.business_ids() == sorted([alpha.id, bravo.id])
    for business in (alpha, bravo):
        assert keystore.path_for(business.id).is_file()

    blobs: dict[tuple[uuid.UUID, str, str, uuid.UUID], bytes] = {}
    for business in (alpha, bravo):
        for (table, column, row), plaintext in business.values.items():
            blob = stored(database, table, column, row)
            blobs[(business.id, table, column, row)] = blob
            assert blob[:1] == b"\x01", (table, column)
            assert version_of(blob) == 1, (table, column)
            if plaintext:
                assert plaintext.encode() not in blob, (table, column)
            assert open_text(business.id, table, column, row, blob) == plaintext

    # The search keys are the business's blind indexes now, not the lower-cased text or digits.
    search: dict[uuid.UUID, tuple[bytes | None, bytes | None]] = {}
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as conn:
        for client, email_search, phone_search in conn.execute(
            "SELECT id, email_search, phone_search FROM clients_client"
        ).fetchall():
            search[client] = (
                None if email_search is None else bytes(email_search),
                None if phone_search is None else bytes(phone_search),
            )
    for business in (alpha, bravo):
        for client, (email, phone) in business.contacts.items():
            expected_email = blind_index(business.id, "email", email_key(email))
            expected_phone = blind_index(business.id, "phone", phone_key(phone))
            assert search[client] == (expected_email, expected_phone)
            assert (expected_email is None) == (email == "")
            assert (expected_phone is None) == (phone == "")
    # Equal addresses in two businesses do not match: the index keys are per business.
    alpha_shared = next(c for c, (e, _p) in alpha.contacts.items() if e == SHARED_EMAIL)
    bravo_shared = next(iter(bravo.contacts))
    assert search[alpha_shared][0] is not None
    assert search[alpha_shared][0] != search[bravo_shared][0]

    # The model reads the migrated rows back (the owner role in Alpha's row-level context).
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        enter_business(cursor, alpha.id)
        client = Client.objects.using("owner").get(pk=alpha_shared)
        assert client.email == SHARED_EMAIL
        assert client.notes == ALPHA_CLIENTS[0]["notes"]
        assert client.address == ALPHA_CLIENTS[0]["address"]

    # A value moved to the other business's row does not open: per-business keys and places.
    alpha_visit = next(r for (t, c, r) in alpha.values if t == "scheduling_visit")
    bravo_visit = next(r for (t, c, r) in bravo.values if t == "scheduling_visit")
    with embedded.admin_connection(settings.ADMIN_DATABASE, database) as conn:
        conn.execute(
            "UPDATE clients_client SET email = (SELECT email FROM clients_client WHERE id = %s) "
            "WHERE id = %s",
            [alpha_shared, bravo_shared],
        )
        conn.execute(
            "UPDATE scheduling_visit SET report = (SELECT report FROM scheduling_visit "
            "WHERE id = %s) WHERE id = %s",
            [bravo_visit, alpha_visit],
        )
    moved_email = stored(database, "clients_client", "email", bravo_shared)
    assert moved_email == blobs[(alpha.id, "clients_client", "email", alpha_shared)]
    with pytest.raises(IntegrityFailure):
        open_text(bravo.id, "clients_client", "email", bravo_shared, moved_email)
    moved_report = stored(database, "scheduling_visit", "report", alpha_visit)
    with pytest.raises(IntegrityFailure):
        open_text(alpha.id, "scheduling_visit", "report", alpha_visit, moved_report)
    # Not only the place: Bravo's key does not open Alpha's value even at Alpha's own place.
    place = value_context(alpha.id, "clients_client", "email", alpha_shared)
    with pytest.raises(Unauthentic):
        keyring.keys_for(bravo.id).open(moved_email, place)
    assert keyring.keys_for(alpha.id).open(moved_email, place) == SHARED_EMAIL
