"""The pgbackrest engine's manifests, made and checked with the logical engine's code
(lifecycle/backups): one format, one signing key (the audit key, Ed25519), one check. This is
the only module of the engine that reaches into the logical one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from custodia.embedded import admin_connection
from custodia.lifecycle import backups
from custodia.lifecycle.backups import BackupError
from custodia.lifecycle.backups.logical import SCHEMA_SQL
from custodia.lifecycle.backups.store import read_manifest_file, write_file_atomically

FORMAT = backups.FORMAT
SUFFIX = backups.MANIFEST_SUFFIX


def database_name() -> str:
    """The database the app uses (the one a manifest counts)."""
    return backups.database_name()


def count(admin: Mapping[str, str], database: str) -> tuple[dict[str, int], dict[str, str], str]:
    """Row counts of every table, applied migrations and the server version, in one snapshot."""
    try:
        conn = admin_connection(admin, database)
    except psycopg.OperationalError as exc:
        raise BackupError(f"Cannot connect to database {database!r}: {exc}".strip()) from None
    with conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        tables = backups.row_counts(conn)
        schema: dict[str, str] = {}
        if "public.django_migrations" in tables:
            schema = dict(conn.execute(SCHEMA_SQL).fetchall())
        version = conn.execute("SHOW server_version").fetchone()
        conn.rollback()
    return tables, schema, str(version[0]) if version else ""


def write(path: Path, manifest: dict[str, Any]) -> None:
    """Sign `manifest` and write it to `path` atomically (a .partial file, fsync, rename)."""
    signed = backups.sign_manifest(manifest)
    write_file_atomically(path, lambda handle: handle.write(signed))


def read(path: Path) -> tuple[dict[str, Any], str | None]:
    """A manifest file's content and what is wrong with it (None: signed by this install's key,
    unaltered, of this format)."""
    return read_manifest_file(path, FORMAT)
