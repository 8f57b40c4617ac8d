"""Row-level security on the payments tables, same-tenant foreign keys, the closed-business guard.

- Managers and owners read and write everything of their business.
- A client reads the catalog, their own passes (and their uses), memberships, and their own
  issued invoices (never a draft) with their lines and payments; they write nothing.
- Staff read and change the passes of clients they have a visit with, and insert a credit use
  (-1) for a visit of their own: completing a visit uses a credit in the same transaction
  (payments/receivers.py). A trigger lets them change only a pass's balance and status.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from custodia.core.rls import CLIENT_OF_ACTOR, IN_TENANT, guard_table, same_tenant, tenant_key

MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
IS_CLIENT = "custodia_role() = 'client'"
IS_STAFF = "custodia_role() = 'staff'"
OWN_CLIENT = f"{IS_CLIENT} AND client_id = {CLIENT_OF_ACTOR}"
STAFF_VISITS_PASS_CLIENT = f"""{IS_STAFF} AND EXISTS (SELECT 1 FROM scheduling_visit v
    WHERE v.tenant_id = payments_clientpass.tenant_id
      AND v.client_id = payments_clientpass.client_id AND v.staff_id = custodia_membership_id())"""
OWN_VISIT_OF_USE = """EXISTS (SELECT 1 FROM scheduling_visit v
    WHERE v.tenant_id = payments_credituse.tenant_id AND v.id = payments_credituse.visit_id
      AND v.staff_id = custodia_membership_id())"""
# The invoice's own policy narrows a client to their issued invoices.
OF_VISIBLE_INVOICE = """EXISTS (SELECT 1 FROM payments_invoice i
    WHERE i.tenant_id = {table}.tenant_id AND i.id = {table}.invoice_id)"""

TABLES = (
    "payments_passtype",
    "payments_membershipplan",
    "payments_clientpass",
    "payments_credituse",
    "payments_clientmembership",
    "payments_invoicecounter",
    "payments_invoice",
    "payments_invoiceline",
    "payments_payment",
)

STAFF_BALANCE_GUARD_SQL = """
CREATE FUNCTION custodia_pass_staff_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unchanged payments_clientpass;
BEGIN
  IF custodia_role() = 'staff' THEN
    unchanged := NEW;
    unchanged.credits_left := OLD.credits_left;
    unchanged.status := OLD.status;
    IF unchanged IS DISTINCT FROM OLD OR NEW.credits_left > OLD.credits_left THEN
      RAISE EXCEPTION 'staff may only take a credit from a pass'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER payments_clientpass_staff_guard BEFORE UPDATE ON payments_clientpass
  FOR EACH ROW EXECUTE FUNCTION custodia_pass_staff_guard();
"""
DROP_STAFF_BALANCE_GUARD_SQL = """
DROP TRIGGER IF EXISTS payments_clientpass_staff_guard ON payments_clientpass;
DROP FUNCTION IF EXISTS custodia_pass_staff_guard();
"""


# Tables whose rows name a visit: deleting the visit sets it NULL in the database.
NAME_VISITS = ("payments_credituse", "payments_invoiceline")
# A row losing its deleted visit and changing nothing else: what the purge of a closed business
# does to these rows when its visits go before them (the closed guard lets it through).
LOSES_ITS_VISIT = """OLD.visit_id IS NOT NULL AND NEW.visit_id IS NULL
    AND (to_jsonb(NEW) - 'visit_id') = (to_jsonb(OLD) - 'visit_id')"""


def closed_guard(table: str) -> migrations.RunSQL:
    """A closed business's rows of `table` refuse every write (tenancy/0008)."""
    forward: list[Any]
    if table in NAME_VISITS:
        forward = [
            f"CREATE TRIGGER {table}_closed BEFORE INSERT OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()",
            f"CREATE TRIGGER {table}_closed_update BEFORE UPDATE ON {table}"
            f" FOR EACH ROW WHEN (NOT ({LOSES_ITS_VISIT}))"
            " EXECUTE FUNCTION custodia_refuse_closed_write()",
        ]
    else:
        forward = [
            f"CREATE TRIGGER {table}_closed BEFORE INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()"
        ]
    return migrations.RunSQL(
        forward,
        [
            f"DROP TRIGGER IF EXISTS {table}_closed_update ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_closed ON {table}",
        ],
    )


def visit_set_null(table: str) -> migrations.RunSQL:
    """`table.visit_id` points at a visit; deleting the visit sets it NULL."""
    name = f"{table}_visit_id_fk"
    return migrations.RunSQL(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (visit_id)"
        " REFERENCES scheduling_visit (id) ON DELETE SET NULL",
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("scheduling", "0005_visit_tenant_key"),
        ("tenancy", "0010_business_money"),
    ]

    operations = [
        *(
            guard_table(
                table,
                select=f"{IN_TENANT} AND (custodia_is_manager() OR {IS_CLIENT})",
                insert=MANAGER_HERE,
                update=MANAGER_HERE,
                delete=MANAGER_HERE,
            )
            for table in ("payments_passtype", "payments_membershipplan")
        ),
        guard_table(
            "payments_clientpass",
            select=f"""{IN_TENANT} AND (custodia_is_manager() OR ({OWN_CLIENT})
                OR ({STAFF_VISITS_PASS_CLIENT}))""",
            insert=MANAGER_HERE,
            update=f"{IN_TENANT} AND (custodia_is_manager() OR ({STAFF_VISITS_PASS_CLIENT}))",
            delete=MANAGER_HERE,
        ),
        migrations.RunSQL(STAFF_BALANCE_GUARD_SQL, DROP_STAFF_BALANCE_GUARD_SQL),
        guard_table(
            "payments_credituse",
            select=f"""{IN_TENANT} AND (custodia_is_manager()
                OR ({IS_CLIENT} AND EXISTS (SELECT 1 FROM payments_clientpass p
                    WHERE p.tenant_id = payments_credituse.tenant_id
                      AND p.id = payments_credituse.client_pass_id))
                OR ({IS_STAFF} AND {OWN_VISIT_OF_USE}))""",
            insert=f"""{IN_TENANT} AND (custodia_is_manager()
                OR ({IS_STAFF} AND change = -1 AND {OWN_VISIT_OF_USE}))""",
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "payments_clientmembership",
            select=f"{IN_TENANT} AND (custodia_is_manager() OR ({OWN_CLIENT}))",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "payments_invoicecounter",
            select=MANAGER_HERE,
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        guard_table(
            "payments_invoice",
            select=f"""{IN_TENANT} AND (custodia_is_manager()
                OR ({OWN_CLIENT} AND status <> 'draft'))""",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        *(
            guard_table(
                table,
                select=f"""{IN_TENANT} AND (custodia_is_manager()
                    OR ({IS_CLIENT} AND {OF_VISIBLE_INVOICE.format(table=table)}))""",
                insert=MANAGER_HERE,
                update=MANAGER_HERE,
                delete=MANAGER_HERE,
            )
            for table in ("payments_invoiceline", "payments_payment")
        ),
        *(tenant_key(table) for table in TABLES if table != "payments_invoicecounter"),
        same_tenant("payments_clientpass", "client_id", "clients_client"),
        same_tenant("payments_clientpass", "pass_type_id", "payments_passtype"),
        same_tenant("payments_credituse", "client_pass_id", "payments_clientpass"),
        same_tenant("payments_credituse", "visit_id", "scheduling_visit"),
        same_tenant("payments_clientmembership", "client_id", "clients_client"),
        same_tenant("payments_clientmembership", "plan_id", "payments_membershipplan"),
        same_tenant("payments_invoice", "client_id", "clients_client"),
        same_tenant("payments_invoiceline", "invoice_id", "payments_invoice"),
        same_tenant("payments_invoiceline", "visit_id", "scheduling_visit"),
        same_tenant("payments_invoiceline", "client_pass_id", "payments_clientpass"),
        same_tenant("payments_invoiceline", "membership_id", "payments_clientmembership"),
        same_tenant("payments_payment", "invoice_id", "payments_invoice"),
        same_tenant("payments_payment", "recorded_by_id", "tenancy_membership"),
        *(visit_set_null(table) for table in NAME_VISITS),
        *(closed_guard(table) for table in TABLES),
    ]
