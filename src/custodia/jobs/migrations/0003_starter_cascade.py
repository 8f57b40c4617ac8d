"""A job goes with its starter's membership, in the database itself.

Erasing a client deletes their portal membership (lifecycle/erasure.py) as the owner or manager
who erases; row-level security shows that person only their own jobs (0002), so Django's
cascade, which reads the rows it deletes, missed the client's jobs and the deferred foreign key
refused the commit (a 500, the erasure undone). The foreign key now cascades itself
(referential actions are not filtered by row-level security).
"""

from __future__ import annotations

from django.db import migrations


def _foreign_key(on_delete: str) -> str:
    return f"""
DO $$
DECLARE
  name text;
BEGIN
  SELECT c.conname INTO name FROM pg_constraint c
    WHERE c.conrelid = 'jobs_job'::regclass AND c.contype = 'f'
      AND c.confrelid = 'tenancy_membership'::regclass
      AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                            WHERE attrelid = 'jobs_job'::regclass AND attname = 'started_by_id')];
  EXECUTE format('ALTER TABLE jobs_job DROP CONSTRAINT %I', name);
  EXECUTE format('ALTER TABLE jobs_job ADD CONSTRAINT %I FOREIGN KEY (started_by_id)'
    ' REFERENCES tenancy_membership (id) {on_delete} DEFERRABLE INITIALLY DEFERRED', name);
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_rls")]

    operations = [
        migrations.RunSQL(_foreign_key("ON DELETE CASCADE"), _foreign_key("")),
    ]
