from __future__ import annotations

from django.db import migrations

from custodia.core.rls import (
    CLIENT_OF_ACTOR,
    IN_TENANT,
    MEMBERSHIP_SELECT,
    guard_table,
    same_tenant,
    tenant_key,
)

MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
# A client sees the memberships (and so the names) of the people who visit them, nobody else.
CLIENT_SEES_VISITORS = f"""custodia_role() = 'client' AND {IN_TENANT} AND EXISTS (
    SELECT 1 FROM scheduling_visit v WHERE v.tenant_id = tenancy_membership.tenant_id
      AND v.staff_id = tenancy_membership.id AND v.client_id = {CLIENT_OF_ACTOR})"""

# Staff may change only the status and report of their own visits (the policy picks the rows,
# this trigger the columns): moving a visit's time would otherwise open the home-access window.
STAFF_VISIT_GUARD_SQL = """
CREATE FUNCTION custodia_visit_staff_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unchanged scheduling_visit;
BEGIN
  IF custodia_role() = 'staff' THEN
    unchanged := NEW;
    unchanged.status := OLD.status;
    unchanged.report := OLD.report;
    unchanged.updated_at := OLD.updated_at;
    IF unchanged IS DISTINCT FROM OLD THEN
      RAISE EXCEPTION 'staff may change only the status and report of a visit'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER scheduling_visit_staff_guard BEFORE UPDATE ON scheduling_visit
  FOR EACH ROW EXECUTE FUNCTION custodia_visit_staff_guard();
"""
DROP_STAFF_VISIT_GUARD_SQL = """
DROP TRIGGER IF EXISTS scheduling_visit_staff_guard ON scheduling_visit;
DROP FUNCTION IF EXISTS custodia_visit_staff_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0001_initial"),
        ("tenancy", "0002_rls"),
        ("clients", "0003_rls"),
    ]

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
        migrations.RunSQL(STAFF_VISIT_GUARD_SQL, DROP_STAFF_VISIT_GUARD_SQL),
        migrations.RunSQL(
            "ALTER POLICY tenancy_membership_select ON tenancy_membership"
            f" USING (({MEMBERSHIP_SELECT}) OR ({CLIENT_SEES_VISITORS}))",
            "ALTER POLICY tenancy_membership_select ON tenancy_membership"
            f" USING ({MEMBERSHIP_SELECT})",
        ),
        tenant_key("scheduling_service"),
        same_tenant("scheduling_visit", "client_id", "clients_client"),
        same_tenant("scheduling_visit", "staff_id", "tenancy_membership"),
        same_tenant("scheduling_visit", "service_id", "scheduling_service"),
    ]
