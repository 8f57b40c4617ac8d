"""Rewriting a business's stored values in place, in batches: the first encryption of existing
rows (migrations) and re-encryption under a new key version (`custodia keys rotate-business`).

Each batch is its own short transaction on the owner connection, in the business's row-level
security context as a manager (role 'owner'): it locks its rows (`FOR UPDATE`),
rewrites the ones that need it, and commits. A concurrent writer waits for at most one batch;
readers never wait. Progress is the data itself: a row already under the target version is
skipped, so an interrupted run that is started again goes on where it stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connections, migrations, transaction
from psycopg import sql

from custodia.core.dbcontext import set_db_context
from custodia.core.permissions import Role
from custodia.crypto.fields import (
    EncryptedBinaryField,
    EncryptedTextField,
    open_bytes,
    seal_bytes,
    seal_text,
)
from custodia.crypto.keyring import FORMAT_AES_GCM, create_keys, keys_for, version_of
from custodia.tenancy.access import business_slugs

# The connection the key commands work on: the owner role, which may enter any business's
# row-level security context (tests of the rewrite point it at their own transaction).
USING = "owner"
BATCH_ROWS = 500
# Rows with sealed bytes (photos, up to a few megabytes each) are rewritten a few at a time.
BINARY_BATCH_ROWS = 8
FIRST_BATCH_SQL = "SELECT {pk} FROM {table} WHERE tenant_id = %s{stale} ORDER BY {pk} LIMIT %s"
NEXT_BATCH_SQL = (
    "SELECT {pk} FROM {table} WHERE tenant_id = %s AND {pk} > %s{stale} ORDER BY {pk} LIMIT %s"
)


@dataclass(frozen=True)
class SealedTable:
    """A table with encrypted columns."""

    table: str
    pk: str
    columns: tuple[str, ...]
    batch_rows: int = BATCH_ROWS


def sealed_tables() -> list[SealedTable]:
    """Every table with an EncryptedTextField, from the installed models."""
    from django.apps import apps

    tables = []
    for model in apps.get_models():
        columns = tuple(
            field.column
            for field in model._meta.local_fields
            if isinstance(field, EncryptedTextField)
        )
        if columns:
            # rewrite_batch joins new values back by a uuid[] of primary keys.
            pk = model._meta.pk
            if pk is None or pk.get_internal_type() not in {"UUIDField", "OneToOneField"}:
                raise TypeError(f"{model.__name__} has encrypted fields but no UUID key.")
            binary = any(
                isinstance(field, EncryptedBinaryField) for field in model._meta.local_fields
            )
            batch_rows = BINARY_BATCH_ROWS if binary else BATCH_ROWS
            tables.append(SealedTable(model._meta.db_table, pk.column, columns, batch_rows))
    return sorted(tables, key=lambda table: table.table)


# The encrypt migrations run before that migration on a new database: then the policies read
# transaction-local settings.
ENTER_BEFORE_VERIFIED_CONTEXT_SQL = (
    "SELECT set_config('custodia.tenant_id', %s, true), set_config('custodia.role', 'owner', true)"
)
HAS_VERIFIED_CONTEXT_SQL = (
    "SELECT to_regprocedure('custodia_set_context(text, uuid, uuid, uuid, uuid, text, text)')"
    " IS NOT NULL"
)


def enter_business(cursor: Any, business_id: object) -> None:
    """The business's RLS context as a manager, for the rest of this transaction (owner role)."""
    cursor.execute(HAS_VERIFIED_CONTEXT_SQL)
    verified = cursor.fetchone()[0]
    if verified:
        set_db_context(tenant_id=business_id, role=Role.OWNER, using=cursor.db.alias)
    else:
        cursor.execute(ENTER_BEFORE_VERIFIED_CONTEXT_SQL, [str(business_id)])


UPDATE_SQL = (
    "UPDATE {table} AS t SET {assignments} FROM unnest(%s::uuid[], {arrays})"
    " AS v({pk}, {columns}) WHERE t.{pk} = v.{pk}"
)


def _query(cursor: Any, template: str, table: SealedTable) -> str:
    """`template` with {table}, {pk}, {columns}, {assignments} (column = v.column) and {arrays}
    (one bytea[] parameter per column) filled in as quoted identifiers."""
    columns = [sql.Identifier(column) for column in table.columns]
    return (
        sql.SQL(template)
        .format(
            table=sql.Identifier(table.table),
            pk=sql.Identifier(table.pk),
            columns=sql.SQL(", ").join(columns),
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = v.{}").format(column, column) for column in columns
            ),
            arrays=sql.SQL(", ").join(sql.SQL("%s::bytea[]") for _ in columns),
        )
        .as_string(cursor.connection)
    )


def batches(
    using: str, business_id: object, table: SealedTable, *, not_under: int | None = None
) -> Iterator[list[Any]]:
    """Keys of the business's rows in `table`, in primary-key order, `batch_rows` at a time;
    with `not_under`, only rows with a value that is not sealed under that key version (so a
    resumed rotation, or its final sweep, reads only what is left to do)."""
    last: Any = None
    while True:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            enter_business(cursor, business_id)
            params: list[Any] = [str(business_id)]
            if last is not None:
                params.append(last)
            query = sql.SQL(FIRST_BATCH_SQL if last is None else NEXT_BATCH_SQL).format(
                pk=sql.Identifier(table.pk),
                table=sql.Identifier(table.table),
                stale=_stale_filter(table) if not_under is not None else sql.SQL(""),
            )
            if not_under is not None:
                header = bytes([FORMAT_AES_GCM]) + not_under.to_bytes(4, "big")
                params += [header] * len(table.columns)
            cursor.execute(query.as_string(cursor.connection), [*params, table.batch_rows])
            keys = [row[0] for row in cursor.fetchall()]
        if not keys:
            return
        yield keys
        last = keys[-1]


def _stale_filter(table: SealedTable) -> sql.Composable:
    return sql.SQL(" AND ({})").format(
        sql.SQL(" OR ").join(
            sql.SQL("substring({} FOR 5) <> %s").format(sql.Identifier(column))
            for column in table.columns
        )
    )


Transform = Callable[[uuid.UUID, str, str, Any, bytes], bytes | None]


def rewrite_batch(
    using: str, business_id: object, table: SealedTable, keys: list[Any], transform: Transform
) -> int:
    """Apply `transform` to each value of the rows `keys` (None: leave it); returns rows changed."""
    business = uuid.UUID(str(business_id))
    changed = 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        enter_business(cursor, business)
        template = "SELECT {pk}, {columns} FROM {table} WHERE tenant_id = %s AND {pk} = ANY(%s)"
        cursor.execute(_query(cursor, template + " FOR UPDATE", table), [str(business), keys])
        updates = []
        for pk, *values in cursor.fetchall():
            new = [
                None
                if value is None
                else transform(business, table.table, column, pk, bytes(value))
                for column, value in zip(table.columns, values, strict=True)
            ]
            if any(value is not None for value in new):
                kept = [n if n is not None else v for n, v in zip(new, values, strict=True)]
                updates.append([*kept, pk])
        if updates:
            # One statement per batch: the new values as arrays, joined back by primary key
            # (the tables with encrypted columns have UUID keys).
            columns = [list(column) for column in zip(*updates, strict=True)]
            cursor.execute(_query(cursor, UPDATE_SQL, table), [columns[-1], *columns[:-1]])
            changed = len(updates)
    return changed


def reseal_to_primary(
    business: uuid.UUID, table: str, column: str, row: Any, blob: bytes
) -> bytes | None:
    """Re-encrypt a value under the business's primary key; None if it is already."""
    if version_of(blob) == keys_for(business).primary:
        return None
    # As bytes: the same for text (sealed as UTF-8) and for binary columns (photos).
    plaintext = open_bytes(business, table, column, row, blob)
    return seal_bytes(business, table, column, row, plaintext)


def seal_plain_utf8(
    business: uuid.UUID, table: str, column: str, row: Any, raw: bytes
) -> bytes | None:
    """Encrypt a value that is still its plain UTF-8 bytes (the migration to encrypted columns)."""
    return seal_text(business, table, column, row, raw.decode())


def encrypt_plain_columns(using: str, table: SealedTable) -> None:
    """Migrations: encrypt columns just converted from text (their UTF-8 bytes), for every
    business, making businesses' keys first where they have none."""
    for business in business_ids(using):
        create_keys(business)
        for keys in batches(using, business, table):
            rewrite_batch(using, business, table, keys, seal_plain_utf8)


def business_ids(using: str) -> list[uuid.UUID]:
    """Every business (the owner role may list them: audit/migrations/0002_integrity)."""
    return sorted(business_slugs(using))


def plain_columns_to_bytes(table: SealedTable) -> migrations.RunSQL:
    """Migrations: turn text columns into bytea holding their UTF-8 bytes (then
    `encrypt_plain_columns` seals them)."""
    return migrations.RunSQL(
        [
            f"ALTER TABLE {table.table} ALTER COLUMN {column} TYPE bytea"
            f" USING convert_to({column}, 'UTF8')"
            for column in table.columns
        ]
    )


# What an encrypted column may hold, checked by the database itself: a sealed value (format 1,
# at least header, nonce and tag long) or the benchmark's plaintext format 0. Text written by
# some other path (raw SQL, an expression the field cannot see) starts with neither byte.
SEALED_CHECK = (
    "CASE WHEN octet_length({column}) = 0 THEN false"
    " WHEN get_byte({column}, 0) = 1 THEN octet_length({column}) >= 33"
    " ELSE get_byte({column}, 0) = 0 END"
)


def sealed_constraints(table: SealedTable) -> migrations.RunSQL:
    """Migrations: one CHECK per encrypted column of `table` (SEALED_CHECK)."""
    # NOT VALID, then VALIDATE: the scan of existing rows does not block writers.
    forward: list[Any] = [
        statement
        for column in table.columns
        for statement in (
            f"ALTER TABLE {table.table} ADD CONSTRAINT {table.table}_{column}_sealed"
            f" CHECK ({SEALED_CHECK.format(column=column)}) NOT VALID",
            f"ALTER TABLE {table.table} VALIDATE CONSTRAINT {table.table}_{column}_sealed",
        )
    ]
    backward: list[Any] = [
        f"ALTER TABLE {table.table} DROP CONSTRAINT IF EXISTS {table.table}_{column}_sealed"
        for column in table.columns
    ]
    return migrations.RunSQL(forward, backward)
