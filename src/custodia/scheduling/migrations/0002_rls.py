from __future__ import annotations

from django.db import migrations

from custodia.tenancy.rls import CLIENT_OF_ACTOR, IN_TENANT, guard_table

MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial"), ("tenancy", "0002_rls")]

    operations = [
        guard_table(
            "scheduling_service",
            select=IN_TENANT,
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "scheduling_visit",
            select=f"""{IN_TENANT} AND (custodia_is_manager()
                OR (custodia_role() = 'staff' AND staff_id = custodia_membership_id())
                OR (custodia_role() = 'client' AND client_id = {CLIENT_OF_ACTOR}))""",
            # A client may only request a visit for themself, unassigned, awaiting a manager.
            insert=f"""{IN_TENANT} AND (custodia_is_manager()
                OR (custodia_role() = 'client' AND status = 'requested' AND staff_id IS NULL
                    AND client_id = {CLIENT_OF_ACTOR}))""",
            update=f"""{IN_TENANT} AND (custodia_is_manager()
                OR (custodia_role() = 'staff' AND staff_id = custodia_membership_id()))""",
            delete=MANAGER_HERE,
        ),
    ]
