"""Webhooks are the owners' alone: row-level security on both tables, sealed secrets, the
closed-business guard, and the one way any member's action adds to the outbox.

`custodia_webhook_enqueue(key, event_type, event_id, payload)`: one delivery row per active
endpoint of the business in context subscribed to the event, written in the caller's
transaction. Staff and clients cause events (a completed visit, a requested one) but may not
read the endpoints, so the function reads and writes them as an owner of that one business
would, then puts the caller's context back; only the context key's holder may call it, and it
returns only the new rows' ids.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

from custodia.core.rls import IN_TENANT, guard_table, same_tenant, tenant_key
from custodia.crypto.rows import SealedTable, sealed_constraints

APP = settings.APP_DB_ROLE
OWNER_HERE = f"{IN_TENANT} AND custodia_role() = 'owner'"
ENDPOINT = SealedTable("webhooks_endpoint", "id", ("secret", "previous_secret"))

ENQUEUE_SQL = f"""
CREATE FUNCTION custodia_webhook_enqueue(key text, kind text, event uuid, body jsonb)
  RETURNS TABLE (delivery_id uuid)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  tenant uuid := custodia_tenant_id();
  usr uuid := custodia_user_id();
  membership uuid := custodia_membership_id();
  client uuid := custodia_client_id();
  role_name text := custodia_role();
  lookup_prefix text := custodia_lookup();
BEGIN
  PERFORM custodia_check_context_key(key);
  IF tenant IS NULL THEN
    RETURN;
  END IF;
  PERFORM custodia_put_context(tenant, NULL, NULL, NULL, 'owner', NULL);
  RETURN QUERY INSERT INTO public.webhooks_delivery AS d (id, tenant_id, endpoint_id, event_id,
      event_type, payload, status, attempts, next_attempt_at, error, created_at)
    SELECT gen_random_uuid(), tenant, e.id, event, kind, body, 'pending', 0, now(), '', now()
    FROM public.webhooks_endpoint e
    WHERE e.tenant_id = tenant AND e.is_active AND kind = ANY (e.event_types)
    RETURNING d.id;
  PERFORM custodia_put_context(tenant, usr, membership, client, role_name, lookup_prefix);
END $$;
REVOKE ALL ON FUNCTION custodia_webhook_enqueue(text, text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_webhook_enqueue(text, text, uuid, jsonb) TO {APP};
"""


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("tenancy", "0009_closing_work_only_gone"),
    ]

    operations = [
        guard_table(
            "webhooks_endpoint",
            select=OWNER_HERE,
            insert=OWNER_HERE,
            update=OWNER_HERE,
            delete=OWNER_HERE,
        ),
        guard_table(
            "webhooks_delivery",
            select=OWNER_HERE,
            insert=OWNER_HERE,
            update=OWNER_HERE,
            delete=OWNER_HERE,
        ),
        tenant_key("webhooks_endpoint"),
        same_tenant("webhooks_delivery", "endpoint_id", "webhooks_endpoint"),
        sealed_constraints(ENDPOINT),
        migrations.RunSQL(
            [
                *(
                    f"CREATE TRIGGER {table}_closed BEFORE INSERT OR UPDATE OR DELETE"
                    f" ON {table} FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()"
                    for table in ("webhooks_endpoint", "webhooks_delivery")
                ),
                ENQUEUE_SQL,
            ],
            [
                "DROP FUNCTION IF EXISTS custodia_webhook_enqueue(text, text, uuid, jsonb)",
                "DROP TRIGGER IF EXISTS webhooks_delivery_closed ON webhooks_delivery",
                "DROP TRIGGER IF EXISTS webhooks_endpoint_closed ON webhooks_endpoint",
            ],
        ),
    ]
