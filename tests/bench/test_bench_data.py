"""`custodia bench-data`: generated rows obey the constraints, RLS and the search-key rules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings

from custodia import embedded
from custodia.clients.models import email_key, name_key, phone_key
from tests.servers import prepare_server_database


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
    """A fresh database with 3 businesses of 20 clients and a target business of 50."""
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
            ],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "custodia.settings",
                "CUSTODIA_DB_NAME": name,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "110 clients" in done.stdout
        yield name
    finally:
        embedded.drop_database(_admin(), name)


def test_every_row_belongs_to_a_tenant_and_keys_are_normalised(generated: str) -> None:
    with _connect(generated, _admin()["USER"]) as conn:
        rows = conn.execute(
            "SELECT tenant_id, name, email, phone, name_search, email_search, phone_search"
            " FROM clients_client"
        ).fetchall()
        assert len(rows) == 110
        for tenant, name, email, phone, name_search, email_search, phone_search in rows:
            assert tenant is not None
            assert name_search == name_key(name)
            assert email_search == email_key(email) and email_search != email
            assert phone_search == phone_key(phone)
        # Visits point at clients, staff and services of their own tenant (the deferred
        # same-tenant keys were checked at the generator's commit; this says so plainly).
        crossed = conn.execute(
            "SELECT count(*) FROM scheduling_visit v JOIN clients_client c ON c.id = v.client_id"
            " JOIN tenancy_membership m ON m.id = v.staff_id"
            " WHERE c.tenant_id <> v.tenant_id OR m.tenant_id <> v.tenant_id"
        ).fetchone()
        assert crossed == (0,)
        assert conn.execute("SELECT count(*) FROM scheduling_visit").fetchone() == (30,)
        owners = conn.execute(
            "SELECT count(*) FROM tenancy_membership WHERE role = 'owner'"
        ).fetchone()
        assert owners == (4,)


def test_generated_rows_are_isolated_by_rls(generated: str) -> None:
    with _connect(generated, settings.APP_DB_ROLE) as conn:
        # No tenant in the context: nothing at all.
        assert conn.execute("SELECT count(*) FROM clients_client").fetchone() == (0,)
        tenants = []
        with _connect(generated, _admin()["USER"]) as admin:
            tenants = admin.execute(
                "SELECT tenant_id, count(*) FROM clients_client GROUP BY tenant_id"
            ).fetchall()
        assert sorted(count for _, count in tenants) == [20, 20, 20, 50]
        for tenant, count in tenants:
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('custodia.tenant_id', %s, true),"
                    " set_config('custodia.role', 'owner', true)",
                    [str(tenant)],
                )
                seen = conn.execute("SELECT DISTINCT tenant_id FROM clients_client").fetchall()
                assert seen == [(tenant,)]
                total = conn.execute("SELECT count(*) FROM clients_client").fetchone()
                assert total == (count,)
            # A staff member with no assignments sees none of the business's clients.
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('custodia.tenant_id', %s, true),"
                    " set_config('custodia.role', 'staff', true)",
                    [str(tenant)],
                )
                assert conn.execute("SELECT count(*) FROM clients_client").fetchone() == (0,)


def test_baseline_views_are_refused_in_production() -> None:
    code = "import django; django.setup(); import custodia.urls"
    production = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "custodia.settings",
        "CUSTODIA_ENV": "production",
        "CUSTODIA_SECRET_KEY": "k" * 30 + "abcdefghijklmnopqrstuvwxyz",
        "CUSTODIA_PUBLIC_URL": "https://custodia.example.com",
        "CUSTODIA_SMTP_HOST": "smtp.example.com",
        "CUSTODIA_APP_DB_PASSWORD": "not-used-here",
        "CUSTODIA_BENCH_BASELINE": "1",
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=production, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "CUSTODIA_BENCH_BASELINE cannot be on when CUSTODIA_ENV=production" in done.stderr
    # Without the flag, production has no baseline URL at all.
    without = {**production, "CUSTODIA_BENCH_BASELINE": "0"}
    check = code + "; from django.urls import resolve; resolve('/bench/bare/clients/x/')"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", check], env=without, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "Resolver404" in done.stderr
