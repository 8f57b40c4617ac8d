from __future__ import annotations

from django.db import migrations

from custodia.core.rls import CLIENT_OF_ACTOR, IN_TENANT, guard_table, same_tenant, tenant_key

MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
ASSIGNED = """EXISTS (SELECT 1 FROM clients_assignment a
    WHERE a.tenant_id = {table}.tenant_id AND a.client_id = {table}.{client}
      AND a.staff_id = custodia_membership_id())"""
# Staff read home access only inside the business's window around one of their own visits.
IN_VISIT_WINDOW = """EXISTS (SELECT 1 FROM scheduling_visit v
    JOIN tenancy_business b ON b.id = v.tenant_id
    WHERE v.tenant_id = clients_homeaccess.tenant_id AND v.client_id = clients_homeaccess.client_id
      AND v.staff_id = custodia_membership_id() AND v.status IN ('scheduled', 'completed')
      AND now() >= v.starts_at - make_interval(hours => b.access_window_before_hours)
      AND now() <= v.ends_at + make_interval(hours => b.access_window_after_hours))"""


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_initial"),
        ("scheduling", "0001_initial"),
        ("tenancy", "0002_rls"),
    ]

    operations = [
        guard_table(
            "clients_client",
            select=f"""{IN_TENANT} AND (custodia_is_manager()
                OR (custodia_role() = 'staff'
                    AND {ASSIGNED.format(table="clients_client", client="id")})
                OR (custodia_role() = 'client' AND id = {CLIENT_OF_ACTOR}))""",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "clients_assignment",
            select=f"""{IN_TENANT}
                AND (custodia_is_manager() OR staff_id = custodia_membership_id())""",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "clients_homeaccess",
            select=f"""{IN_TENANT} AND (custodia_is_manager() OR (custodia_role() = 'staff'
                AND {ASSIGNED.format(table="clients_homeaccess", client="client_id")}
                AND {IN_VISIT_WINDOW}))""",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        # Every reference between tenant-owned rows stays inside one tenant.
        tenant_key("clients_client"),
        same_tenant("tenancy_membership", "client_id", "clients_client"),
        same_tenant("tenancy_invitation", "client_id", "clients_client"),
        same_tenant("clients_homeaccess", "client_id", "clients_client"),
        same_tenant("clients_assignment", "client_id", "clients_client"),
        same_tenant("clients_assignment", "staff_id", "tenancy_membership"),
        same_tenant("clients_assignment", "assigned_by_id", "tenancy_membership"),
    ]
