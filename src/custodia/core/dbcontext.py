"""The transaction-local database context that the row-level security policies read.

The context is set only through `custodia_set_context`, a database function that checks the
install's context key (`settings.DB_CONTEXT_KEY`) before writing where the policies read
(tenancy/migrations/0005_verified_context.py). A session that holds the app role's password but
not the key sees no tenant row and can add nothing to the audit trail.

An actor's whole context is set by `core.actor.acting_as`; the partial ones here (a user alone,
a token or invitation lookup, no one) serve the steps before an actor is known.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from django.conf import settings
from django.db import connections

SET_CONTEXT_SQL = "SELECT custodia_set_context(%s, %s, %s, %s, %s, %s, %s)"
ENSURE_CONTEXT_SQL = "SELECT custodia_ensure_context(%s)"


def set_db_context(
    *,
    tenant_id: object = None,
    user_id: object = None,
    membership_id: object = None,
    client_id: object = None,
    role: str = "",
    lookup: str = "",
    durable: bool = True,
    using: str = "default",
) -> None:
    """Set the whole RLS context for the rest of the current transaction (unset parts empty).

    `durable=False` lets the commit return before its WAL is flushed (docs/audit.md): for
    requests that change nothing but the audit trail's read events.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("The tenant context can only be set inside a transaction.")
    params = [
        settings.DB_CONTEXT_KEY,
        None if tenant_id is None else str(tenant_id),
        None if user_id is None else str(user_id),
        None if membership_id is None else str(membership_id),
        None if client_id is None else str(client_id),
        role,
        lookup,
    ]
    sql = SET_CONTEXT_SQL
    if not durable:
        sql += ", set_config('synchronous_commit', 'off', true)"
    _execute_with_key(using, sql, params)


def ensure_context(*, using: str = "default") -> None:
    """A verified context for the current transaction: the one already set, else an empty one
    (no tenant, no user). The platform chain's audit events need one wherever they happen."""
    if not connections[using].in_atomic_block:
        raise RuntimeError("The tenant context can only be set inside a transaction.")
    _execute_with_key(using, ENSURE_CONTEXT_SQL, [settings.DB_CONTEXT_KEY])


def _execute_with_key(using: str, sql: str, params: Sequence[object]) -> None:
    connection = connections[using]
    connection.ensure_connection()
    # A psycopg cursor of its own, not Django's: the key goes as a bound parameter (never in the
    # query text that pg_stat_activity shows other sessions of the role), and never into
    # Django's query log.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)


def transaction_failed(*, using: str = "default") -> bool:
    """Whether the current transaction hit an error, so that only a rollback may follow."""
    connection = connections[using]
    if connection.needs_rollback:
        return True
    raw = connection.connection
    return raw is not None and raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


def clear(*, using: str = "default") -> None:
    """No tenant, no user: every tenant-owned table reads as empty."""
    set_db_context(using=using)


def forget_ended_backends(*, using: str = "owner") -> int:
    """Delete the stored contexts of database backends that no longer exist (one row per
    backend is kept between its transactions; a new backend may reuse a pid, and replaces the
    row then). Runs as the owner role; returns how many went."""
    with connections[using].cursor() as cursor:
        # Within a transaction, pg_stat_activity repeats its first snapshot: take a new one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "DELETE FROM custodia_db_context"
            " WHERE pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)"
        )
        return int(cursor.rowcount)
