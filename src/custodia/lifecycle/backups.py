"""Logical backups (docs/backups.md): `pg_dump` streamed through age encryption, a signed manifest.

A backup is two files in the backup directory, named by its id (`20261204T031500Z-1a2b3c4d`):
`<id>.dump.age`, the database in `pg_dump`'s custom format encrypted to the recipients' age public
keys (so the host that writes backups cannot read them), and `<id>.manifest.json`, what the backup
holds (sha256 and size of the encrypted file, per-table row counts and the applied migrations,
all read in the dump's own snapshot) signed with Ed25519 by the audit signing key.

Each file is written under a `.partial` name, flushed to disk and renamed; the manifest comes
last, and a backup without one is not a backup: it is never listed, and the next run or prune
deletes it. So a run killed at any point leaves nothing that could be mistaken for a backup.
A restore goes into a new database in one transaction and is checked against the manifest's row
counts; if anything fails, the new database is dropped.

The dump connects as the admin role (ADMIN_DATABASE, a superuser): row-level security is forced
on the owner role, and a backup must hold every business.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import psycopg
import pyrage
from cryptography.exceptions import InvalidSignature
from django.conf import settings
from psycopg import sql

from custodia.audit.chain import ChainBroken, key_id, signing_key
from custodia.core.config import create_private_file
from custodia.embedded import admin_connection, postgres_bin_dir

logger = logging.getLogger(__name__)

FORMAT = "custodia-backup/1"
ENGINE = "logical"
DUMP_SUFFIX = ".dump.age"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
LOCK_NAME = ".lock"
DRILL_LOG = "drills.jsonl"
# Every persistent table of the database, in the order the manifest lists them.
TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY 1, 2
"""
SCHEMA_SQL = "SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app"


class BackupError(Exception):
    """A backup could not be made, checked or restored; the message says what and where."""


# --- Keys ---------------------------------------------------------------------------------------


def recipients() -> list[pyrage.x25519.Recipient]:
    """The age public keys backups are encrypted to (CUSTODIA_BACKUP_RECIPIENTS).

    Development without any: a key pair made under var/secrets/ (the caller warns that the
    identity is then on this host). Production without any: an error, never a fallback.
    """
    configured = settings.BACKUP_RECIPIENTS
    if not configured:
        if settings.PRODUCTION:
            raise BackupError(
                "Set CUSTODIA_BACKUP_RECIPIENTS to the age public keys (age1...) to encrypt "
                "backups to; keep their identities off this host."
            )
        return [development_identity().to_public()]
    parsed = []
    for text in configured:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(text))
        except pyrage.RecipientError:
            raise BackupError(
                f"CUSTODIA_BACKUP_RECIPIENTS: {text[:12]!r}... is not an age public key (age1...)."
            ) from None
    return parsed


def development_identity() -> pyrage.x25519.Identity:
    """The development key pair's identity, made (0600) on first use."""
    path = settings.BACKUP_DEV_IDENTITY_FILE
    if not path.exists():
        identity = pyrage.x25519.Identity.generate()
        text = (
            "# Custodia development backup identity: it decrypts every backup of this install.\n"
            f"# public key: {identity.to_public()}\n{identity}\n"
        )
        create_private_file(path, text.encode())
    return load_identity(path)[0]


def uses_development_key() -> bool:
    return not settings.BACKUP_RECIPIENTS and not settings.PRODUCTION


def load_identity(path: Path) -> list[pyrage.x25519.Identity]:
    """The age identities (AGE-SECRET-KEY-1...) in an identity file; errors never quote it."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.__class__.__name__
        raise BackupError(f"Cannot read the identity file {path}: {problem}.") from None
    identities = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise BackupError(f"{path} holds a line that is not an age identity.") from None
    if not identities:
        raise BackupError(f"{path} holds no age identity (AGE-SECRET-KEY-1...).")
    return identities


def default_identity(path: Path | None) -> list[pyrage.x25519.Identity]:
    """The identity given, else in development the development one; production must give one."""
    if path is not None:
        return load_identity(path)
    if uses_development_key() and settings.BACKUP_DEV_IDENTITY_FILE.exists():
        return load_identity(settings.BACKUP_DEV_IDENTITY_FILE)
    raise BackupError("Give --identity FILE: the age identity that decrypts the backups.")


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


def _program(name: str, database: str, *args: str) -> tuple[list[str], dict[str, str]]:
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


def _connect(database: str) -> psycopg.Connection:
    try:
        return admin_connection(settings.ADMIN_DATABASE, database)
    except psycopg.OperationalError as exc:
        raise BackupError(f"Cannot connect to database {database!r}: {exc}".strip()) from None


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows in every persistent table, as seen by `conn`'s current snapshot."""
    counts = {}
    for schema, table in conn.execute(TABLES_SQL).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


# --- The backup directory -----------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """A backup in the directory: its manifest, and what is wrong with it (None: nothing seen
    without reading the dump; `verify` reads it)."""

    id: str
    directory: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def dump_path(self) -> Path:
        return self.directory / f"{self.id}{DUMP_SUFFIX}"

    @property
    def manifest_path(self) -> Path:
        return self.directory / f"{self.id}{MANIFEST_SUFFIX}"

    @property
    def created_at(self) -> dt.datetime | None:
        try:
            return dt.datetime.fromisoformat(self.manifest["created_at"])
        except (KeyError, TypeError, ValueError):
            return None


def _canonical(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _signed(manifest: dict[str, Any]) -> bytes:
    key = signing_key()
    manifest = {**manifest, "signing_key_id": key_id(key.public_key())}
    signature = base64.b64encode(key.sign(_canonical(manifest))).decode()
    return json.dumps({"manifest": manifest, "signature": signature}, indent=2).encode() + b"\n"


def _read_manifest(path: Path) -> tuple[dict[str, Any], str | None]:
    """A manifest file's content and the problem with it, if any (checked against the key)."""
    try:
        document = json.loads(path.read_bytes())
        manifest = document["manifest"]
        signature = base64.b64decode(document["signature"], validate=True)
        if not isinstance(manifest, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return {}, "the manifest is unreadable"
    try:
        public = signing_key(create=False).public_key()
    except ChainBroken as exc:
        return manifest, str(exc)
    if manifest.get("signing_key_id") != key_id(public):
        return manifest, "the manifest is signed by another key"
    try:
        public.verify(signature, _canonical(manifest))
    except InvalidSignature:
        return manifest, "the manifest's signature does not match: it was altered"
    if manifest.get("format") != FORMAT:
        return manifest, f"unknown backup format {manifest.get('format')!r}"
    return manifest, None


def _write_atomically(path: Path, write: Any) -> None:
    """`write(handle)` into `path`.partial, flushed to disk, then renamed to `path`."""
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class BackupStore:
    """A local directory of backups (CUSTODIA_BACKUP_DIR)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or settings.BACKUP_DIR)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (run, prune, drill); what a killed writer left is removed."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = open(self.directory / LOCK_NAME, "a")  # noqa: SIM115 (held to the end)
        except OSError as exc:
            raise BackupError(
                f"Cannot use the backup directory {self.directory}: {exc.strerror}."
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._remove_leftovers()
            yield

    def _remove_leftovers(self) -> None:
        """Partial files and dumps without a manifest: left by a writer that was killed."""
        for path in self.directory.iterdir():
            orphan = (
                path.name.endswith(DUMP_SUFFIX)
                and not (self.directory / path.name.replace(DUMP_SUFFIX, MANIFEST_SUFFIX)).exists()
            )
            if path.name.endswith(PARTIAL_SUFFIX) or orphan:
                logger.warning("removing %s, left by an interrupted backup", path.name)
                path.unlink(missing_ok=True)

    def backups(self) -> list[Backup]:
        """Every backup with a manifest, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob(f"*{MANIFEST_SUFFIX}")):
            backup_id = path.name[: -len(MANIFEST_SUFFIX)]
            if not ID_PATTERN.match(backup_id):
                continue
            manifest, problem = _read_manifest(path)
            if problem is None and manifest.get("id") != backup_id:
                problem = "the manifest names another backup"
            backup = Backup(backup_id, self.directory, manifest, problem)
            if problem is None and not backup.dump_path.exists():
                backup = Backup(backup_id, self.directory, manifest, "its dump file is missing")
            found.append(backup)
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda backup: (backup.created_at or oldest, backup.id))

    def get(self, backup_id: str) -> Backup:
        if not ID_PATTERN.match(backup_id):
            raise BackupError(f"{backup_id!r} is not a backup id (like 20261204T031500Z-1a2b3c4d).")
        for backup in self.backups():
            if backup.id == backup_id:
                return backup
        raise BackupError(f"No backup {backup_id} in {self.directory}.")

    def newest(self) -> Backup:
        sound = [backup for backup in self.backups() if backup.problem is None]
        if not sound:
            raise BackupError(f"No backup in {self.directory} to use.")
        return sound[-1]

    def delete(self, backup: Backup) -> None:
        """The manifest first: a backup half deleted is no longer listed, and its dump is a
        leftover that the next writer removes."""
        backup.manifest_path.unlink(missing_ok=True)
        backup.dump_path.unlink(missing_ok=True)


# --- Making a backup ----------------------------------------------------------------------------


class _Digesting(io.BufferedIOBase):
    """A writer that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__()
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        if not self.target.closed:
            self.target.flush()


def _stderr_text(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode(errors="replace").strip()[-500:]


def run_backup(store: BackupStore, *, now: dt.datetime | None = None) -> Backup:
    """Back the database up into `store`: a new, complete, signed backup, or an error and none."""
    keys = recipients()
    now = now or dt.datetime.now(dt.UTC)
    backup_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    database = database_name()
    with store.locked(), _connect(database) as conn:
        # One snapshot for the dump, the row counts and the schema version.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot_row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot_row is not None
        command, env = _program(
            "pg_dump", database, "--format=custom", "--no-unlogged-table-data",
            f"--snapshot={snapshot_row[0]}",
        )  # fmt: skip
        dump = Backup(backup_id, store.directory).dump_path
        counted: dict[str, Any] = {}

        def write_dump(handle: IO[bytes]) -> None:
            writer = _Digesting(handle)
            with tempfile.TemporaryFile() as stderr:
                process = subprocess.Popen(  # noqa: S603 (fixed program, no shell)
                    command, stdout=subprocess.PIPE, stderr=stderr, env=env
                )
                assert process.stdout is not None
                try:
                    # Counted while pg_dump starts; it waits on the pipe until read.
                    counted["tables"] = row_counts(conn)
                    counted["schema"] = dict(conn.execute(SCHEMA_SQL).fetchall())
                    pyrage.encrypt_io(cast(io.BufferedIOBase, process.stdout), writer, keys)
                finally:
                    process.stdout.close()
                    code = process.wait()
                if code != 0:
                    raise BackupError(f"pg_dump failed ({code}): {_stderr_text(stderr)}")
            counted["sha256"], counted["size"] = writer.sha256.hexdigest(), writer.size

        try:
            _write_atomically(dump, write_dump)
            version = conn.execute("SHOW server_version").fetchone()
        except OSError as exc:
            raise BackupError(f"Cannot write the backup to {store.directory}: {exc}.") from None
        conn.rollback()
        manifest = {
            "format": FORMAT,
            "id": backup_id,
            "engine": ENGINE,
            "created_at": now.isoformat(),
            "database": database,
            "server_version": version[0] if version else "",
            "schema": counted["schema"],
            "tables": counted["tables"],
            "dump": {"file": dump.name, "sha256": counted["sha256"], "size": counted["size"]},
            "recipients": sorted(str(key) for key in keys),
        }
        backup = Backup(backup_id, store.directory, manifest)
        try:
            _write_atomically(backup.manifest_path, lambda handle: handle.write(_signed(manifest)))
        except OSError as exc:
            dump.unlink(missing_ok=True)
            raise BackupError(f"Cannot write the manifest to {store.directory}: {exc}.") from None
    logger.info("backup %s written (%d bytes)", backup_id, counted["size"])
    return store.get(backup_id)


# --- Checking and restoring ---------------------------------------------------------------------


def verify_backup(backup: Backup, identities: list[pyrage.x25519.Identity] | None = None) -> None:
    """The manifest's signature, then the dump's size and sha256; with identities, also that it
    decrypts into an archive pg_restore can read. BackupError naming the first problem."""
    if backup.problem is not None:
        raise BackupError(f"Backup {backup.id}: {backup.problem}.")
    expected = backup.manifest["dump"]
    digest, size = hashlib.sha256(), 0
    try:
        with open(backup.dump_path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BackupError(f"Backup {backup.id}: cannot read its dump: {exc.strerror}.") from None
    if size != expected["size"] or digest.hexdigest() != expected["sha256"]:
        raise BackupError(
            f"Backup {backup.id}: its dump does not match the manifest (size {size}, expected "
            f"{expected['size']}): it was altered or truncated."
        )
    if identities is not None:
        command, env = _program("pg_restore", "postgres", "--list")
        _decrypt_into(backup, identities, command[:1] + ["--list"], env)


def _decrypt_into(
    backup: Backup, identities: list[pyrage.x25519.Identity], command: list[str], env: Any
) -> None:
    """Decrypt the dump into the standard input of `command`; BackupError if either fails."""
    with tempfile.TemporaryFile() as stderr, open(backup.dump_path, "rb") as source:
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
            raise BackupError(f"{Path(command[0]).name} failed ({code}): {_stderr_text(stderr)}")


def _database_exists(name: str) -> bool:
    with _connect("postgres") as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def drop_database(name: str) -> None:
    with _connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def restore_backup(
    backup: Backup, identities: list[pyrage.x25519.Identity], into: str
) -> dict[str, int]:
    """Restore `backup` into the new database `into`, in one transaction, and check its row
    counts against the manifest. On any failure `into` is dropped again. Returns the counts."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", into):
        raise BackupError(f"{into!r} is not a database name (lower-case letters, digits, _).")
    verify_backup(backup)
    if _database_exists(into):
        raise BackupError(f"Database {into} exists: restore into a new one.")
    with _connect("postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(into)))
    try:
        command, env = _program("pg_restore", into, "--single-transaction", "--exit-on-error")
        _decrypt_into(backup, identities, command, env)
        with _connect(into) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            counts = row_counts(conn)
        if counts != backup.manifest["tables"]:
            differ = sorted(
                name
                for name in set(counts) | set(backup.manifest["tables"])
                if counts.get(name) != backup.manifest["tables"].get(name)
            )
            raise BackupError(
                f"Backup {backup.id} restored with other row counts than its manifest in "
                f"{', '.join(differ[:5])}."
            )
    except BaseException:
        drop_database(into)
        raise
    return counts


# --- Retention and drills -----------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    deleted: list[Backup]
    kept: list[Backup]
    unsure: list[Backup]  # manifests that cannot be trusted: their date is unknown


def prune(
    store: BackupStore, *, now: dt.datetime | None = None, dry_run: bool = False
) -> PruneResult:
    """Delete every backup older than CUSTODIA_BACKUP_RETENTION_DAYS, and nothing newer. A
    backup whose manifest does not verify is kept and reported: its date cannot be trusted."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=settings.BACKUP_RETENTION_DAYS)
    deleted, kept, unsure = [], [], []
    with store.locked():
        for backup in store.backups():
            created = backup.created_at
            if backup.problem is not None or created is None:
                unsure.append(backup)
            elif created < cutoff:
                if not dry_run:
                    store.delete(backup)
                deleted.append(backup)
            else:
                kept.append(backup)
    return PruneResult(deleted, kept, unsure)


@dataclass(frozen=True)
class DrillResult:
    backup_id: str
    ok: bool
    detail: str
    tables: int = 0
    rows: int = 0


def drill(store: BackupStore, identities: list[pyrage.x25519.Identity]) -> DrillResult:
    """Restore the newest backup into a scratch database, check it against its manifest, drop
    it; the result is appended to the directory's drill log (drills.jsonl)."""
    backup = store.newest()
    scratch = f"{database_name()}_drill"[:63]
    drop_database(scratch)  # a drill killed before its cleanup
    try:
        counts = restore_backup(backup, identities, scratch)
    except BackupError as exc:
        result = DrillResult(backup.id, False, str(exc))
    else:
        drop_database(scratch)
        detail = f"restored {len(counts)} tables, {sum(counts.values())} rows, as the manifest says"
        result = DrillResult(backup.id, True, detail, len(counts), sum(counts.values()))
    line = {"at": dt.datetime.now(dt.UTC).isoformat(), **result.__dict__}
    with store.locked(), open(store.directory / DRILL_LOG, "a") as log:
        log.write(json.dumps(line) + "\n")
    return result
