"""Forced row-level security on the platform's tables, and the rule that an operator is never a
member of a business (docs/operators.md).

- `platform_operator`: a login reads its own row; rows are written only in the console's
  context (`lookup = 'platform-console'`, set by `custodia operator` alone, through the context
  key); the owner role reads every row, for the functions below.
- `custodia_is_operator()`: whether the verified context's login is an active operator.
- `platform_vulnerabilityreport`: only an active operator's context reads or changes a report;
  anyone (the public form, with an empty context) may add a new, unanswered one; nobody deletes.
- `custodia_platform_businesses(key)`: each business's name, dates and member count, for an
  active operator's context only, and nothing else of the business.
- Triggers refuse an operator row for a login with an active membership, and an active
  membership for an operator's login, whichever comes second.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations

from custodia.core.rls import guard_table

APP = settings.APP_DB_ROLE
OWNER = settings.OWNER_DB_ROLE
CONSOLE = "custodia_lookup() = 'platform-console'"
HEADER = (
    "LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE"
    " SET search_path = pg_catalog, public, pg_temp"
)

FORWARD: list[Any] = [
    f"""CREATE POLICY platform_operator_owner ON platform_operator FOR SELECT TO {OWNER}
  USING (true)""",
    """CREATE FUNCTION custodia_is_operator() RETURNS boolean
  LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
  SET search_path = pg_catalog, public, pg_temp
  AS $$ BEGIN RETURN EXISTS (SELECT 1 FROM public.platform_operator o
    WHERE o.user_id = public.custodia_user_id() AND o.disabled_at IS NULL); END $$""",
    "REVOKE ALL ON FUNCTION custodia_is_operator() FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION custodia_is_operator() TO {APP}",
    f"""CREATE FUNCTION custodia_platform_businesses(key text)
  RETURNS TABLE (id uuid, name text, created_at timestamptz, closed_at timestamptz,
    members bigint)
  {HEADER}
AS $$
DECLARE
  tenant uuid := custodia_tenant_id();
  usr uuid := custodia_user_id();
  membership uuid := custodia_membership_id();
  client uuid := custodia_client_id();
  role_name text := custodia_role();
  lookup_prefix text := custodia_lookup();
  business record;
  counted bigint;
BEGIN
  PERFORM custodia_check_context_key(key);
  IF NOT custodia_is_operator() THEN
    RETURN;
  END IF;
  FOR business IN SELECT b.id, b.name, b.created_at, b.closed_at FROM public.tenancy_business b
      ORDER BY b.created_at, b.id LOOP
    -- Inside each business only, to count its memberships (the membership policy's reach).
    PERFORM custodia_put_context(business.id, NULL, NULL, NULL, 'owner', NULL);
    SELECT count(*) INTO counted FROM public.tenancy_membership m
      WHERE m.tenant_id = business.id AND m.is_active;
    id := business.id;
    name := business.name;
    created_at := business.created_at;
    closed_at := business.closed_at;
    members := counted;
    RETURN NEXT;
  END LOOP;
  PERFORM custodia_put_context(tenant, usr, membership, client, role_name, lookup_prefix);
END $$""",
    "REVOKE ALL ON FUNCTION custodia_platform_businesses(text) FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION custodia_platform_businesses(text) TO {APP}",
    f"""CREATE FUNCTION platform_operator_holds_no_membership() RETURNS trigger
  {HEADER}
AS $$
DECLARE
  tenant uuid := custodia_tenant_id();
  usr uuid := custodia_user_id();
  membership uuid := custodia_membership_id();
  client uuid := custodia_client_id();
  role_name text := custodia_role();
  lookup_prefix text := custodia_lookup();
  found boolean;
BEGIN
  -- Only the server console writes operator rows, and row-level security refuses anyone else
  -- next: answering first would tell any caller whether a login holds a membership.
  IF lookup_prefix IS DISTINCT FROM 'platform-console' THEN
    RETURN NEW;
  END IF;
  -- One login's operator row and memberships are checked one transaction at a time, so an
  -- operator made while the same login accepts an invitation cannot slip past both checks.
  PERFORM pg_advisory_xact_lock(hashtext('custodia.operator:' || NEW.user_id::text));
  -- As the login itself, which reads its own memberships in every business.
  PERFORM custodia_put_context(NULL, NEW.user_id, NULL, NULL, '', NULL);
  SELECT EXISTS (SELECT 1 FROM public.tenancy_membership m
    WHERE m.user_id = NEW.user_id AND m.is_active) INTO found;
  PERFORM custodia_put_context(tenant, usr, membership, client, role_name, lookup_prefix);
  IF found THEN
    RAISE EXCEPTION 'custodia: a member of a business cannot be a platform operator'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$""",
    """CREATE TRIGGER platform_operator_holds_no_membership
  BEFORE INSERT OR UPDATE OF user_id ON platform_operator
  FOR EACH ROW EXECUTE FUNCTION platform_operator_holds_no_membership()""",
    f"""CREATE FUNCTION platform_member_is_no_operator() RETURNS trigger
  {HEADER}
AS $$
BEGIN
  IF NEW.is_active THEN
    PERFORM pg_advisory_xact_lock(hashtext('custodia.operator:' || NEW.user_id::text));
  END IF;
  IF NEW.is_active AND EXISTS (SELECT 1 FROM public.platform_operator o
      WHERE o.user_id = NEW.user_id) THEN
    RAISE EXCEPTION 'custodia: a platform operator cannot be a member of a business'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$""",
    """CREATE TRIGGER platform_member_is_no_operator
  BEFORE INSERT OR UPDATE OF user_id, is_active ON tenancy_membership
  FOR EACH ROW EXECUTE FUNCTION platform_member_is_no_operator()""",
]

BACKWARD: list[Any] = [
    "DROP TRIGGER IF EXISTS platform_member_is_no_operator ON tenancy_membership",
    "DROP FUNCTION IF EXISTS platform_member_is_no_operator()",
    "DROP TRIGGER IF EXISTS platform_operator_holds_no_membership ON platform_operator",
    "DROP FUNCTION IF EXISTS platform_operator_holds_no_membership()",
    "DROP FUNCTION IF EXISTS custodia_platform_businesses(text)",
    "DROP FUNCTION IF EXISTS custodia_is_operator()",
    "DROP POLICY IF EXISTS platform_operator_owner ON platform_operator",
]


class Migration(migrations.Migration):
    dependencies = [
        ("platform", "0001_initial"),
        ("tenancy", "0017_one_trip_profile"),
    ]

    operations = [
        guard_table(
            "platform_operator",
            select=f"user_id = custodia_user_id() OR {CONSOLE}",
            insert=CONSOLE,
            update=CONSOLE,
            delete=CONSOLE,
        ),
        migrations.RunSQL(FORWARD[:4], BACKWARD[5:]),
        guard_table(
            "platform_vulnerabilityreport",
            select="custodia_is_operator()",
            insert="""status = 'new' AND first_response_at IS NULL
                AND first_response_by_id IS NULL AND response = ''""",
            update="custodia_is_operator()",
            delete="false",
        ),
        migrations.RunSQL(FORWARD[4:], BACKWARD[:5]),
    ]
