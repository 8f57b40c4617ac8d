"""Row-level security for cards: saved cards, card payments, refunds (docs/payments-domain.md).

- Saved cards (`payments_paymentmethod`): managers and owners of the business read and write
  them (the actions narrow writing to the card permissions); a client reads and writes only their
  own; staff nothing.
- Card payments: besides managers, a client may insert a *pending card* payment against one of
  their own issued invoices (paying it in the portal), nothing more: the vault's answer is
  written by the business's system actor (payments/actions/cards.py), so a client's context can
  never mark a payment succeeded or an invoice paid.
- Refunds: managers write them; a client reads those of the payments they see.
Every new table has the tenant key, same-tenant foreign keys and the closed-business guard.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.db import migrations

from custodia.core.rls import IN_TENANT, guard_table, once_per_query, same_tenant, tenant_key

# The names the first payments policies were written with (a module name cannot be imported
# with `from`: it starts with a digit).
_rls = import_module("custodia.payments.migrations.0002_rls")
IS_CLIENT: str = _rls.IS_CLIENT
MANAGER_HERE: str = _rls.MANAGER_HERE
OF_VISIBLE_INVOICE: str = _rls.OF_VISIBLE_INVOICE
OWN_CLIENT: str = _rls.OWN_CLIENT
closed_guard = _rls.closed_guard

PENDING_CARD_PAYMENT_OF_CLIENT = (
    f"{IN_TENANT} AND {IS_CLIENT} AND method = 'card' AND status = 'pending'"
    f" AND {OF_VISIBLE_INVOICE.format(table='payments_payment')}"
)
PAYMENT_INSERT = f"({MANAGER_HERE}) OR ({PENDING_CARD_PAYMENT_OF_CLIENT})"

# A card payment's refunds make its payments deleted one by one in a purge, after their
# recorded_by is set NULL (the members go too): that one change passes the closed guard.
PAYMENT_LOSES_RECORDER = """OLD.recorded_by_id IS NOT NULL AND NEW.recorded_by_id IS NULL
    AND (to_jsonb(NEW) - 'recorded_by_id') = (to_jsonb(OLD) - 'recorded_by_id')"""
PAYMENT_GUARD_SQL: list[Any] = [
    "DROP TRIGGER IF EXISTS payments_payment_closed ON payments_payment",
    "CREATE TRIGGER payments_payment_closed BEFORE INSERT OR DELETE ON payments_payment"
    " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()",
    "CREATE TRIGGER payments_payment_closed_update BEFORE UPDATE ON payments_payment"
    f" FOR EACH ROW WHEN (NOT ({PAYMENT_LOSES_RECORDER}))"
    " EXECUTE FUNCTION custodia_refuse_closed_write()",
]
PAYMENT_GUARD_REVERSE: list[Any] = [
    "DROP TRIGGER IF EXISTS payments_payment_closed_update ON payments_payment",
    "DROP TRIGGER IF EXISTS payments_payment_closed ON payments_payment",
    "CREATE TRIGGER payments_payment_closed BEFORE INSERT OR UPDATE OR DELETE ON payments_payment"
    " FOR EACH ROW EXECUTE FUNCTION custodia_refuse_closed_write()",
]


def replace_policy(table: str, command: str, new: str, old: str) -> migrations.RunSQL:
    """Swap one command's policy on `table` (USING and WITH CHECK the same expression)."""

    def create(expression: str) -> str:
        expression = once_per_query(expression)
        if command == "insert":
            clause = f"WITH CHECK ({expression})"
        else:
            clause = f"USING ({expression}) WITH CHECK ({expression})"
        return f"CREATE POLICY {table}_{command} ON {table} FOR {command.upper()} {clause}"

    drop = f"DROP POLICY IF EXISTS {table}_{command} ON {table}"
    return migrations.RunSQL([drop, create(new)], [drop, create(old)])


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_cards")]

    operations = [
        guard_table(
            "payments_paymentmethod",
            select=f"{IN_TENANT} AND (custodia_is_manager() OR ({OWN_CLIENT}))",
            insert=f"{IN_TENANT} AND (custodia_is_manager() OR ({OWN_CLIENT}))",
            update=f"{IN_TENANT} AND (custodia_is_manager() OR ({OWN_CLIENT}))",
            delete=MANAGER_HERE,
        ),
        guard_table(
            "payments_refund",
            select=f"""{IN_TENANT} AND (custodia_is_manager()
                OR ({IS_CLIENT} AND EXISTS (SELECT 1 FROM payments_payment p
                    WHERE p.tenant_id = payments_refund.tenant_id
                      AND p.id = payments_refund.payment_id)))""",
            insert=MANAGER_HERE,
            update=MANAGER_HERE,
            delete=MANAGER_HERE,
        ),
        replace_policy("payments_payment", "insert", PAYMENT_INSERT, MANAGER_HERE),
        tenant_key("payments_paymentmethod"),
        tenant_key("payments_refund"),
        same_tenant("payments_paymentmethod", "client_id", "clients_client"),
        same_tenant("payments_payment", "payment_method_id", "payments_paymentmethod"),
        same_tenant("payments_refund", "payment_id", "payments_payment"),
        closed_guard("payments_paymentmethod"),
        closed_guard("payments_refund"),
        migrations.RunSQL(PAYMENT_GUARD_SQL, PAYMENT_GUARD_REVERSE),
    ]
