"""Someone with the app role's password (dbshell, a leak, an SQL injection) but not the context key.

Each test opens its own connections as custodia_app, so what one commits the others see, and
cleans up after itself through the verified path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from custodia.core.dbcontext import set_db_context
from custodia.core.rls import once_per_query
from tests.security.support import TENANT_TABLES

pytestmark = pytest.mark.django_db

HAND_SET = (
    "SELECT set_config('custodia.tenant_id', %(tenant)s, true),"
    " set_config('custodia.user_id', %(user)s, true),"
    " set_config('custodia.role', 'owner', true),"
    " set_config('custodia.lookup', 'anything', true)"
)
VERIFIED = "SELECT custodia_set_context(%s, %s, NULL, NULL, NULL, 'owner', NULL)"
PLATFORM_EVENT = """INSERT INTO audit_auditevent (id, tenant_id, lane, seq, occurred_at,
    actor_user_id, actor_role, action, outcome, target_type, target_id, client_id, subject_ids,
    ip, user_agent, request_id, purpose, detail, hash)
    VALUES (0, %s, 0, 0, now(), %s, '', 'auth.login', 'ok', '', '', NULL, NULL, NULL, '', '',
    '', '{}', '')"""


def app_connection() -> psycopg.Connection:
    """A connection of its own as custodia_app to the test database."""
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,
    )


@contextmanager
def committed_business() -> Iterator[uuid.UUID]:
    """A business committed through the verified path (so other connections could see it),
    deleted again afterwards."""
    tenant = uuid.uuid4()
    with app_connection() as conn:
        with conn.transaction():
            conn.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
            conn.execute(
                "INSERT INTO tenancy_business (id, name, slug, access_window_before_hours,"
                " access_window_after_hours, created_at) VALUES (%s, 'Tmp', %s, 24, 12, now())",
                [tenant, f"tmp-{tenant.hex[:10]}"],
            )
        try:
            yield tenant
        finally:
            with conn.transaction():
                conn.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
                conn.execute("DELETE FROM tenancy_business WHERE id = %s", [tenant])


def visible(conn: psycopg.Connection, tenant: uuid.UUID) -> int:
    row = conn.execute("SELECT count(*) FROM tenancy_business WHERE id = %s", [tenant]).fetchone()
    return int(row[0]) if row else 0


def test_hand_set_settings_see_no_row_and_write_no_audit_event(db: None) -> None:
    with committed_business() as tenant, app_connection() as attacker:
        with attacker.transaction():
            attacker.execute(HAND_SET, {"tenant": str(tenant), "user": str(uuid.uuid4())})
            assert visible(attacker, tenant) == 0
            for table in TENANT_TABLES:
                row = attacker.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
                assert row == (0,), f"{table} read with hand-set settings"
            assert attacker.execute("SELECT custodia_tenant_id(), custodia_role()").fetchone() == (
                None,
                "",
            )
        # No event into the business's chain, nor into the platform chain (a forged sign-in).
        for chain in (tenant, None):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                with attacker.transaction():
                    attacker.execute(HAND_SET, {"tenant": str(tenant), "user": str(uuid.uuid4())})
                    attacker.execute(PLATFORM_EVENT, [chain, uuid.uuid4()])
        # Sanity: the same connection with the key sees the row (so the test can fail).
        with attacker.transaction():
            attacker.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
            assert visible(attacker, tenant) == 1


@pytest.mark.parametrize("key", ["", "wrong", "x" * 64, None])
def test_a_wrong_key_is_refused(db: None, key: str | None) -> None:
    with committed_business() as tenant, app_connection() as attacker:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="context key"):
            attacker.execute(VERIFIED, [key, str(tenant)])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="context key"):
            attacker.execute("SELECT custodia_ensure_context(%s)", [key])
        assert visible(attacker, tenant) == 0


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM custodia_context_key",
        "SELECT * FROM custodia_db_context",
        "INSERT INTO custodia_db_context (pid, xid)"
        " VALUES (pg_backend_pid(), pg_current_xact_id())",
        "UPDATE custodia_db_context SET role = 'owner'",
        "DELETE FROM custodia_context_key",
        "INSERT INTO custodia_context_key (digest) VALUES (sha256('x'))",
        "SELECT custodia_check_context_key('x')",
        "ALTER FUNCTION custodia_tenant_id() OWNER TO custodia_app",
        "CREATE OR REPLACE FUNCTION custodia_tenant_id() RETURNS uuid LANGUAGE sql"
        " AS $$ SELECT NULL::uuid $$",
    ],
)
def test_the_app_role_cannot_touch_the_context_store(db: None, statement: str) -> None:
    with app_connection() as attacker, pytest.raises(psycopg.errors.InsufficientPrivilege):
        attacker.execute(statement)


def test_a_context_ends_with_its_transaction(db: None) -> None:
    with committed_business() as tenant, app_connection() as conn:
        with conn.transaction():
            conn.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
            assert visible(conn, tenant) == 1
        # The next transaction on the same connection (as on a pooled one) starts with none.
        with conn.transaction():
            assert visible(conn, tenant) == 0
        assert visible(conn, tenant) == 0  # nor does a statement outside any transaction
        # Nor does another backend see this one's context while it is live.
        with conn.transaction(), app_connection() as other:
            conn.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
            assert visible(conn, tenant) == 1
            assert visible(other, tenant) == 0


def test_the_key_never_appears_in_query_text(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    set_db_context(tenant_id=uuid.uuid4(), role="owner")
    with app_connection() as observer:
        row = observer.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    assert row is not None
    # What another session of the role sees of the app's last statement: the key is a bound
    # parameter, not text.
    assert "custodia_set_context($1" in row[0], row[0]
    assert settings.DB_CONTEXT_KEY not in row[0]


def test_every_policy_reads_the_verified_context_once_per_query(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, policyname, coalesce(qual, ''), coalesce(with_check, '')"
            " FROM pg_policies WHERE schemaname = 'public'"
        )
        policies = cursor.fetchall()
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        )
        functions = cursor.fetchall()
    assert len(policies) > 30
    for table, policy, using, check in policies:
        for expression in (using, check):
            assert once_per_query(expression) == expression, (table, policy)
            assert not re.search(r"custodia\.(tenant_id|user_id|role|lookup)", expression)
    # No function reads the old settings: the only `custodia.*` settings left are the business
    # deletion's and the audit purge's, each set and read by owner-only code.
    for name, source in functions:
        for setting in re.findall(r"current_setting\('custodia\.(\w+)'", source):
            assert setting in {"deleting_business", "audit_purge_before"}, name


def test_dbshell_opens_as_the_app_role_and_sees_nothing_by_hand(db: None) -> None:
    """`custodia dbshell` still works for an operator, and hand-set settings show them nothing."""
    env = {
        **os.environ,
        "CUSTODIA_VAR_DIR": str(settings.VAR_DIR),
        "CUSTODIA_DB_NAME": str(settings.DATABASES["default"]["NAME"]),
    }
    with committed_business() as tenant:
        # One query string is one transaction: psql prints the last statement's rows.
        script = (
            f"SELECT set_config('custodia.tenant_id', '{tenant}', true),"
            " set_config('custodia.role', 'owner', true);"
            f" SELECT current_user, count(*) FROM tenancy_business WHERE id = '{tenant}'"
        )
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "custodia.cli", "dbshell", "--", "-At", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "custodia_app|0" in result.stdout.splitlines(), result.stdout


@pytest.mark.django_db(databases=["default", "owner"])
def test_contexts_of_ended_backends_are_forgotten() -> None:
    from custodia.core.dbcontext import forget_ended_backends

    with committed_business() as tenant:
        with app_connection() as gone, gone.transaction():
            gone.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
            pid = gone.execute("SELECT pg_backend_pid()").fetchone()[0]
        with app_connection() as live:
            with live.transaction():
                live.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
                live_pid = live.execute("SELECT pg_backend_pid()").fetchone()[0]
            # The closed connection's backend may take a moment to leave pg_stat_activity.
            for _ in range(50):
                forget_ended_backends()
                if pid not in stored_pids():
                    break
                time.sleep(0.1)
            assert pid not in stored_pids()
            assert live_pid in stored_pids()
            with live.transaction():
                live.execute(VERIFIED, [settings.DB_CONTEXT_KEY, str(tenant)])
                assert visible(live, tenant) == 1


def stored_pids() -> set[int]:
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT pid FROM custodia_db_context")
        return {row[0] for row in cursor.fetchall()}
