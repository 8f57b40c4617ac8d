"""The purge destroys the keys only of businesses that are really gone.

`tenancy_closedbusiness` may be updated by any member in its business's context (the purge's
key step writes `keys_destroyed_at` with a bare tenant context), so its `purged_at` is not proof
of a purge: a staff member or client of a closed business, with SQL of their own, could set it
and have the next purge destroy the data keys of a business still in its grace period. The key
step now also requires that the business's row no longer exists.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

APP = settings.APP_DB_ROLE


def _work_sql(gone: bool) -> str:
    only_gone = (
        " AND NOT EXISTS (SELECT 1 FROM public.tenancy_business b WHERE b.id = c.business_id)"
        if gone
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION custodia_closing_work(key text, at timestamptz)
  RETURNS TABLE (business_id uuid, step text)
  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  RETURN QUERY SELECT b.id, 'purge'::text FROM public.tenancy_business b
    WHERE b.closed_at IS NOT NULL AND b.purge_after <= at ORDER BY b.purge_after, b.id;
  RETURN QUERY SELECT c.business_id, 'keys'::text FROM public.tenancy_closedbusiness c
    WHERE c.purged_at IS NOT NULL AND c.keys_destroyed_at IS NULL{only_gone}
    ORDER BY c.business_id;
END $$;
REVOKE ALL ON FUNCTION custodia_closing_work(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_closing_work(text, timestamptz) TO {APP};
"""


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0008_closing_guards")]

    operations = [migrations.RunSQL(_work_sql(gone=True), _work_sql(gone=False))]
