"""Deleting a business takes every member's API tokens with it.

An owner sees only their own tokens under row-level security, so the deletion cannot collect the
others' (and their foreign key to the deleted memberships would then fail). This function runs as
the table owner, only for the business the caller is the owner of in the current context, and
only deletes: it reads nothing back.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

OWNER = settings.OWNER_DB_ROLE
APP = settings.APP_DB_ROLE
IN_DELETED_BUSINESS = (
    "tenant_id = custodia_tenant_id() AND custodia_role() = 'owner'"
    " AND current_setting('custodia.deleting_business', true) = tenant_id::text"
)

FUNCTION_SQL = """
CREATE FUNCTION custodia_delete_business_tokens(business uuid) RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  deleted integer;
BEGIN
  IF custodia_role() <> 'owner' OR custodia_tenant_id() IS DISTINCT FROM business THEN
    RAISE EXCEPTION 'only an owner of business % may delete its tokens', business;
  END IF;
  PERFORM set_config('custodia.deleting_business', business::text, true);
  DELETE FROM accounts_apitoken WHERE tenant_id = business;
  GET DIAGNOSTICS deleted = ROW_COUNT;
  -- The policies it opened close again at once (an error aborts the transaction anyway).
  PERFORM set_config('custodia.deleting_business', '', true);
  RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION custodia_delete_business_tokens(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_delete_business_tokens(uuid) TO {app};
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_security_events_and_login_throttle")]

    operations = [
        migrations.RunSQL(
            [
                f"CREATE POLICY accounts_apitoken_business_deletion_read ON accounts_apitoken"
                f" FOR SELECT TO {OWNER} USING ({IN_DELETED_BUSINESS})",
                f"CREATE POLICY accounts_apitoken_business_deletion ON accounts_apitoken"
                f" FOR DELETE TO {OWNER} USING ({IN_DELETED_BUSINESS})",
                FUNCTION_SQL.format(app=APP),
            ],
            [
                "DROP FUNCTION IF EXISTS custodia_delete_business_tokens(uuid)",
                "DROP POLICY IF EXISTS accounts_apitoken_business_deletion ON accounts_apitoken",
                "DROP POLICY IF EXISTS accounts_apitoken_business_deletion_read"
                " ON accounts_apitoken",
            ],
        ),
    ]
