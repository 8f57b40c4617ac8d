"""Row-level security of the publications, and the two doors the public pages read through.

- `transparency_publication` is a business's data: forced RLS like every tenant table (members
  read it, owners write it), refused while the business is closed.
- `custodia_transparency_page(slug)` answers the id, name and publication time of a business
  whose page is published and which is open, and nothing for any other slug: the public page
  `/b/<slug>/security/` has no session and so no context of its own.
- `custodia_transparency_mfa(business)` counts active owners, managers and staff, and how many
  of them have a second factor (an authenticator app or a passkey): over every open business
  (NULL), or one business whose page is published (nothing for an unpublished one). Counts
  only, never a name or an id.
- Both run as the table owner, for whom a policy on memberships and one on publications open
  only while the functions' own transaction-local flag is set (like accounts/0005); the app role
  setting the flag by hand gains nothing, the policies being the owner role's alone.
- The platform tables (the subprocessor list, the verification records) are written only by
  the operator's connection: the app role may read them, not forge them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

from custodia.core.rls import IN_TENANT, guard_table, same_tenant

APP = settings.APP_DB_ROLE
OWNER = settings.OWNER_DB_ROLE
OWNER_HERE = f"{IN_TENANT} AND custodia_role() = 'owner'"
READING = "current_setting('custodia.transparency_reading', true) = 'on'"

FUNCTIONS_SQL = f"""
CREATE FUNCTION custodia_transparency_page(page_slug text)
  RETURNS TABLE(business_id uuid, business_name text, published_at timestamptz)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM set_config('custodia.transparency_reading', 'on', true);
  RETURN QUERY
    SELECT b.id, b.name::text, p.published_at
      FROM public.tenancy_business b
      JOIN public.transparency_publication p ON p.tenant_id = b.id
     WHERE b.slug = page_slug AND b.closed_at IS NULL;
  PERFORM set_config('custodia.transparency_reading', '', true);
END
$$;
REVOKE ALL ON FUNCTION custodia_transparency_page(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_transparency_page(text) TO {APP};

CREATE FUNCTION custodia_transparency_mfa(business uuid)
  RETURNS TABLE(member_role text, members bigint, with_factor bigint)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM set_config('custodia.transparency_reading', 'on', true);
  IF business IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM public.transparency_publication p
        JOIN public.tenancy_business b ON b.id = p.tenant_id
       WHERE p.tenant_id = business AND b.closed_at IS NULL) THEN
    PERFORM set_config('custodia.transparency_reading', '', true);
    RETURN;
  END IF;
  RETURN QUERY
    SELECT m.role::text, count(*),
           count(*) FILTER (WHERE EXISTS (
             SELECT 1 FROM public.mfa_authenticator a
              WHERE a.user_id = m.user_id AND a.type IN ('totp', 'webauthn')))
      FROM public.tenancy_membership m
      JOIN public.tenancy_business b ON b.id = m.tenant_id
      JOIN public.accounts_user u ON u.id = m.user_id
     WHERE m.is_active AND u.is_active AND b.closed_at IS NULL
       AND m.role IN ('owner', 'manager', 'staff')
       AND (business IS NULL OR m.tenant_id = business)
     GROUP BY m.role;
  PERFORM set_config('custodia.transparency_reading', '', true);
END
$$;
REVOKE ALL ON FUNCTION custodia_transparency_mfa(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION custodia_transparency_mfa(uuid) TO {APP};
"""

PLATFORM_TABLES = ("transparency_subprocessorlist", "transparency_chainverification")


class Migration(migrations.Migration):
    dependencies = [
        ("transparency", "0001_initial"),
        ("tenancy", "0017_one_trip_profile"),
        ("accounts", "0008_calendar_feed"),
        ("audit", "0004_every_lane"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [
        guard_table(
            "transparency_publication",
            select=IN_TENANT,
            insert=OWNER_HERE,
            update=OWNER_HERE,
            delete=OWNER_HERE,
        ),
        same_tenant("transparency_publication", "published_by_id", "tenancy_membership"),
        migrations.RunSQL(
            [
                f"CREATE POLICY transparency_publication_pages ON transparency_publication"
                f" FOR SELECT TO {OWNER} USING ({READING})",
                f"CREATE POLICY tenancy_membership_transparency_counts ON tenancy_membership"
                f" FOR SELECT TO {OWNER} USING ({READING})",
                "CREATE TRIGGER transparency_publication_closed BEFORE INSERT OR UPDATE OR DELETE"
                " ON transparency_publication FOR EACH ROW"
                " EXECUTE FUNCTION custodia_refuse_closed_write()",
                FUNCTIONS_SQL,
                *(
                    f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {APP}"
                    for table in PLATFORM_TABLES
                ),
            ],
            [
                "DROP FUNCTION IF EXISTS custodia_transparency_mfa(uuid)",
                "DROP FUNCTION IF EXISTS custodia_transparency_page(text)",
                "DROP TRIGGER IF EXISTS transparency_publication_closed"
                " ON transparency_publication",
                "DROP POLICY IF EXISTS tenancy_membership_transparency_counts"
                " ON tenancy_membership",
                "DROP POLICY IF EXISTS transparency_publication_pages ON transparency_publication",
            ],
        ),
    ]
