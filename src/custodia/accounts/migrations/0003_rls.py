from __future__ import annotations

from django.db import migrations

from custodia.core.rls import IN_TENANT, guard_table, same_tenant

OWN_TOKEN = f"{IN_TENANT} AND user_id = custodia_user_id()"


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_initial"), ("tenancy", "0002_rls")]

    operations = [
        guard_table(
            "accounts_apitoken",
            # Before authentication the only way to a token row is its public prefix.
            select=f"({OWN_TOKEN}) OR prefix = custodia_lookup()",
            insert=f"{OWN_TOKEN} AND membership_id = custodia_membership_id()",
            # Found by prefix, a token is only read: it is updated (last use, revocation) only by
            # its own user in its own business, so a prefix alone cannot revive or widen it.
            update=OWN_TOKEN,
            delete=OWN_TOKEN,
        ),
        same_tenant("accounts_apitoken", "membership_id", "tenancy_membership"),
    ]
