"""A request's whole database context in one call: bearer tokens and browser sessions.

Before this, a token request set the context four times (nothing, the prefix, the token's user,
the membership) around two reads of its own, and a session request three times around one: five
or six round trips before the request's first real query. Two functions now do each in one,
behind the same context key as `custodia_set_context` (tenancy/0005):

- `custodia_activate_token(key, prefix, digests)` takes a token's public prefix and the HMAC
  digests of its secret (under SECRET_KEY first, then each fallback key), never the secret itself.
  It finds the token by the prefix, compares the stored digest with those given, and checks that
  the token is neither expired nor revoked, that its membership is active and is the token's own
  user's in the token's business, that the login is active and the business exists. Then it sets
  that membership's context, records the last use at most once a minute, and returns the token,
  membership, login and business columns the app builds its actor from. Anything else leaves an
  empty context (no tenant, no user) and returns no row.
- `custodia_activate_member(key, user, business)` sets a signed-in user's context: their active
  membership in `business` (with none named, their first by business name), else the user alone;
  it returns that membership's and business's columns, or no row.

Both read as the tables' owner under the same forced row-level security as the app: in between
they set the context each read needs (the prefix alone, then the token's user), which is the
context the app used to set for those reads itself. Their intermediate contexts never outlive the
call. `custodia_put_context` is the one writer of the context row they share; only the owner may
call it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations

APP = settings.APP_DB_ROLE

# Output columns: <model initial>_<column>. The app maps them back to model fields
# (core/actor.py: ContextGrant); tests/security/test_token_context.py checks that every
# field of the three models is here, so a new column fails a test rather than costing a query.
MEMBERSHIP_COLUMNS = """
    m_id uuid, m_tenant_id uuid, m_user_id uuid, m_role varchar, m_client_id uuid,
    m_is_active boolean, m_created_at timestamptz"""
BUSINESS_COLUMNS = """
    b_id uuid, b_name varchar, b_slug varchar, b_access_window_before_hours smallint,
    b_access_window_after_hours smallint, b_session_idle_minutes smallint,
    b_mfa_required_owners boolean, b_mfa_required_managers boolean,
    b_mfa_required_staff boolean, b_created_at timestamptz"""
USER_COLUMNS = """
    u_id uuid, u_email varchar, u_full_name varchar, u_is_active boolean,
    u_date_joined timestamptz, u_last_login timestamptz"""
SELECT_MEMBERSHIP = """m.id, m.tenant_id, m.user_id, m.role, m.client_id, m.is_active,
    m.created_at"""
SELECT_BUSINESS = """b.id, b.name, b.slug, b.access_window_before_hours,
    b.access_window_after_hours, b.session_idle_minutes, b.mfa_required_owners,
    b.mfa_required_managers, b.mfa_required_staff, b.created_at"""
SELECT_USER = "u.id, u.email, u.full_name, u.is_active, u.date_joined, u.last_login"
INTO_MEMBERSHIP = "m_id, m_tenant_id, m_user_id, m_role, m_client_id, m_is_active, m_created_at"
INTO_BUSINESS = """b_id, b_name, b_slug, b_access_window_before_hours,
    b_access_window_after_hours, b_session_idle_minutes, b_mfa_required_owners,
    b_mfa_required_managers, b_mfa_required_staff, b_created_at"""
INTO_USER = "u_id, u_email, u_full_name, u_is_active, u_date_joined, u_last_login"

HEADER = """LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
  SET search_path = pg_catalog, public, pg_temp"""

FORWARD: list[Any] = [
    # The context row of this backend, stamped with this transaction (as custodia_set_context
    # writes it), for the functions below. No key check: nobody but the owner may call it.
    f"""CREATE FUNCTION custodia_put_context(
        tenant uuid, usr uuid, membership uuid, client uuid, role_name text, lookup_prefix text)
        RETURNS void
  {HEADER}
AS $$
BEGIN
  INSERT INTO public.custodia_db_context AS c
      (pid, xid, tenant_id, user_id, membership_id, client_id, role, lookup)
    VALUES (pg_backend_pid(), pg_current_xact_id(), tenant, usr, membership, client,
      coalesce(role_name, ''), nullif(lookup_prefix, ''))
    ON CONFLICT (pid) DO UPDATE SET xid = EXCLUDED.xid, tenant_id = EXCLUDED.tenant_id,
      user_id = EXCLUDED.user_id, membership_id = EXCLUDED.membership_id,
      client_id = EXCLUDED.client_id, role = EXCLUDED.role, lookup = EXCLUDED.lookup;
END $$""",
    "REVOKE ALL ON FUNCTION custodia_put_context(uuid, uuid, uuid, uuid, text, text)"
    f" FROM PUBLIC, {APP}",
    f"""CREATE FUNCTION custodia_activate_token(key text, token_prefix text, digests text[])
  RETURNS TABLE (t_id uuid, t_scopes varchar[], t_digest_current boolean,
    {MEMBERSHIP_COLUMNS}, {USER_COLUMNS}, {BUSINESS_COLUMNS})
  {HEADER}
AS $$
DECLARE
  tok record;
BEGIN
  PERFORM custodia_check_context_key(key);
  -- Whatever follows, nothing of an earlier context survives this call: each way out below
  -- writes this transaction's context first.
  IF token_prefix IS NULL OR token_prefix !~ '^[0-9a-f]{{12}}$'
      OR cardinality(digests) IS NULL OR cardinality(digests) NOT BETWEEN 1 AND 8 THEN
    PERFORM custodia_put_context(NULL, NULL, NULL, NULL, '', NULL);
    RETURN;
  END IF;
  -- Before authentication, a token row is reachable by its public prefix alone.
  PERFORM custodia_put_context(NULL, NULL, NULL, NULL, '', token_prefix);
  -- Digests (HMACs under the server's key) are compared, never the secret: how long the
  -- comparison takes can only tell about an HMAC the caller cannot aim at.
  SELECT a.id, a.tenant_id, a.user_id, a.membership_id, a.scopes, a.last_used_at,
      a.digest = digests[1] AS digest_current
    INTO tok
    FROM public.accounts_apitoken a
    WHERE a.prefix = token_prefix AND a.digest = ANY (digests)
      AND a.revoked_at IS NULL AND a.expires_at > statement_timestamp();
  IF NOT FOUND THEN
    PERFORM custodia_put_context(NULL, NULL, NULL, NULL, '', NULL);
    RETURN;
  END IF;
  -- Authenticated: the token's own user, in the token's business, reads its membership.
  PERFORM custodia_put_context(tok.tenant_id, tok.user_id, NULL, NULL, '', NULL);
  SELECT {SELECT_MEMBERSHIP}, {SELECT_USER}, {SELECT_BUSINESS}
    INTO {INTO_MEMBERSHIP}, {INTO_USER}, {INTO_BUSINESS}
    FROM public.tenancy_membership m
      JOIN public.accounts_user u ON u.id = m.user_id
      JOIN public.tenancy_business b ON b.id = m.tenant_id
    WHERE m.id = tok.membership_id AND m.user_id = tok.user_id AND m.tenant_id = tok.tenant_id
      AND m.is_active AND u.is_active;
  IF NOT FOUND THEN
    PERFORM custodia_put_context(NULL, NULL, NULL, NULL, '', NULL);
    RETURN;
  END IF;
  PERFORM custodia_put_context(m_tenant_id, m_user_id, m_id, m_client_id, m_role, NULL);
  -- The last use, to the minute (the security panel shows it so): a write per request would
  -- make every read commit wait for a WAL flush.
  IF tok.last_used_at IS NULL OR tok.last_used_at <= statement_timestamp() - interval '1 minute'
  THEN
    UPDATE public.accounts_apitoken a SET last_used_at = statement_timestamp()
      WHERE a.id = tok.id AND (a.last_used_at IS NULL
        OR a.last_used_at <= statement_timestamp() - interval '1 minute');
  END IF;
  t_id := tok.id;
  t_scopes := tok.scopes;
  t_digest_current := tok.digest_current;
  RETURN NEXT;
END $$""",
    "REVOKE ALL ON FUNCTION custodia_activate_token(text, text, text[]) FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION custodia_activate_token(text, text, text[]) TO {APP}",
    f"""CREATE FUNCTION custodia_activate_member(key text, usr uuid, business uuid)
  RETURNS TABLE ({MEMBERSHIP_COLUMNS}, {BUSINESS_COLUMNS})
  {HEADER}
AS $$
BEGIN
  PERFORM custodia_check_context_key(key);
  PERFORM custodia_put_context(NULL, usr, NULL, NULL, '', NULL);
  IF usr IS NULL THEN
    RETURN;
  END IF;
  -- As tenancy.access.memberships_of: active memberships of an active login, by business name.
  SELECT {SELECT_MEMBERSHIP}, {SELECT_BUSINESS}
    INTO {INTO_MEMBERSHIP}, {INTO_BUSINESS}
    FROM public.tenancy_membership m
      JOIN public.accounts_user u ON u.id = m.user_id
      JOIN public.tenancy_business b ON b.id = m.tenant_id
    WHERE m.user_id = usr AND m.is_active AND u.is_active
      AND (business IS NULL OR m.tenant_id = business)
    ORDER BY b.name, b.id
    LIMIT 1;
  IF NOT FOUND THEN
    RETURN;  -- the user's context alone, as for a session that acts for no business
  END IF;
  PERFORM custodia_put_context(m_tenant_id, usr, m_id, m_client_id, m_role, NULL);
  RETURN NEXT;
END $$""",
    "REVOKE ALL ON FUNCTION custodia_activate_member(text, uuid, uuid) FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION custodia_activate_member(text, uuid, uuid) TO {APP}",
]

BACKWARD: list[Any] = [
    "DROP FUNCTION IF EXISTS custodia_activate_member(text, uuid, uuid)",
    "DROP FUNCTION IF EXISTS custodia_activate_token(text, text, text[])",
    "DROP FUNCTION IF EXISTS custodia_put_context(uuid, uuid, uuid, uuid, text, text)",
]


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0005_verified_context")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
