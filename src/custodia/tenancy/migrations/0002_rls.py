from __future__ import annotations

from django.db import migrations

from custodia.core.rls import (
    DROP_FUNCTIONS_SQL,
    FUNCTIONS_SQL,
    IN_TENANT,
    MEMBERSHIP_SELECT,
    guard_table,
    same_tenant,
    tenant_key,
)

OWNER_HERE = "id = custodia_tenant_id() AND custodia_role() = 'owner'"
MANAGER_HERE = f"{IN_TENANT} AND custodia_is_manager()"
# Owners manage every membership; managers only those of staff and client logins, so a manager
# can neither make themself (or anyone) an owner or manager nor change one (the role rules of
# tenancy/actions.py, here as a backstop).
MANAGES_MEMBER = f"""{IN_TENANT} AND (custodia_role() = 'owner'
    OR (custodia_role() = 'manager' AND role IN ('staff', 'client')))"""
# A person may add themself to a business only with a live invitation for exactly that role
# (and, for a client, exactly that client record) sent to their own email, named by the
# invitation's public prefix.
INVITED_SELF = """user_id = custodia_user_id() AND EXISTS (
    SELECT 1 FROM tenancy_invitation i
    WHERE i.tenant_id = tenancy_membership.tenant_id AND i.prefix = custodia_lookup()
      AND i.role = tenancy_membership.role
      AND i.client_id IS NOT DISTINCT FROM tenancy_membership.client_id
      AND lower(i.email) = (SELECT lower(u.email) FROM accounts_user u
                            WHERE u.id = custodia_user_id())
      AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now())"""
# Only an owner invites an owner.
MAY_INVITE = f"{MANAGER_HERE} AND (custodia_role() = 'owner' OR role <> 'owner')"
# The invitee (who knows the prefix) may only mark a pending invitation accepted.
PENDING_BY_PREFIX = "prefix = custodia_lookup() AND accepted_at IS NULL AND revoked_at IS NULL"
ACCEPTED_BY_PREFIX = "prefix = custodia_lookup() AND accepted_at IS NOT NULL"


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTIONS_SQL, DROP_FUNCTIONS_SQL),
        guard_table(
            "tenancy_business",
            # Members see their businesses; an invitation link (by its prefix) shows whose it is.
            select="""id = custodia_tenant_id() OR EXISTS (
                SELECT 1 FROM tenancy_membership m WHERE m.tenant_id = tenancy_business.id
                AND m.user_id = custodia_user_id() AND m.is_active) OR EXISTS (
                SELECT 1 FROM tenancy_invitation i WHERE i.tenant_id = tenancy_business.id
                AND i.prefix = custodia_lookup())""",
            insert=OWNER_HERE,
            update=OWNER_HERE,
            delete=OWNER_HERE,
        ),
        guard_table(
            "tenancy_membership",
            select=MEMBERSHIP_SELECT,
            insert=f"({MANAGES_MEMBER}) OR ({IN_TENANT} AND {INVITED_SELF})",
            update=MANAGES_MEMBER,
            delete=MANAGES_MEMBER,
        ),
        guard_table(
            "tenancy_invitation",
            select=f"({MANAGER_HERE}) OR prefix = custodia_lookup()",
            insert=MAY_INVITE,
            update=f"{IN_TENANT} AND (custodia_is_manager() OR ({PENDING_BY_PREFIX}))",
            update_check=f"{IN_TENANT} AND (custodia_is_manager() OR ({ACCEPTED_BY_PREFIX}))",
            delete=MANAGER_HERE,
        ),
        tenant_key("tenancy_membership"),
        same_tenant("tenancy_invitation", "invited_by_id", "tenancy_membership"),
    ]
