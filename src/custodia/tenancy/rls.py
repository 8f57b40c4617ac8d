"""Row-level security as migration operations: one helper, so every table is guarded the same way.

Policies read transaction-local settings (`custodia.tenant_id`, `custodia.user_id`,
`custodia.membership_id`, `custodia.role`, `custodia.lookup`) through small STABLE SQL functions
that the planner inlines, so `tenant_id = custodia_tenant_id()` stays an index condition.
"""

from __future__ import annotations

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
  custodia_role(), custodia_is_manager(), custodia_lookup();
"""

# The clause every tenant-owned row starts from.
IN_TENANT = "tenant_id = custodia_tenant_id()"


def guard_table(
    table: str,
    *,
    select: str,
    insert: str,
    update: str,
    delete: str,
) -> migrations.RunSQL:
    """Enable and force RLS on `table` with one policy per command."""
    forward = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_select ON {table} FOR SELECT USING ({select})",
        f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({insert})",
        f"CREATE POLICY {table}_update ON {table} FOR UPDATE USING ({update}) WITH CHECK ({update})",
        f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({delete})",
    ]
    backward = [
        *(f"DROP POLICY IF EXISTS {table}_{command} ON {table}"
          for command in ("select", "insert", "update", "delete")),
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]
    return migrations.RunSQL(forward, backward)

# The client record of an acting client login (NULL for every other role); evaluated once per query.
CLIENT_OF_ACTOR = (
    "(SELECT m.client_id FROM tenancy_membership m WHERE m.id = custodia_membership_id())"
)
