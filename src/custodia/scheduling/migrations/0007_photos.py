"""Visit photos (sealed image and thumbnail, RLS like visits) and check-in/check-out times."""

from __future__ import annotations

import uuid

import django.db.models.deletion
from django.db import migrations, models

import custodia.crypto.fields
from custodia.core.rls import CLIENT_OF_ACTOR, IN_TENANT, guard_table, same_tenant
from custodia.crypto.rows import SealedTable, sealed_constraints

PHOTO = SealedTable("scheduling_visitphoto", "id", ("image", "thumbnail"))
MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
# The photo's visit is one the staff member is assigned to (as scheduling_visit's policy).
STAFF_OF_VISIT = """custodia_role() = 'staff' AND EXISTS (
    SELECT 1 FROM scheduling_visit v WHERE v.tenant_id = scheduling_visitphoto.tenant_id
      AND v.id = scheduling_visitphoto.visit_id AND v.staff_id = custodia_membership_id())"""
CLIENT_OF_VISIT = f"""custodia_role() = 'client' AND EXISTS (
    SELECT 1 FROM scheduling_visit v WHERE v.tenant_id = scheduling_visitphoto.tenant_id
      AND v.id = scheduling_visitphoto.visit_id AND v.client_id = {CLIENT_OF_ACTOR})"""
UPLOADED_BY_ACTOR = "created_by_id = custodia_membership_id()"

# Staff may also set the check-in and check-out times of their own visits.
GUARD_SQL = """
CREATE OR REPLACE FUNCTION custodia_visit_staff_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  unchanged scheduling_visit;
BEGIN
  IF custodia_role() = 'staff' THEN
    unchanged := NEW;
    unchanged.status := OLD.status;
    unchanged.report := OLD.report;
    unchanged.updated_at := OLD.updated_at;{extra}
    IF unchanged IS DISTINCT FROM OLD THEN
      RAISE EXCEPTION 'staff may change only the status and report (and check-in times) of a visit'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END $$;
"""
STAFF_VISIT_GUARD_SQL = GUARD_SQL.format(
    extra="""
    unchanged.checked_in_at := OLD.checked_in_at;
    unchanged.checked_out_at := OLD.checked_out_at;"""
)
# Backwards the columns are gone again (the old function names only the old ones).
OLD_STAFF_VISIT_GUARD_SQL = GUARD_SQL.format(extra="")


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0006_visit_series"),
        ("tenancy", "0015_one_trip_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="checked_in_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="visit",
            name="checked_out_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="VisitPhoto",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("image", custodia.crypto.fields.EncryptedBinaryField(blank=True, default=b"")),
                ("thumbnail", custodia.crypto.fields.EncryptedBinaryField(blank=True, default=b"")),
                ("content_type", models.CharField(max_length=40)),
                ("size", models.PositiveIntegerField()),
                ("width", models.PositiveIntegerField()),
                ("height", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="tenancy.membership",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.business",
                    ),
                ),
                (
                    "visit",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="photos",
                        to="scheduling.visit",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["tenant", "visit", "created_at"], name="visitphoto_tenant_visit"
                    )
                ],
            },
        ),
        migrations.RunSQL(STAFF_VISIT_GUARD_SQL, OLD_STAFF_VISIT_GUARD_SQL),
        guard_table(
            "scheduling_visitphoto",
            select=f"{IN_TENANT} AND (custodia_is_manager() OR ({STAFF_OF_VISIT})"
            f" OR ({CLIENT_OF_VISIT}))",
            insert=f"{IN_TENANT} AND {UPLOADED_BY_ACTOR} AND (custodia_is_manager()"
            f" OR ({STAFF_OF_VISIT}))",
            # Only key rotation rewrites a photo (as the business's manager context).
            update=MANAGER_HERE,
            delete=f"{IN_TENANT} AND (custodia_is_manager()"
            f" OR ({UPLOADED_BY_ACTOR} AND {STAFF_OF_VISIT}))",
        ),
        same_tenant("scheduling_visitphoto", "visit_id", "scheduling_visit"),
        same_tenant("scheduling_visitphoto", "created_by_id", "tenancy_membership"),
        sealed_constraints(PHOTO),
    ]
