"""Credits from memberships: a completed visit takes one from the client's membership in its
current period (before any pass's), and a cancelled one gives it back while that period lasts.

- `CreditUse` names a pass or a membership, exactly one (`use_from_one_source`).
- Staff, who complete their own visits, now read and update the memberships of clients they
  have a visit with, as they do passes, and a trigger lets them change only the period's credits,
  and only downwards.
- A client reads the uses of their own memberships as they do their passes'.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

from custodia.core.rls import IN_TENANT, once_per_query, same_tenant

RLS = importlib.import_module("custodia.payments.migrations.0002_rls")

STAFF_VISITS_MEMBERSHIP_CLIENT = f"""{RLS.IS_STAFF} AND EXISTS (SELECT 1 FROM scheduling_visit v
    WHERE v.tenant_id = payments_clientmembership.tenant_id
      AND v.client_id = payments_clientmembership.client_id
      AND v.staff_id = custodia_membership_id())"""
MEMBERSHIP_SELECT = f"""{IN_TENANT} AND (custodia_is_manager() OR ({RLS.OWN_CLIENT})
    OR ({STAFF_VISITS_MEMBERSHIP_CLIENT}))"""
MEMBERSHIP_UPDATE = f"""{IN_TENANT} AND (custodia_is_manager()
    OR ({STAFF_VISITS_MEMBERSHIP_CLIENT}))"""
# A client sees a use when they see its pass or its membership (those tables' own policies).
USE_SELECT = f"""{IN_TENANT} AND (custodia_is_manager()
    OR ({RLS.IS_CLIENT} AND (EXISTS (SELECT 1 FROM payments_clientpass p
            WHERE p.tenant_id = payments_credituse.tenant_id
              AND p.id = payments_credituse.client_pass_id)
        OR EXISTS (SELECT 1 FROM payments_clientmembership m
            WHERE m.tenant_id = payments_credituse.tenant_id
              AND m.id = payments_credituse.membership_id)))
    OR ({RLS.IS_STAFF} AND {RLS.OWN_VISIT_OF_USE}))"""
# As 0002 had them, for going back.
OLD_MEMBERSHIP_SELECT = f"{IN_TENANT} AND (custodia_is_manager() OR ({RLS.OWN_CLIENT}))"
OLD_USE_SELECT = f"""{IN_TENANT} AND (custodia_is_manager()
    OR ({RLS.IS_CLIENT} AND EXISTS (SELECT 1 FROM payments_clientpass p
        WHERE p.tenant_id = payments_credituse.tenant_id
          AND p.id = payments_credituse.client_pass_id))
    OR ({RLS.IS_STAFF} AND {RLS.OWN_VISIT_OF_USE}))"""

STAFF_CREDITS_GUARD_SQL = """
CREATE FUNCTION custodia_membership_staff_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unchanged payments_clientmembership;
BEGIN
  IF custodia_role() = 'staff' THEN
    unchanged := NEW;
    unchanged.credits_this_period := OLD.credits_this_period;
    IF unchanged IS DISTINCT FROM OLD OR NEW.credits_this_period > OLD.credits_this_period THEN
      RAISE EXCEPTION 'staff may only take a credit from a membership'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER payments_clientmembership_staff_guard BEFORE UPDATE
  ON payments_clientmembership FOR EACH ROW EXECUTE FUNCTION custodia_membership_staff_guard();
"""
DROP_STAFF_CREDITS_GUARD_SQL = """
DROP TRIGGER IF EXISTS payments_clientmembership_staff_guard ON payments_clientmembership;
DROP FUNCTION IF EXISTS custodia_membership_staff_guard();
"""


def policy(name: str, using: str, *, check: bool = False) -> str:
    clause = f"USING ({once_per_query(using)})"
    if check:
        clause += f" WITH CHECK ({once_per_query(using)})"
    table = name.rsplit("_", 1)[0]
    return f"ALTER POLICY {name} ON {table} {clause}"


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0007_erasure_guards"),
        ("payments", "0002_rls"),
        ("scheduling", "0005_visit_tenant_key"),
        ("tenancy", "0011_one_trip_money"),
    ]

    operations = [
        migrations.AddField(
            model_name="credituse",
            name="membership",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="uses",
                to="payments.clientmembership",
            ),
        ),
        migrations.AlterField(
            model_name="credituse",
            name="client_pass",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="uses",
                to="payments.clientpass",
            ),
        ),
        migrations.AddIndex(
            model_name="credituse",
            index=models.Index(
                fields=["tenant", "membership", "created_at"], name="use_membership"
            ),
        ),
        migrations.AddConstraint(
            model_name="clientmembership",
            constraint=models.CheckConstraint(
                condition=models.Q(("credits_this_period__lte", models.F("credits_per_month"))),
                name="membership_credits_within_month",
            ),
        ),
        migrations.AddConstraint(
            model_name="credituse",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("client_pass__isnull", False), ("membership__isnull", True)),
                    models.Q(("client_pass__isnull", True), ("membership__isnull", False)),
                    _connector="OR",
                ),
                name="use_from_one_source",
            ),
        ),
        same_tenant("payments_credituse", "membership_id", "payments_clientmembership"),
        migrations.RunSQL(
            [
                policy("payments_clientmembership_select", MEMBERSHIP_SELECT),
                policy("payments_clientmembership_update", MEMBERSHIP_UPDATE, check=True),
                policy("payments_credituse_select", USE_SELECT),
            ],
            [
                policy("payments_clientmembership_select", OLD_MEMBERSHIP_SELECT),
                policy("payments_clientmembership_update", RLS.MANAGER_HERE, check=True),
                policy("payments_credituse_select", OLD_USE_SELECT),
            ],
        ),
        migrations.RunSQL(STAFF_CREDITS_GUARD_SQL, DROP_STAFF_CREDITS_GUARD_SQL),
    ]
