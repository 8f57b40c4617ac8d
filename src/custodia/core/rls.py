"""Row-level security as migration operations: one helper, so every table is guarded the same way.

Policies read the request's context (tenant, user, membership, client, role, lookup prefix)
through small functions, `custodia_tenant_id()` and its siblings. Since tenancy/0005 they read
it from `custodia_db_context`, a table only its owner can touch, written by
`custodia_set_context(key, ...)` alone (core/dbcontext.py); before, they read `custodia.*`
settings, which any session can set by hand. Each policy calls them as `(SELECT f())`, an
InitPlan run once per query, whose result is still an index condition.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import migrations

FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION custodia_tenant_id() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('custodia.tenant_id', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION custodia_user_id() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('custodia.user_id', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION custodia_membership_id() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('custodia.membership_id', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION custodia_client_id() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('custodia.client_id', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION custodia_role() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT coalesce(current_setting('custodia.role', true), '') $$;
CREATE OR REPLACE FUNCTION custodia_is_manager() RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT coalesce(current_setting('custodia.role', true), '') IN ('owner', 'manager') $$;
CREATE OR REPLACE FUNCTION custodia_lookup() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('custodia.lookup', true), '') $$;
"""

DROP_FUNCTIONS_SQL = """
DROP FUNCTION IF EXISTS custodia_tenant_id(), custodia_user_id(), custodia_membership_id(),
  custodia_client_id(),
  custodia_role(), custodia_is_manager(), custodia_lookup();
"""

CONTEXT_FUNCTIONS = (
    "tenant_id",
    "user_id",
    "membership_id",
    "client_id",
    "role",
    "is_manager",
    "lookup",
)
# A call of a context function not already wrapped as `(SELECT f())` (in a policy as written
# here, or as PostgreSQL prints one back: `( SELECT f() AS f)`).
_BARE_CALL = re.compile(r"(?<!SELECT )\b(custodia_(?:" + "|".join(CONTEXT_FUNCTIONS) + r")\(\))")


def once_per_query(expression: str) -> str:
    """Wrap each context-function call in a scalar subquery, so PostgreSQL evaluates it once
    per query (an InitPlan) instead of once per row: the functions are SECURITY DEFINER, which
    the planner never inlines."""
    return _BARE_CALL.sub(r"(SELECT \1)", expression)


# The clause every tenant-owned row starts from.
IN_TENANT = "tenant_id = custodia_tenant_id()"

# Who reads a membership: its own user; managers every one of their business; staff the
# non-client ones. scheduling/0002_rls widens it once visits exist: a client sees who visits them.
MEMBERSHIP_SELECT = f"""user_id = custodia_user_id() OR ({IN_TENANT} AND (custodia_is_manager()
    OR (custodia_role() = 'staff' AND role <> 'client')))"""


def guard_table(
    table: str,
    *,
    select: str,
    insert: str,
    update: str,
    delete: str,
    update_check: str | None = None,
) -> migrations.RunSQL:
    """Enable and force RLS on `table` with one policy per command.

    `update` says which rows may be changed; `update_check` (default: the same) what they may
    become.
    """
    forward: list[Any] = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_select ON {table} FOR SELECT USING ({once_per_query(select)})",
        f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({once_per_query(insert)})",
        f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({once_per_query(update)})"
        f" WITH CHECK ({once_per_query(update_check or update)})",
        f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({once_per_query(delete)})",
    ]
    backward: list[Any] = [
        *(
            f"DROP POLICY IF EXISTS {table}_{command} ON {table}"
            for command in ("select", "insert", "update", "delete")
        ),
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]
    return migrations.RunSQL(forward, backward)


# The client record of an acting client login (NULL for every other role), set from the same
# membership as the rest of the context; policies need no membership lookup to find it.
CLIENT_OF_ACTOR = "custodia_client_id()"


def tenant_key(table: str) -> migrations.RunSQL:
    """UNIQUE (tenant_id, id): what same-tenant foreign keys point at."""
    return migrations.RunSQL(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_tenant_key UNIQUE (tenant_id, id)",
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_tenant_key",
    )


def same_tenant(
    table: str, column: str, target: str, *, cascade: bool = False
) -> migrations.RunSQL:
    """`table.column` may only point at a row of `target` in the same tenant.

    Policies check a row's own tenant_id, and foreign-key checks bypass RLS, so without this a
    manager of A could attach B's client id to A's rows. Deletes and SET NULL stay with Django's
    plain foreign key; a NULL `column` is not checked (MATCH SIMPLE). Checked at commit, like
    Django's own foreign keys, because Django deletes rows behind a nullable CASCADE (a client's
    portal membership) after the row they point at. With `cascade`, the database itself deletes
    the rows with the one they point at (checked at once: a cascade is not deferrable), for rows
    that a closed business's guard or a purge must not leave to Django.
    """
    name = f"{table}_{column}_same_tenant"
    when = " ON DELETE CASCADE" if cascade else " DEFERRABLE INITIALLY DEFERRED"
    return migrations.RunSQL(
        f"ALTER TABLE {table} ADD CONSTRAINT {name}"
        f" FOREIGN KEY (tenant_id, {column}) REFERENCES {target} (tenant_id, id){when}",
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}",
    )


def closed_guard(table: str, events: str = "INSERT OR UPDATE OR DELETE") -> migrations.RunSQL:
    """A closed business's rows of `table` are read-only (the trigger function: tenancy/0008)."""
    return migrations.RunSQL(
        f"CREATE TRIGGER {table}_closed BEFORE {events} ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()",
        f"DROP TRIGGER IF EXISTS {table}_closed ON {table}",
    )
