"""Helpers for the encryption tests: raw reads and writes of stored values, as custodia_app."""

from __future__ import annotations

from typing import Any

from django.db import connection
from psycopg import sql

from custodia.core.actor import Actor
from tests.acting import act

# Each encrypted table with its primary-key column.
PRIMARY_KEYS = {
    "clients_client": "id",
    "clients_homeaccess": "client_id",
    "clients_pet": "id",
    "scheduling_visit": "id",
    "scheduling_visitphoto": "id",
}


def stored(actor: Actor, table: str, column: str, row: object) -> bytes:
    """The bytes in the column, read with raw SQL in the actor's row-level security context."""
    act(actor)
    query = sql.SQL("SELECT {column} FROM {table} WHERE {pk} = %s").format(
        column=sql.Identifier(column),
        table=sql.Identifier(table),
        pk=sql.Identifier(PRIMARY_KEYS[table]),
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [row])
        rows = cursor.fetchall()
    assert len(rows) == 1, f"{table} row {row} not visible"
    return bytes(rows[0][0])


def plant(actor: Actor, table: str, column: str, row: object, blob: Any) -> None:
    """Overwrite the stored bytes (what an attacker with write access to the database does)."""
    act(actor)
    statement = sql.SQL("UPDATE {table} SET {column} = %s WHERE {pk} = %s").format(
        column=sql.Identifier(column),
        table=sql.Identifier(table),
        pk=sql.Identifier(PRIMARY_KEYS[table]),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [blob, row])
        assert cursor.rowcount == 1, f"{table} row {row} not written"
