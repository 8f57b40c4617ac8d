"""The row-level security context, settable only by whoever holds the context key.

Before this, policies read `custodia.*` settings, and any session of the app role (a leaked
password, `custodia dbshell`, an SQL injection) could set them with `set_config` and read every
business. Now:

- `custodia_db_context` (UNLOGGED: it only ever describes live transactions) holds one row per
  backend: the context and the id of the transaction it was set in. Only its owner may touch it.
- `custodia_set_context(key, ...)` (SECURITY DEFINER) is the only way in for the app role: it
  checks the key against the SHA-256 digest in `custodia_context_key` (written by `custodia
  setup` from `CUSTODIA_DB_CONTEXT_KEY`; the app role cannot read it), then writes this backend's
  row, stamped with the current transaction's id. Sessions of the owner role (migrations,
  `custodia keys`, `custodia audit`) need no key: they own the tables anyway.
- The reader functions (`custodia_tenant_id()` and siblings) return the row of this backend only
  while its transaction is the one that wrote it: a context ends with its transaction (and a
  rolled-back savepoint takes its own with it), as the transaction-local settings did. Transaction
  ids never repeat, so nothing lingers into the next transaction on a pooled connection.
- Every existing policy is rewritten to call the readers once per query (`rls.once_per_query`).
- Audit events may be inserted only in a verified context: a hand-made one cannot add to any
  chain.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations

from custodia.core.rls import CONTEXT_FUNCTIONS, once_per_query

APP = settings.APP_DB_ROLE
OWNER = settings.OWNER_DB_ROLE

# The row of this backend, in this transaction (the readers' one condition).
THIS_TRANSACTION = "c.pid = pg_backend_pid() AND c.xid = pg_current_xact_id_if_assigned()"


def _reader(name: str, returns: str, expression: str, default: str) -> str:
    """`custodia_<name>()`: `expression` over this transaction's row, `default` without one.

    PL/pgSQL, not SQL: a SECURITY DEFINER function is never inlined, and PL/pgSQL keeps its
    query plan for the session where a SQL function plans its query at every call (0.1-0.2 ms
    each, measured). PARALLEL RESTRICTED: in a parallel worker, pg_backend_pid() would name the
    worker.
    """
    return f"""
CREATE OR REPLACE FUNCTION custodia_{name}() RETURNS {returns}
  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
  SET search_path = pg_catalog, public, pg_temp
  AS $$ BEGIN RETURN coalesce((SELECT {expression} FROM public.custodia_db_context c
    WHERE {THIS_TRANSACTION}), {default}); END $$;
REVOKE ALL ON FUNCTION custodia_{name}() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_{name}() TO {APP};"""


# name: (type, expression, value without a context)
READERS = {
    "tenant_id": ("uuid", "c.tenant_id", "NULL"),
    "user_id": ("uuid", "c.user_id", "NULL"),
    "membership_id": ("uuid", "c.membership_id", "NULL"),
    "client_id": ("uuid", "c.client_id", "NULL"),
    "lookup": ("text", "c.lookup", "NULL"),
    "role": ("text", "c.role", "''"),
    "is_manager": ("boolean", "c.role IN ('owner', 'manager')", "false"),
}
assert set(READERS) == set(CONTEXT_FUNCTIONS)

FORWARD: list[Any] = [
    """CREATE UNLOGGED TABLE custodia_db_context (
        pid integer PRIMARY KEY,
        xid xid8 NOT NULL,
        tenant_id uuid, user_id uuid, membership_id uuid, client_id uuid,
        role text NOT NULL DEFAULT '',
        lookup text)""",
    """CREATE TABLE custodia_context_key (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        digest bytea NOT NULL CHECK (length(digest) = 32))""",
    # The owner's default privileges grant the app role every new table: not these two.
    f"REVOKE ALL ON custodia_db_context, custodia_context_key FROM PUBLIC, {APP}",
    f"""CREATE FUNCTION custodia_check_context_key(key text) RETURNS void
  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (
      SELECT 1 FROM public.custodia_context_key k
      WHERE k.digest = sha256(convert_to(coalesce(key, ''), 'UTF8')))
    AND NOT pg_has_role(session_user, '{OWNER}', 'MEMBER') THEN
    RAISE EXCEPTION 'custodia: wrong or missing database context key'
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'run custodia setup with the CUSTODIA_DB_CONTEXT_KEY the app uses';
  END IF;
END $$""",
    "REVOKE ALL ON FUNCTION custodia_check_context_key(text) FROM PUBLIC",
    """CREATE FUNCTION custodia_set_context(
        key text, tenant uuid, usr uuid, membership uuid, client uuid, role_name text,
        lookup_prefix text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  INSERT INTO public.custodia_db_context AS c
      (pid, xid, tenant_id, user_id, membership_id, client_id, role, lookup)
    VALUES (pg_backend_pid(), pg_current_xact_id(), tenant, usr, membership, client,
      coalesce(role_name, ''), nullif(lookup_prefix, ''))
    ON CONFLICT (pid) DO UPDATE SET xid = EXCLUDED.xid, tenant_id = EXCLUDED.tenant_id,
      user_id = EXCLUDED.user_id, membership_id = EXCLUDED.membership_id,
      client_id = EXCLUDED.client_id, role = EXCLUDED.role, lookup = EXCLUDED.lookup;
END $$""",
    "REVOKE ALL ON FUNCTION custodia_set_context(text, uuid, uuid, uuid, uuid, text, text)"
    " FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION custodia_set_context(text, uuid, uuid, uuid, uuid, text, text)"
    f" TO {APP}",
    # A verified context for this transaction, empty unless one is already set: what the platform
    # chain's events (sign-ins, session ends) need wherever they are recorded.
    """CREATE FUNCTION custodia_ensure_context(key text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  INSERT INTO public.custodia_db_context AS c (pid, xid)
    VALUES (pg_backend_pid(), pg_current_xact_id())
    ON CONFLICT (pid) DO UPDATE SET xid = EXCLUDED.xid, tenant_id = NULL, user_id = NULL,
      membership_id = NULL, client_id = NULL, role = '', lookup = NULL
    WHERE c.xid <> EXCLUDED.xid;
END $$""",
    "REVOKE ALL ON FUNCTION custodia_ensure_context(text) FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION custodia_ensure_context(text) TO {APP}",
    *(_reader(name, *definition) for name, definition in READERS.items()),
    # Whether this transaction's context was set by the function (every request's is, even
    # with no one logged in): what an audit insert requires.
    f"""CREATE FUNCTION custodia_context_verified() RETURNS boolean
  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
  SET search_path = pg_catalog, public, pg_temp
  AS $$ BEGIN RETURN EXISTS (SELECT 1 FROM public.custodia_db_context c
    WHERE {THIS_TRANSACTION}); END $$;
REVOKE ALL ON FUNCTION custodia_context_verified() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_context_verified() TO {APP};""",
    "DROP POLICY audit_auditevent_insert ON audit_auditevent",
    "CREATE POLICY audit_auditevent_insert ON audit_auditevent FOR INSERT WITH CHECK ("
    " (SELECT custodia_context_verified())"
    " AND (tenant_id IS NULL OR tenant_id = (SELECT custodia_tenant_id())))",
]


def rewrite_policies(apps: Any, schema_editor: Any) -> None:
    """Every policy calls the context readers once per query (tables guarded before this)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, policyname, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public'"
        )
        for table, policy, using, check in cursor.fetchall():
            clauses = []
            if using is not None and once_per_query(using) != using:
                clauses.append(f"USING ({once_per_query(using)})")
            if check is not None and once_per_query(check) != check:
                clauses.append(f"WITH CHECK ({once_per_query(check)})")
            if clauses:
                schema_editor.execute(f'ALTER POLICY "{policy}" ON "{table}" ' + " ".join(clauses))


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0004_invitation_sender_and_erasure"),
        ("accounts", "0005_business_deletion"),
        ("audit", "0003_action_index"),
        ("clients", "0005_sealed_checks"),
        ("scheduling", "0004_sealed_checks"),
    ]

    operations = [
        migrations.RunSQL(FORWARD),
        migrations.RunPython(rewrite_policies, migrations.RunPython.noop),
    ]
