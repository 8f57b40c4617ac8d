"""Visit photos follow visit notices (0008): a closed business's photos refuse every write but
the purge's deletion (the closed-business trigger, tenancy/0008), and the database, not
Django, deletes a visit's photos with it (ON DELETE CASCADE on the same-tenant key), so
Django still deletes a business's visits in one fast statement: a Django cascade made the purge
set the staff of its visits to NULL first, an update the closed-business guard refuses."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models

from custodia.core.rls import closed_guard

TABLE = "scheduling_visitphoto"
SAME_TENANT = "scheduling_visitphoto_visit_id_same_tenant"


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0008_notices")]

    operations = [
        migrations.AlterField(
            model_name="visitphoto",
            name="visit",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="photos",
                to="scheduling.visit",
            ),
        ),
        migrations.RunSQL(
            [
                f"ALTER TABLE {TABLE} DROP CONSTRAINT {SAME_TENANT}",
                f"ALTER TABLE {TABLE} ADD CONSTRAINT {SAME_TENANT}"
                " FOREIGN KEY (tenant_id, visit_id) REFERENCES scheduling_visit (tenant_id, id)"
                " ON DELETE CASCADE",
            ],
            [
                f"ALTER TABLE {TABLE} DROP CONSTRAINT {SAME_TENANT}",
                f"ALTER TABLE {TABLE} ADD CONSTRAINT {SAME_TENANT}"
                " FOREIGN KEY (tenant_id, visit_id) REFERENCES scheduling_visit (tenant_id, id)"
                " DEFERRABLE INITIALLY DEFERRED",
            ],
        ),
        closed_guard(TABLE),
    ]
