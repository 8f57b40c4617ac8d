"""A closed business is read-only, in the database itself (tenancy/closing.py).

- `custodia_refuse_closed_write()`, a trigger on every table of a business's data, refuses an
  INSERT, UPDATE or DELETE of a row whose business is closed, with SQLSTATE `CU409` and the purge
  date in the message's detail (core/closed.py turns it into the 409 every door answers). The one
  exception is the deletion of a business being purged (`purging`, set in the purge's own
  transaction). Sessions of the owner role (migrations, `custodia keys` re-sealing with a new key,
  `custodia audit`) are not refused: they change no business data. Whatever door a write comes
  through (a page, the API, a command, a hand-made connection of the app role with a context
  set), it meets this.
- API tokens: no new one into a closed business (revoking one, and the last-use stamp, stay).
- `custodia_guard_closed_business()`: while a business is closed, its row changes only by being
  reopened (`closed_at` back to NULL, which row-level security leaves to an owner) or marked
  `purging`.
- `tenancy_closedbusiness`, the anonymous record a purge leaves, is read and written only in a
  context naming its business.
- `custodia_closing_work(key, at)` lists, for the daily purge, the closed businesses due at `at`
  and the purged ones whose keys still wait to be destroyed: ids only, and only for the holder of
  the context key.
- The one-trip context functions (tenancy/0006) return the new business columns too.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings
from django.db import migrations

from custodia.core.rls import guard_table

APP = settings.APP_DB_ROLE
OWNER = settings.OWNER_DB_ROLE
ONE_TRIP = importlib.import_module("custodia.tenancy.migrations.0006_one_trip_context")

# The tables of a business's data, and the commands refused on them while it is closed. Tables
# not here take writes while closed on purpose (tests/tenancy/test_closing_doors.py keeps the
# list of every table with a tenant_id honest): the audit trail (reads of a closed business are
# still recorded), its checkpoints, API tokens' revocation and last use, jobs' status and
# progress (an export of a closed business must run). Tables of apps above
# tenancy add the trigger in their own migrations (clients/0007: erasure requests).
GUARDED: dict[str, str] = {
    "tenancy_membership": "INSERT OR UPDATE OR DELETE",
    "tenancy_invitation": "INSERT OR UPDATE OR DELETE",
    "clients_client": "INSERT OR UPDATE OR DELETE",
    "clients_homeaccess": "INSERT OR UPDATE OR DELETE",
    "clients_assignment": "INSERT OR UPDATE OR DELETE",
    "scheduling_service": "INSERT OR UPDATE OR DELETE",
    "scheduling_visit": "INSERT OR UPDATE OR DELETE",
    "accounts_apitoken": "INSERT",
}

REFUSE_SQL = f"""
CREATE FUNCTION custodia_refuse_closed_write() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  business uuid;
  until timestamptz;
  being_purged boolean;
BEGIN
  IF pg_has_role(session_user, '{OWNER}', 'MEMBER') THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  FOR business IN
    SELECT DISTINCT t FROM unnest(ARRAY[
      CASE WHEN TG_OP <> 'INSERT' THEN OLD.tenant_id END,
      CASE WHEN TG_OP <> 'DELETE' THEN NEW.tenant_id END]) AS t WHERE t IS NOT NULL
  LOOP
    SELECT b.purge_after, b.purging INTO until, being_purged
      FROM public.tenancy_business b WHERE b.id = business AND b.closed_at IS NOT NULL;
    IF FOUND AND NOT (TG_OP = 'DELETE' AND being_purged) THEN
      RAISE EXCEPTION 'custodia: this business is closed until %; an owner can reopen it', until
        USING ERRCODE = 'CU409', DETAIL = to_char(until AT TIME ZONE 'UTC',
          'YYYY-MM-DD"T"HH24:MI:SS"Z"');
    END IF;
  END LOOP;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
REVOKE ALL ON FUNCTION custodia_refuse_closed_write() FROM PUBLIC;
"""

BUSINESS_SQL = f"""
CREATE FUNCTION custodia_guard_closed_business() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF pg_has_role(session_user, '{OWNER}', 'MEMBER') THEN
    RETURN NEW;
  END IF;
  IF OLD.closed_at IS NOT NULL AND NEW.closed_at IS NOT NULL
      AND (to_jsonb(NEW) - 'purging') IS DISTINCT FROM (to_jsonb(OLD) - 'purging') THEN
    RAISE EXCEPTION 'custodia: this business is closed until %; an owner can reopen it',
        OLD.purge_after
      USING ERRCODE = 'CU409', DETAIL = to_char(OLD.purge_after AT TIME ZONE 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS"Z"');
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER tenancy_business_closed BEFORE UPDATE ON tenancy_business
  FOR EACH ROW EXECUTE FUNCTION custodia_guard_closed_business();
"""

WORK_SQL = f"""
CREATE FUNCTION custodia_closing_work(key text, at timestamptz)
  RETURNS TABLE (business_id uuid, step text)
  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  RETURN QUERY SELECT b.id, 'purge'::text FROM public.tenancy_business b
    WHERE b.closed_at IS NOT NULL AND b.purge_after <= at ORDER BY b.purge_after, b.id;
  RETURN QUERY SELECT c.business_id, 'keys'::text FROM public.tenancy_closedbusiness c
    WHERE c.purged_at IS NOT NULL AND c.keys_destroyed_at IS NULL ORDER BY c.business_id;
END $$;
REVOKE ALL ON FUNCTION custodia_closing_work(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_closing_work(text, timestamptz) TO {APP};
"""

NEW_BUSINESS_COLUMNS = (
    ONE_TRIP.BUSINESS_COLUMNS.rstrip()
    + ",\n    b_closed_at timestamptz, b_purge_after timestamptz, b_purging boolean"
)
NEW_SELECT_BUSINESS = ONE_TRIP.SELECT_BUSINESS + ", b.closed_at, b.purge_after, b.purging"
NEW_INTO_BUSINESS = ONE_TRIP.INTO_BUSINESS + ", b_closed_at, b_purge_after, b_purging"


def _with_closing_columns(sql: str) -> str:
    return (
        sql.replace(ONE_TRIP.BUSINESS_COLUMNS, NEW_BUSINESS_COLUMNS)
        .replace(ONE_TRIP.SELECT_BUSINESS, NEW_SELECT_BUSINESS)
        .replace(ONE_TRIP.INTO_BUSINESS, NEW_INTO_BUSINESS)
    )


def _one_trip(columns: bool) -> list[Any]:
    """tenancy/0006's two activation functions, with or without the closing columns."""
    statements = [
        "DROP FUNCTION IF EXISTS custodia_activate_member(text, uuid, uuid)",
        "DROP FUNCTION IF EXISTS custodia_activate_token(text, text, text[])",
    ]
    # FORWARD[0:2] is custodia_put_context and its REVOKE, which stay.
    for sql in ONE_TRIP.FORWARD[2:]:
        statements.append(_with_closing_columns(sql) if columns else sql)
    return statements


FORWARD: list[Any] = [
    REFUSE_SQL,
    *(
        f"CREATE TRIGGER {table}_closed BEFORE {commands} ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()"
        for table, commands in GUARDED.items()
    ),
    BUSINESS_SQL,
    WORK_SQL,
    f"CREATE POLICY tenancy_closedbusiness_work ON tenancy_closedbusiness FOR SELECT"
    f" TO {OWNER} USING (true)",
    *_one_trip(columns=True),
]
BACKWARD: list[Any] = [
    *_one_trip(columns=False),
    "DROP POLICY IF EXISTS tenancy_closedbusiness_work ON tenancy_closedbusiness",
    "DROP FUNCTION IF EXISTS custodia_closing_work(text, timestamptz)",
    "DROP TRIGGER IF EXISTS tenancy_business_closed ON tenancy_business",
    "DROP FUNCTION IF EXISTS custodia_guard_closed_business()",
    *(f"DROP TRIGGER IF EXISTS {table}_closed ON {table}" for table in GUARDED),
    "DROP FUNCTION IF EXISTS custodia_refuse_closed_write()",
]

THIS_BUSINESS = "business_id = custodia_tenant_id()"
OWNER_OF_IT = f"{THIS_BUSINESS} AND custodia_role() = 'owner'"


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0007_closing")]

    operations = [
        guard_table(
            "tenancy_closedbusiness",
            select=THIS_BUSINESS,
            insert=OWNER_OF_IT,
            update=THIS_BUSINESS,
            delete=OWNER_OF_IT,
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
