"""Row-level security on the wallet tables, same-tenant foreign keys, the closed-business guard.

- In a business's context: managers and owners (and a periodic task's system actor) see and
  change every wallet pass and registration of their business; a client only their own.
- A device's request carries no session. Its pass is found by its token's digest
  (`custodia_lookup()` = 'wallet-token:<digest>'), and it then acts as that pass's client
  (tenancy/actors.py: pass_holder_actor); a device's list of its passes is found by its device
  library identifier ('wallet-device:<id>'), which shows its registrations and their passes,
  nothing else. A connection that sets the settings by hand sees nothing (tenancy/0005).
- The policy of wallet passes reads registrations, never the other way round (no recursion).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from custodia.core.rls import CLIENT_OF_ACTOR, IN_TENANT, guard_table, same_tenant, tenant_key

OWN_OR_MANAGED = f"{IN_TENANT} AND (custodia_is_manager() OR client_id = {CLIENT_OF_ACTOR})"
CLIENT_OWN = f"{IN_TENANT} AND custodia_role() = 'client' AND client_id = {CLIENT_OF_ACTOR}"
BY_TOKEN = "custodia_lookup() = 'wallet-token:' || auth_digest"  # noqa: S105
BY_DEVICE = "custodia_lookup() = 'wallet-device:' || device_library_id"
REGISTERED_BY_DEVICE = """EXISTS (SELECT 1 FROM wallet_walletregistration r
    WHERE r.wallet_pass_id = wallet_walletpass.id
      AND custodia_lookup() = 'wallet-device:' || r.device_library_id)"""

TABLES = ("wallet_walletpass", "wallet_walletregistration")


def closed_guard(table: str) -> migrations.RunSQL:
    """A closed business's rows of `table` refuse every write (tenancy/0008)."""
    forward: list[Any] = [
        f"CREATE TRIGGER {table}_closed BEFORE INSERT OR UPDATE OR DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()"
    ]
    return migrations.RunSQL(forward, [f"DROP TRIGGER IF EXISTS {table}_closed ON {table}"])


class Migration(migrations.Migration):
    dependencies = [("wallet", "0001_initial")]

    operations = [
        guard_table(
            "wallet_walletpass",
            select=f"({OWN_OR_MANAGED}) OR {BY_TOKEN} OR {REGISTERED_BY_DEVICE}",
            insert=CLIENT_OWN,
            update=OWN_OR_MANAGED,
            delete=OWN_OR_MANAGED,
        ),
        guard_table(
            "wallet_walletregistration",
            select=f"({OWN_OR_MANAGED}) OR {BY_DEVICE}",
            insert=CLIENT_OWN,
            update=OWN_OR_MANAGED,
            delete=OWN_OR_MANAGED,
        ),
        *(tenant_key(table) for table in TABLES),
        same_tenant("wallet_walletpass", "client_pass_id", "payments_clientpass"),
        same_tenant("wallet_walletpass", "client_id", "clients_client"),
        same_tenant("wallet_walletregistration", "wallet_pass_id", "wallet_walletpass"),
        same_tenant("wallet_walletregistration", "client_id", "clients_client"),
        *(closed_guard(table) for table in TABLES),
    ]
