"""`custodia setup` gives the database roles exactly their attributes: a superuser admin corrects
a wrong role, an admin that cannot makes setup fail rather than run on an insecure role
(docs/operations.md). Scratch roles stand in for custodia_app and custodia_owner."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from custodia import embedded

ATTRIBUTES = (
    "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit, rolcanlogin"
    " FROM pg_roles WHERE rolname = %s"
)


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch, django_db_setup: None) -> Iterator[dict[str, str]]:
    """Scratch names for the app, owner and a non-superuser admin role; dropped afterwards."""
    names = {kind: f"custodia_test_{kind}_{os.getpid()}" for kind in ("app", "owner", "admin")}
    wanted = embedded.ROLE_ATTRIBUTES
    monkeypatch.setattr(embedded, "APP_ROLE", names["app"])
    monkeypatch.setattr(embedded, "OWNER_ROLE", names["owner"])
    monkeypatch.setattr(
        embedded,
        "ROLE_ATTRIBUTES",
        {names["app"]: wanted["custodia_app"], names["owner"]: wanted["custodia_owner"]},
    )
    try:
        yield names
    finally:
        with superuser() as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def superuser() -> psycopg.Connection[Any]:
    return embedded.admin_connection(settings.ADMIN_DATABASE, "postgres")


def attributes(conn: psycopg.Connection[Any], role: str) -> tuple[bool, ...]:
    row = conn.execute(ATTRIBUTES, [role]).fetchone()
    assert row is not None
    return tuple(row)


def create(conn: psycopg.Connection[Any], role: str, clause: str) -> None:
    conn.execute(sql.SQL("CREATE ROLE {} " + clause).format(sql.Identifier(role)))


def test_a_superuser_admin_corrects_roles_with_wrong_attributes(roles: dict[str, str]) -> None:
    with superuser() as conn:
        create(conn, roles["app"], "LOGIN SUPERUSER BYPASSRLS CREATEDB CREATEROLE INHERIT")
        create(conn, roles["owner"], "LOGIN BYPASSRLS")
        embedded._ensure_roles(conn, "app-password")
        assert attributes(conn, roles["app"]) == (False, False, False, False, False, True)
        assert attributes(conn, roles["owner"]) == (False, False, False, False, True, False)


def test_an_admin_that_cannot_correct_a_wrong_role_makes_setup_fail(
    roles: dict[str, str],
) -> None:
    password = secrets.token_urlsafe(16)
    with superuser() as conn:
        # The app role can bypass row-level security: a role someone made by hand, wrongly.
        create(conn, roles["app"], "LOGIN NOSUPERUSER BYPASSRLS NOINHERIT")
        create(conn, roles["owner"], "NOLOGIN")
        create(conn, roles["admin"], "LOGIN CREATEROLE CREATEDB NOSUPERUSER")
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(roles["admin"]), sql.Literal(password)
            )
        )
    admin = {**settings.ADMIN_DATABASE, "USER": roles["admin"], "PASSWORD": password}
    database = f"{roles['app']}_db"
    # What `custodia setup` runs with that admin.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        embedded.provision_database(admin, database, "app-password")
    with superuser() as conn:
        # Still wrong, and setup stopped: no database was made to run on it.
        assert attributes(conn, roles["app"])[1] is True
        made = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        assert made.fetchone() is None
