"""Erasure requests: row-level security, the closed-business guard, and who is told.

- A client reads and files only their own request; managers and owners read and complete them.
- `custodia_erasure_notice_addresses(key)`: the addresses of the active owners and managers of
  the business in context, for the notice a client's request sends (clients/erasure.py). A
  client may not read other memberships, so the function reads them as an owner of that one
  business would, then puts the caller's context back; only the context key's holder may call
  it, and only for a client's own context.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

from custodia.core.rls import CLIENT_OF_ACTOR, IN_TENANT, guard_table, same_tenant

APP = settings.APP_DB_ROLE
MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
OWN_REQUEST = f"custodia_role() = 'client' AND client_id = {CLIENT_OF_ACTOR}"

NOTICE_SQL = f"""
CREATE FUNCTION custodia_erasure_notice_addresses(key text) RETURNS TABLE (email text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  tenant uuid := custodia_tenant_id();
  usr uuid := custodia_user_id();
  membership uuid := custodia_membership_id();
  client uuid := custodia_client_id();
  role_name text := custodia_role();
BEGIN
  PERFORM custodia_check_context_key(key);
  IF tenant IS NULL OR role_name <> 'client' OR client IS NULL THEN
    RETURN;
  END IF;
  PERFORM custodia_put_context(tenant, NULL, NULL, NULL, 'owner', NULL);
  RETURN QUERY SELECT u.email::text FROM public.tenancy_membership m
    JOIN public.accounts_user u ON u.id = m.user_id
    WHERE m.tenant_id = tenant AND m.role IN ('owner', 'manager') AND m.is_active AND u.is_active
    ORDER BY u.email;
  PERFORM custodia_put_context(tenant, usr, membership, client, role_name, NULL);
END $$;
REVOKE ALL ON FUNCTION custodia_erasure_notice_addresses(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_erasure_notice_addresses(text) TO {APP};
"""


class Migration(migrations.Migration):
    dependencies = [("clients", "0006_erasure"), ("tenancy", "0008_closing_guards")]

    operations = [
        guard_table(
            "clients_erasurerequest",
            select=f"{IN_TENANT} AND (custodia_is_manager() OR ({OWN_REQUEST}))",
            insert=f"{IN_TENANT} AND (custodia_is_manager() OR ({OWN_REQUEST}))",
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        same_tenant("clients_erasurerequest", "client_id", "clients_client"),
        same_tenant("clients_erasurerequest", "erased_by_id", "tenancy_membership"),
        migrations.RunSQL(
            [
                "CREATE TRIGGER clients_erasurerequest_closed BEFORE INSERT OR UPDATE OR DELETE"
                " ON clients_erasurerequest FOR EACH ROW"
                " EXECUTE FUNCTION custodia_refuse_closed_write()",
                NOTICE_SQL,
            ],
            [
                "DROP FUNCTION IF EXISTS custodia_erasure_notice_addresses(text)",
                "DROP TRIGGER IF EXISTS clients_erasurerequest_closed ON clients_erasurerequest",
            ],
        ),
    ]
