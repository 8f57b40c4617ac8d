"""Jobs are tenant-owned rows: RLS forced, readable by their starter and the business's owners.

The starter is a membership: the job actor acts as that same membership (tenancy/actors.py:
job_actor), so the running job may read and update its own row, and nothing of another job
or business. procrastinate's own tables hold only ids and are the app role's to work with
(the owner's default privileges, embedded.py: provision_database).
"""

from __future__ import annotations

from django.db import migrations

from custodia.core.rls import IN_TENANT, guard_table, same_tenant

STARTER = f"{IN_TENANT} AND started_by_id = custodia_membership_id()"
STARTER_OR_OWNER = (
    f"{IN_TENANT} AND (started_by_id = custodia_membership_id() OR custodia_role() = 'owner')"
)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("tenancy", "0006_one_trip_context"),
    ]

    operations = [
        guard_table(
            "jobs_job",
            select=STARTER_OR_OWNER,
            insert=STARTER,
            update=STARTER,
            delete=f"{IN_TENANT} AND custodia_role() = 'owner'",
        ),
        same_tenant("jobs_job", "started_by_id", "tenancy_membership"),
    ]
