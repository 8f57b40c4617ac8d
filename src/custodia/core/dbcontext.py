"""The transaction-local database context that the row-level security policies read.

The context is set only through database functions that check the install's context key
(`settings.DB_CONTEXT_KEY`) before writing where the policies read: `custodia_set_context`
(tenancy/migrations/0005_verified_context.py), and, each in the request's one round trip,
`custodia_activate_token` for a bearer token and `custodia_activate_member` for a signed-in
session (tenancy/migrations/0006_one_trip_context.py). A session that holds the app role's
password but not the key sees no tenant row and can add nothing to the audit trail.

An actor's whole context is set by `core.actor.acting_as`; the partial ones here (a user alone,
a token or invitation lookup, no one) serve the steps before an actor is known, and the one-trip
functions set an actor's context that `acting_as(actor, context_set=True)` then adopts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections

SET_CONTEXT_SQL = "SELECT custodia_set_context(%s, %s, %s, %s, %s, %s, %s)"
ENSURE_CONTEXT_SQL = "SELECT custodia_ensure_context(%s)"
ACTIVATE_TOKEN_SQL = "SELECT * FROM custodia_activate_token(%s, %s, %s)"  # noqa: S105
ACTIVATE_MEMBER_SQL = "SELECT * FROM custodia_activate_member(%s, %s, %s)"
# A GET or HEAD commits without waiting for its WAL flush (docs/audit.md), set in the same trip.
RELAXED_COMMIT_SQL = "SELECT set_config('synchronous_commit', 'off', true)"


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
    _fetch_with_key(using, sql, params)


def _fetch_with_key(
    using: str, sql: str, params: Sequence[object]
) -> tuple[list[str], tuple[Any, ...] | None]:
    """Run `sql` with the key among `params`; its column names and first row (None if none)."""
    connection = connections[using]
    connection.ensure_connection()
    # A psycopg cursor of its own, not Django's: the key goes as a bound parameter (never in the
    # query text that pg_stat_activity shows other sessions of the role), and never into
    # Django's query log.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        # Whether this request's context is set yet (`cleared_unless_set` below).
        connection.custodia_context_set = True  # type: ignore[attr-defined]
        result = cursor.pgresult
        if result is None or not result.nfields:
            return [], None
        # The names straight from the result: `cursor.description` builds a Column per column,
        # each looking up its type (0.6 ms for the ~30 columns of a grant, on every request).
        names = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
        return names, cursor.fetchone()


def fetch_all_with_key(
    sql: str, params: Sequence[object], *, using: str = "default"
) -> list[tuple[Any, ...]]:
    """Every row of `sql`, a call of a function whose first argument is the context key (put
    before `params` here), run like `set_db_context`: the key bound, never logged. Inside a
    transaction."""
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("The tenant context can only be set inside a transaction.")
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [settings.DB_CONTEXT_KEY, *params])
        connection.custodia_context_set = True  # type: ignore[attr-defined]
        return list(cursor.fetchall())


@dataclass(frozen=True)
class ContextGrant:
    """What `activate_token` or `activate_member` established: the column values of the
    membership, its business and (for a token) its login and token, keyed by field attname.

    Enough to build the actor without another query (accounts/access.py, web/middleware.py).
    """

    membership: dict[str, Any]
    business: dict[str, Any]
    user: dict[str, Any] = field(default_factory=dict)
    token: dict[str, Any] = field(default_factory=dict)


# Output column prefixes of the functions (tenancy/migrations/0006_one_trip_context.py).
_GRANT_PARTS = {"m_": "membership", "b_": "business", "u_": "user", "t_": "token"}


def _grant(columns: list[str], row: tuple[Any, ...] | None) -> ContextGrant | None:
    if row is None:
        return None
    parts: dict[str, dict[str, Any]] = {part: {} for part in _GRANT_PARTS.values()}
    for column, value in zip(columns, row, strict=True):
        part = _GRANT_PARTS.get(column[:2])
        if part is not None:
            parts[part][column[2:]] = value
    return ContextGrant(**parts)


def _relaxed(sql: str, durable: bool) -> str:
    return sql if durable else f"{sql} CROSS JOIN ({RELAXED_COMMIT_SQL}) AS relaxed"


def activate_token(
    prefix: str, digests: Sequence[str], *, durable: bool = True, using: str = "default"
) -> ContextGrant | None:
    """Authenticate an API token and set its membership's context, in one round trip.

    `digests` are the HMACs of the presented secret under SECRET_KEY and then each fallback key
    (accounts/digests.py); the secret itself never reaches the database. The function compares
    them with the stored digest and checks expiry, revocation, the membership, the login and the
    business; it records the last use at most once a minute. None (and an empty context, no
    tenant and no user) for anything but a live token. `token["digest_current"]` is False when
    the stored digest was made under a fallback key.
    """
    if not connections[using].in_atomic_block:
        raise RuntimeError("The tenant context can only be set inside a transaction.")
    params = [settings.DB_CONTEXT_KEY, prefix, list(digests)]
    return _grant(*_fetch_with_key(using, _relaxed(ACTIVATE_TOKEN_SQL, durable), params))


def activate_member(
    user_id: object, business_id: uuid.UUID | None, *, durable: bool = True, using: str = "default"
) -> ContextGrant | None:
    """Set a signed-in user's context in one round trip: their active membership in
    `business_id` (naming none, their first by business name), else the user's alone (None)."""
    if not connections[using].in_atomic_block:
        raise RuntimeError("The tenant context can only be set inside a transaction.")
    business = None if business_id is None else str(business_id)
    params = [settings.DB_CONTEXT_KEY, str(user_id), business]
    return _grant(*_fetch_with_key(using, _relaxed(ACTIVATE_MEMBER_SQL, durable), params))


@contextmanager
def cleared_unless_set(*, using: str = "default") -> Iterator[None]:
    """An empty context before the first query, unless a context is set before it.

    For a request whose authentication sets the context in its own first query (a bearer token,
    through `activate_token`): whatever queries first without one gets `clear()` ahead of it, so
    nothing ever runs in the request's transaction without a verified context.
    """
    connection = connections[using]
    connection.custodia_context_set = False  # type: ignore[attr-defined]

    def guard(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not connection.custodia_context_set:  # type: ignore[attr-defined]
            set_db_context(using=using)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(guard):
        yield


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
