"""`custodia bench-data`: generated rows obey the constraints, RLS, the search-key rules and
the encryption at rest (sealed values, blind indexes), like the app's own writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.test.utils import override_settings

from custodia import embedded
from custodia.clients.models import email_key, name_key, phone_key
from custodia.crypto.errors import IntegrityFailure
from custodia.crypto.fields import open_text
from custodia.crypto.keyring import BLIND_INDEX_BYTES, blind_index
from custodia.ops.management.commands.bench_data import PLAIN_TARGET_SLUG
from tests.servers import prepare_server_database

EMAIL = re.compile(r"^[A-Z][a-z]+\.[A-Z][a-z]+\.\d+@Example\.com$")
PHONE = re.compile(r"^\+1 555 \d{7}$")
ADDRESS = re.compile(r"^\d+ Bench Street$")
CLIENT_COLUMNS = "id, tenant_id, name, email, phone, address, notes, name_search, email_search,"
CLIENT_COLUMNS += " phone_search"


def _admin() -> dict[str, Any]:
    admin = dict(settings.ADMIN_DATABASE)
    if settings.EMBEDDED_DATABASE:
        admin["HOST"] = str(embedded.embedded_socket_dir(settings.EMBEDDED_PGDATA))
    return admin


def _connect(name: str, user: str) -> psycopg.Connection[Any]:
    admin = _admin()
    return psycopg.connect(
        dbname=name,
        user=user,
        password=(admin["PASSWORD"] if user == admin["USER"] else settings.APP_DB_PASSWORD) or None,
        host=admin["HOST"] or None,
        port=admin["PORT"] or None,
    )


@pytest.fixture(scope="module")
def generated() -> Iterator[str]:
    """A fresh database with 3 businesses of 20 clients and two target businesses of 50, one
    encrypted and one in the plaintext baseline's format; keys in this process's keystore."""
    name = f"custodia_benchdata_{os.getpid()}"
    prepare_server_database(name)
    try:
        done = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "custodia.cli",
                "bench-data",
                "--businesses",
                "3",
                "--clients-per-business",
                "20",
                "--target-clients",
                "50",
                "--target-visits",
                "30",
                "--plaintext-target",
            ],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "custodia.settings",
                "CUSTODIA_DB_NAME": name,
                "CUSTODIA_KEYSTORE_DIR": str(settings.KEYSTORE_DIR),
                "CUSTODIA_KEK_KEYRING_FILE": str(settings.KEK_KEYRING_FILE),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "160 clients" in done.stdout
        yield name
    finally:
        embedded.drop_database(_admin(), name)


def _plain_tenant(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute(
        "SELECT id FROM tenancy_business WHERE slug = %s", [PLAIN_TARGET_SLUG]
    ).fetchone()
    assert row is not None
    return row[0]


def test_every_row_belongs_to_a_tenant_and_is_sealed_for_its_place(generated: str) -> None:
    with _connect(generated, _admin()["USER"]) as conn:
        plain = _plain_tenant(conn)
        rows = conn.execute(
            f"SELECT {CLIENT_COLUMNS} FROM clients_client WHERE tenant_id <> %s", [plain]
        ).fetchall()
        assert len(rows) == 110
        for client, tenant, name, *sealed, name_search, email_search, phone_search in rows:
            assert tenant is not None
            assert name_search == name_key(name)
            # Every value opens with its business's key at exactly its own place (the row id
            # and column are in the associated data: a value written for another row fails).
            email, phone, address, notes = (
                open_text(tenant, "clients_client", column, client, bytes(blob))
                for column, blob in zip(("email", "phone", "address", "notes"), sealed, strict=True)
            )
            assert EMAIL.match(email) and PHONE.match(phone) and ADDRESS.match(address)
            assert notes == ""
            assert all(bytes(blob)[:1] == b"\x01" for blob in sealed)
            # The searches hold the business's keyed blind indexes of the normalised values.
            assert bytes(email_search) == blind_index(tenant, "email", email_key(email))
            assert bytes(phone_search) == blind_index(tenant, "phone", phone_key(phone))
            assert len(bytes(email_search)) == BLIND_INDEX_BYTES
        with pytest.raises(IntegrityFailure):
            # The same ciphertext read as another client's email does not authenticate.
            first, second = rows[0], rows[1]
            open_text(first[1], "clients_client", "email", second[0], bytes(first[3]))
        visits = conn.execute(
            "SELECT id, tenant_id, request_note, report FROM scheduling_visit"
            " WHERE tenant_id <> %s",
            [plain],
        ).fetchall()
        assert len(visits) == 30
        for visit, tenant, note, report in visits:
            assert open_text(tenant, "scheduling_visit", "request_note", visit, bytes(note)) == ""
            assert open_text(tenant, "scheduling_visit", "report", visit, bytes(report)) == ""
        # Visits point at clients, staff and services of their own tenant (the deferred
        # same-tenant keys were checked at the generator's commit; this says so plainly).
        crossed = conn.execute(
            "SELECT count(*) FROM scheduling_visit v JOIN clients_client c ON c.id = v.client_id"
            " JOIN tenancy_membership m ON m.id = v.staff_id"
            " WHERE c.tenant_id <> v.tenant_id OR m.tenant_id <> v.tenant_id"
        ).fetchone()
        assert crossed == (0,)
        assert conn.execute("SELECT count(*) FROM scheduling_visit").fetchone() == (60,)
        owners = conn.execute(
            "SELECT count(*) FROM tenancy_membership WHERE role = 'owner'"
        ).fetchone()
        assert owners == (5,)


def test_a_dump_of_the_encrypted_businesses_holds_no_email_or_address(generated: str) -> None:
    with _connect(generated, _admin()["USER"]) as conn:
        plain = _plain_tenant(conn)
        dump = bytearray()
        with conn.cursor() as cursor:
            query = "COPY (SELECT * FROM clients_client WHERE tenant_id <> %s) TO STDOUT"
            with cursor.copy(query, [plain]) as copy:
                for chunk in copy:
                    dump += chunk
        text = bytes(dump).lower()
        assert text.count(b"\n") == 110
        # Neither as text nor in bytea's hex form (COPY writes bytea as lowercase hex).
        needles = (b"@Example.com", b"Bench Street", b"+1 555")
        for needle in needles:
            assert needle.lower() not in text
            assert needle.hex().encode() not in text
        # The plaintext baseline's rows, by contrast, do show them (the check can fail).
        row = conn.execute(
            "SELECT encode(email, 'hex') FROM clients_client WHERE tenant_id = %s LIMIT 1", [plain]
        ).fetchone()
        assert row is not None and needles[0].hex() in row[0]


def test_the_plaintext_target_is_in_the_baseline_format_and_refused_when_encrypting(
    generated: str,
) -> None:
    with _connect(generated, _admin()["USER"]) as conn:
        plain = _plain_tenant(conn)
        rows = conn.execute(
            f"SELECT {CLIENT_COLUMNS} FROM clients_client WHERE tenant_id = %s", [plain]
        ).fetchall()
        assert len(rows) == 50
        for client, _, _, email, phone, address, notes, _, email_search, phone_search in rows:
            email, phone = bytes(email), bytes(phone)
            assert email[:1] == b"\x00" and EMAIL.match(email[1:].decode())
            assert phone[:1] == b"\x00" and PHONE.match(phone[1:].decode())
            assert bytes(address)[:1] == b"\x00" and bytes(notes) == b"\x00"
            assert bytes(email_search) == b"email:" + email_key(email[1:].decode()).encode()
            assert bytes(phone_search) == b"phone:" + phone_key(phone[1:].decode()).encode()
            with override_settings(FIELD_ENCRYPTION=False):
                assert (
                    open_text(plain, "clients_client", "email", client, email) == email[1:].decode()
                )
        # With encryption on (every real server), such a row is refused like tampering.
        with pytest.raises(IntegrityFailure):
            open_text(plain, "clients_client", "email", rows[0][0], bytes(rows[0][3]))
        users = conn.execute(
            "SELECT u.email FROM tenancy_membership m JOIN accounts_user u ON u.id = m.user_id"
            " WHERE m.tenant_id = %s AND m.role = 'owner'",
            [plain],
        ).fetchall()
        assert users == [("owner@bench-target-plain.invalid",)]
        assert conn.execute(
            "SELECT count(*) FROM scheduling_visit WHERE tenant_id = %s AND report = '\\x00'",
            [plain],
        ).fetchone() == (30,)


def test_generated_rows_are_isolated_by_rls(generated: str) -> None:
    with _connect(generated, settings.APP_DB_ROLE) as conn:
        # No tenant in the context: nothing at all.
        assert conn.execute("SELECT count(*) FROM clients_client").fetchone() == (0,)
        tenants = []
        with _connect(generated, _admin()["USER"]) as admin:
            tenants = admin.execute(
                "SELECT tenant_id, count(*) FROM clients_client GROUP BY tenant_id"
            ).fetchall()
        assert sorted(count for _, count in tenants) == [20, 20, 20, 50, 50]
        for tenant, count in tenants:
            with conn.transaction():
                conn.execute(
                    "SELECT custodia_set_context(%s, %s, NULL, NULL, NULL, 'owner', NULL)",
                    [settings.DB_CONTEXT_KEY, str(tenant)],
                )
                seen = conn.execute("SELECT DISTINCT tenant_id FROM clients_client").fetchall()
                assert seen == [(tenant,)]
                total = conn.execute("SELECT count(*) FROM clients_client").fetchone()
                assert total == (count,)
            # A staff member with no assignments sees none of the business's clients.
            with conn.transaction():
                conn.execute(
                    "SELECT custodia_set_context(%s, %s, NULL, NULL, NULL, 'staff', NULL)",
                    [settings.DB_CONTEXT_KEY, str(tenant)],
                )
                assert conn.execute("SELECT count(*) FROM clients_client").fetchone() == (0,)


def test_baseline_views_are_refused_in_production() -> None:
    """The bare views live in bench/, mounted by bench/urls.py alone, and refuse production."""
    production = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "CUSTODIA_ENV": "production",
        "CUSTODIA_SECRET_KEY": "k" * 30 + "abcdefghijklmnopqrstuvwxyz",
        "CUSTODIA_PUBLIC_URL": "https://custodia.example.com",
        "CUSTODIA_SMTP_HOST": "smtp.example.com",
        "CUSTODIA_APP_DB_PASSWORD": "not-used-here",
        "CUSTODIA_VAULT_SIGNING_SECRET": "v" * 30 + "abcdefghijklmnopqrstuvwxyz",
        "CUSTODIA_BENCH_BASELINE": "1",
    }
    code = "import django; django.setup(); import bench.urls"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=production, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "CUSTODIA_BENCH_BASELINE cannot be on when CUSTODIA_ENV=production" in done.stderr
    # Custodia's own URLs have no baseline at all, whatever the flag says.
    own = {**production, "DJANGO_SETTINGS_MODULE": "custodia.settings"}
    check = (
        "import django; django.setup(); import custodia.urls;"
        " from django.urls import resolve; resolve('/bench/bare/clients/x/')"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", check], env=own, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "Resolver404" in done.stderr
