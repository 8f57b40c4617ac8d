"""The logical engine (docs/backups.md): `pg_dump` streamed through age encryption into a store,
a signed manifest, checked restores.

The payload is the database in `pg_dump`'s custom format encrypted to the recipients' age
public keys (so the host that writes backups cannot read them); the manifest says what it
holds: sha256 and size of the encrypted file, per-table row counts and checksums and the
applied migrations, all read in the dump's own snapshot, signed with Ed25519 by the audit key.

A restore goes into a new database in one transaction and is checked against the manifest's row
counts and checksums; if anything fails, the new database is dropped.

The dump connects as the admin role (ADMIN_DATABASE, a superuser): row-level security is forced
on the owner role, and a backup must hold every business.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, cast

import psycopg
import pyrage
from django.conf import settings
from psycopg import sql

from custodia.embedded import admin_connection, postgres_bin_dir
from custodia.lifecycle.backups.keys import recipients
from custodia.lifecycle.backups.manifest import BackupError, sign_manifest
from custodia.lifecycle.backups.store import Backup, Store

logger = logging.getLogger(__name__)

ENGINE = "logical"
# Every persistent table of the database, in the order the manifest lists them.
TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY 1, 2
"""
SCHEMA_SQL = "SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app"
# Row count and an order-independent checksum of a table: the sum, modulo 2^64, of a 64-bit
# hash of each row. A restore that differs in any row, or has a row more or less, gives another
# sum. The hashes are those hash partitioning relies on, so they stay the same across versions:
# hash_record_extended (each column with its type's hash) when every column is of a built-in
# type known to hash, else hashtextextended of the row's text form (under the settings below).
# The first costs a third of the second, which costs a third of an md5 (bench scenario 14).
TABLE_SUMS_SQL = """SELECT count(*),
    (coalesce(sum({hash}), 0) % 18446744073709551616)::text FROM {table} t"""
RECORD_HASH = "hash_record_extended(t, 0)"
TEXT_HASH = "hashtextextended(t::text, 0)"
# Built-in types (fixed OIDs) with a hash opclass, and arrays of them.
HASHABLE_TYPES = (
    "bool", "bytea", "char", "name", "int8", "int2", "int4", "text", "oid", "float4", "float8",
    "inet", "bpchar", "varchar", "date", "time", "timestamp", "timestamptz", "interval",
    "numeric", "uuid", "jsonb",
)  # fmt: skip
COLUMN_TYPES_SQL = """
SELECT bool_and(t.typnamespace = 'pg_catalog'::regnamespace AND (t.typname = ANY(%(types)s)
    OR (t.typcategory = 'A' AND e.typnamespace = 'pg_catalog'::regnamespace
        AND e.typname = ANY(%(types)s))))
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
# The text form of a row depends on these: the same everywhere a checksum is computed.
STABLE_TEXT = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';"
    " SET extra_float_digits = 1; SET bytea_output = 'hex'"
)


# --- PostgreSQL programs and connections --------------------------------------------------------


def pg_programs_dir() -> Path:
    """Where pg_dump and pg_restore are: CUSTODIA_PG_BIN_DIR, else the embedded server's; for an
    external server the machine's own (Debian's pg_wrapper picks the server's version: a newer
    pg_restore sets parameters an older server refuses), else the embedded ones."""
    if settings.PG_BIN_DIR:
        return Path(settings.PG_BIN_DIR)
    if not settings.EMBEDDED_DATABASE:
        found = shutil.which("pg_restore")
        if found and shutil.which("pg_dump"):
            return Path(found).parent
    return postgres_bin_dir()


def database_name() -> str:
    """The database the app uses now (tests and drills point the connections elsewhere)."""
    return str(settings.DATABASES["owner"]["NAME"])


def program(name: str, database: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """A PostgreSQL program's command line and environment for `database` as the admin role;
    the password goes in the environment, never on the command line."""
    binary = pg_programs_dir() / name
    if not binary.exists():
        raise BackupError(f"{binary} does not exist: set CUSTODIA_PG_BIN_DIR to PostgreSQL's bin.")
    admin = settings.ADMIN_DATABASE
    command = [str(binary), "--no-password", "--dbname", database, *args]
    if admin.get("HOST"):
        command += ["--host", str(admin["HOST"])]
    if admin.get("PORT"):
        command += ["--port", str(admin["PORT"])]
    if admin.get("USER"):
        command += ["--username", str(admin["USER"])]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if admin.get("PASSWORD"):
        env["PGPASSWORD"] = str(admin["PASSWORD"])
    return command, env


def connect(database: str) -> psycopg.Connection:
    """An autocommit connection to `database` as the admin role."""
    try:
        return admin_connection(settings.ADMIN_DATABASE, database)
    except psycopg.OperationalError as exc:
        raise BackupError(f"Cannot connect to database {database!r}: {exc}".strip()) from None


def table_sums(conn: psycopg.Connection) -> tuple[dict[str, int], dict[str, str]]:
    """Rows and checksum of every persistent table, as seen by `conn`'s current snapshot."""
    conn.execute(STABLE_TEXT)
    counts, checksums = {}, {}
    for schema, table in conn.execute(TABLES_SQL).fetchall():
        identifier = sql.Identifier(schema, table)
        hashable = conn.execute(
            COLUMN_TYPES_SQL,
            {"types": list(HASHABLE_TYPES), "table": identifier.as_string(conn)},
        ).fetchone()
        row_hash = RECORD_HASH if hashable and hashable[0] else TEXT_HASH
        query = sql.SQL(TABLE_SUMS_SQL).format(hash=sql.SQL(row_hash), table=identifier)
        row = conn.execute(query).fetchone()
        name = f"{schema}.{table}"
        counts[name], checksums[name] = (int(row[0]), str(row[1])) if row else (0, "0")
    return counts, checksums


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows in every persistent table, as seen by `conn`'s current snapshot (no checksums)."""
    counts = {}
    for schema, table in conn.execute(TABLES_SQL).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


# --- Making a backup ----------------------------------------------------------------------------


class Digesting(io.BufferedIOBase):
    """A writer that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__()
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.sha256.update(data)
        self.size += size
        self.target.write(data)
        return size

    def flush(self) -> None:
        if not self.target.closed:
            self.target.flush()

    def digest(self) -> dict[str, Any]:
        """What a manifest records of the bytes written: their SHA-256 and size."""
        return {"sha256": self.sha256.hexdigest(), "size": self.size}


def stderr_text(stderr: IO[bytes]) -> str:
    """A program's error output for a message, without PostgreSQL's DETAIL and CONTEXT lines
    (they can quote a row's values: customer data has no place in an error or an email)."""
    stderr.seek(0)
    lines = stderr.read().decode(errors="replace").splitlines()
    kept = [line for line in lines if "DETAIL:" not in line and "CONTEXT:" not in line]
    return "\n".join(kept).strip()[-500:]


def new_backup_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def run_backup(
    store: Store,
    *,
    now: dt.datetime | None = None,
    database: str | None = None,
    keys: list[pyrage.x25519.Recipient] | None = None,
) -> Backup:
    """Back the database (default: the app's) up into `store`, encrypted to `keys` (default:
    `recipients()`), its manifest of the store's format: a new, complete, signed backup, or an
    error and none."""
    keys = keys if keys is not None else recipients()
    now = now or dt.datetime.now(dt.UTC)
    backup_id = new_backup_id(now)
    database = database or database_name()
    with store.locked(), connect(database) as conn:
        # One snapshot for the dump, the row counts, the checksums and the schema version.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot_row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot_row is not None
        command, env = program(
            "pg_dump", database, "--format=custom", "--no-unlogged-table-data",
            f"--snapshot={snapshot_row[0]}",
        )  # fmt: skip
        payload = Backup(backup_id, store).payload_name
        counted: dict[str, Any] = {}

        def count() -> None:
            try:
                counted["tables"], counted["checksums"] = table_sums(conn)
                counted["schema"] = dict(conn.execute(SCHEMA_SQL).fetchall())
            except psycopg.Error as exc:
                counted["error"] = exc

        def write_dump(handle: IO[bytes]) -> None:
            writer = Digesting(handle)
            with tempfile.TemporaryFile() as stderr:
                process = subprocess.Popen(  # noqa: S603 (fixed program, no shell)
                    command, stdout=subprocess.PIPE, stderr=stderr, env=env
                )
                assert process.stdout is not None
                # Counted beside the dump, in the same snapshot (the connection is the
                # counter's alone until it ends).
                counter = threading.Thread(target=count, name="backup-count", daemon=True)
                counter.start()
                try:
                    pyrage.encrypt_io(cast(io.BufferedIOBase, process.stdout), writer, keys)
                except pyrage.EncryptError as exc:
                    # A write of ours that failed inside pyrage (a full disk, a file-size
                    # limit) comes back as pyrage's error with the OSError's text: the store
                    # reports it as the write failure it is, like one outside pyrage.
                    if str(exc).startswith("OSError"):
                        raise OSError(str(exc).removeprefix("OSError: ")) from None
                    raise
                finally:
                    process.stdout.close()
                    code = process.wait()
                    counter.join()
                if "error" in counted:  # (then pg_dump fails too: the snapshot is gone)
                    raise BackupError(f"Counting the rows failed: {counted['error']}")
                if code != 0:
                    raise BackupError(f"pg_dump failed ({code}): {stderr_text(stderr)}")
            counted["sha256"], counted["size"] = writer.sha256.hexdigest(), writer.size

        store.write(payload, write_dump)
        version = conn.execute("SHOW server_version").fetchone()
        conn.rollback()
        manifest = {
            "format": store.manifest_format,
            "id": backup_id,
            "engine": ENGINE,
            "created_at": now.isoformat(),
            "database": database,
            "server_version": version[0] if version else "",
            "schema": counted["schema"],
            "tables": counted["tables"],
            "checksums": counted["checksums"],
            "dump": {"file": payload, "sha256": counted["sha256"], "size": counted["size"]},
            "recipients": sorted(str(key) for key in keys),
        }
        backup = publish(store, manifest, payload)
    logger.info("backup %s written (%d bytes)", backup_id, counted["size"])
    return backup


def publish(store: Store, manifest: dict[str, Any], payload: str) -> Backup:
    """Write a backup's signed manifest, last: that is what lists it. If it cannot be written,
    the payload goes too, so nothing half-made stays behind (BackupError)."""
    backup = Backup(manifest["id"], store, manifest)
    try:
        store.write(backup.manifest_name, lambda handle: handle.write(sign_manifest(manifest)))
    except BackupError:
        store.remove(payload)
        raise
    return store.get(backup.id)


# --- Checking and restoring ---------------------------------------------------------------------


def check_payload(backup: Backup) -> None:
    """The manifest's signature, then the payload's size and sha256 (BackupError)."""
    if backup.problem is not None:
        raise BackupError(f"Backup {backup.id}: {backup.problem}.")
    expected = backup.manifest["dump"]
    digest, size = hashlib.sha256(), 0
    try:
        with backup.store.reader(backup.payload_name) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BackupError(f"Backup {backup.id}: cannot read it: {exc.strerror}.") from None
    if size != expected["size"] or digest.hexdigest() != expected["sha256"]:
        raise BackupError(
            f"Backup {backup.id}: its encrypted file does not match the manifest (size {size}, "
            f"expected {expected['size']}): it was altered or truncated."
        )


def verify_backup(backup: Backup, identities: list[pyrage.x25519.Identity] | None = None) -> None:
    """The manifest's signature, then the dump's size and sha256; with identities, also that it
    decrypts into an archive pg_restore can read. BackupError naming the first problem."""
    check_payload(backup)
    if identities is not None:
        command, env = program("pg_restore", "postgres", "--list")
        decrypt_into(backup, identities, command[:1] + ["--list"], env)


def decrypt_into(
    backup: Backup, identities: list[pyrage.x25519.Identity], command: list[str], env: Any
) -> None:
    """Decrypt the payload into the standard input of `command`; BackupError if either fails."""
    with tempfile.TemporaryFile() as stderr, backup.store.reader(backup.payload_name) as source:
        process = subprocess.Popen(  # noqa: S603 (fixed program, no shell)
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        assert process.stdin is not None
        failure = None
        try:
            pyrage.decrypt_io(source, cast(io.BufferedIOBase, process.stdin), identities)
        except pyrage.DecryptError as exc:
            failure = f"Backup {backup.id} does not decrypt with this identity ({exc})."
        except BrokenPipeError:
            pass  # the program stopped reading: its exit code says why
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            code = process.wait()
        if failure is not None:
            raise BackupError(failure)
        if code != 0:
            raise BackupError(f"{Path(command[0]).name} failed ({code}): {stderr_text(stderr)}")


def database_exists(name: str) -> bool:
    with connect("postgres") as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def drop_database(name: str) -> None:
    with connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _differ(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return sorted(
        name for name in set(found) | set(expected) if found.get(name) != expected.get(name)
    )


def restore_backup(
    backup: Backup, identities: list[pyrage.x25519.Identity], into: str, *, owner: str = ""
) -> dict[str, int]:
    """Restore `backup` into the new database `into`, in one transaction, and check its row
    counts and checksums against the manifest. On any failure `into` is dropped again. Returns
    the counts. With `owner` (the card vault's role), the new database is that role's and no
    other role may connect to it, from before the first row is in it."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", into):
        raise BackupError(f"{into!r} is not a database name (lower-case letters, digits, _).")
    check_payload(backup)
    if database_exists(into):
        raise BackupError(f"Database {into} exists: restore into a new one.")
    with connect("postgres") as conn:
        if owner:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner]).fetchone():
                raise BackupError(f"The role {owner} does not exist: run `custodia setup` first.")
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(into), sql.Identifier(owner)
                )
            )
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(into))
            )
    try:
        if owner:
            with connect(into) as conn:
                for statement in (
                    "REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC",
                    "GRANT CONNECT ON DATABASE {db} TO {owner}",
                ):
                    conn.execute(
                        sql.SQL(statement).format(
                            db=sql.Identifier(into), owner=sql.Identifier(owner)
                        )
                    )
        command, env = program("pg_restore", into, "--single-transaction", "--exit-on-error")
        decrypt_into(backup, identities, command, env)
        with connect(into) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            counts, checksums = table_sums(conn)
        differ = _differ(counts, backup.manifest["tables"])
        if differ:
            raise BackupError(
                f"Backup {backup.id} restored with other row counts than its manifest in "
                f"{', '.join(differ[:5])}."
            )
        differ = _differ(checksums, backup.manifest.get("checksums", checksums))
        if differ:
            raise BackupError(
                f"Backup {backup.id} restored with other checksums than its manifest in "
                f"{', '.join(differ[:5])}."
            )
    except BaseException:
        drop_database(into)
        raise
    return counts
