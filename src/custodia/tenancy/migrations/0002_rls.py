from __future__ import annotations

from django.db import migrations

from custodia.tenancy.rls import DROP_FUNCTIONS_SQL, FUNCTIONS_SQL, IN_TENANT, guard_table

OWNER_HERE = "id = custodia_tenant_id() AND custodia_role() = 'owner'"
MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
# A person may add themself to a business only with a live invitation for exactly that role
# (and, for a client, exactly that client record), named by the invitation's public prefix.
INVITED_SELF = """user_id = custodia_user_id() AND EXISTS (
    SELECT 1 FROM tenancy_invitation i
    WHERE i.tenant_id = tenancy_membership.tenant_id AND i.prefix = custodia_lookup()
      AND i.role = tenancy_membership.role
      AND i.client_id IS NOT DISTINCT FROM tenancy_membership.client_id
      AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now())"""


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTIONS_SQL, DROP_FUNCTIONS_SQL),
        guard_table(
            "tenancy_business",
            select="""id = custodia_tenant_id() OR EXISTS (
                SELECT 1 FROM tenancy_membership m WHERE m.tenant_id = tenancy_business.id
                AND m.user_id = custodia_user_id() AND m.is_active)""",
            insert=OWNER_HERE,
            update=OWNER_HERE,
            delete=OWNER_HERE,
        ),
        guard_table(
            "tenancy_membership",
            select=f"""user_id = custodia_user_id() OR ({IN_TENANT} AND (custodia_is_manager()
                OR (custodia_role() = 'staff' AND role <> 'client')))""",
            insert=f"{IN_TENANT} AND (custodia_is_manager() OR ({INVITED_SELF}))",
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "tenancy_invitation",
            select=f"({MANAGER_HERE}) OR prefix = custodia_lookup()",
            insert=MANAGER_HERE,
            update=f"{IN_TENANT} AND (custodia_is_manager() OR prefix = custodia_lookup())",
            delete=MANAGER_HERE,
        ),
    ]
