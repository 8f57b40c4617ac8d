"""Production backups with pgbackrest (docs/backups.md, "Production: pgbackrest").

Physical full, differential and incremental backups of the whole PostgreSQL cluster plus its
archived WAL, in a repository encrypted with aes-256-cbc, restorable to any moment since the
oldest kept full backup. Custodia generates pgbackrest's configuration from its settings, runs
pgbackrest as PostgreSQL's OS user (never as root: it reads the data directory, and the
`archive_command` that PostgreSQL runs as that user writes the same repository), and writes a
manifest per backup signed like the logical engine's (pgbackrest_manifest.py).

The repository's passphrase is read from its own 0600 file and handed to pgbackrest in the
environment (PGBACKREST_REPO1_CIPHER_PASS), so it is in no configuration file, command line,
log line or error message; the `archive_command` reads the same file.

A restore goes into a new, empty directory of its own, with archiving off in the restored
cluster: the live cluster, its data directory and its WAL archive are never touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from custodia.core.config import create_private_file
from custodia.lifecycle import pgbackrest_manifest as manifests
from custodia.lifecycle.backups import BackupError

logger = logging.getLogger(__name__)

ENGINE = "pgbackrest"
PROGRAM = "pgbackrest"
INSTALL = "apt-get install -y pgbackrest"
CIPHER = "aes-256-cbc"
TYPES = ("full", "diff", "incr")
PASSPHRASE_ENV = "PGBACKREST_REPO1_CIPHER_PASS"  # noqa: S105 (a variable name)
MIN_PASSPHRASE = 32
STANZA_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
LABEL_PATTERN = re.compile(r"^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$")
# pgbackrest's words when an info file or a WAL segment does not decrypt with the passphrase.
WRONG_KEY_SIGNS = ("CryptoError", "is or was the repo encrypted", "FormatError")
# `pgbackrest info` status codes: missing stanza path, missing stanza data.
STANZA_MISSING = (1, 3)


# --- The setup: where everything is -------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Everything pgbackrest needs to know, from Custodia's settings (`from_settings`)."""

    stanza: str
    base_dir: Path  # pgbackrest.conf, lock/, spool/, log/
    repo_path: Path
    passphrase_file: Path
    pg_data: Path
    pg_socket_dir: str
    pg_port: int
    pg_user: str
    database: str  # Custodia's database: the manifest's row counts and schema come from it
    manifest_dir: Path
    retention_days: int
    admin: dict[str, str] = field(default_factory=dict)  # how Custodia connects to count rows
    os_user: str | None = None  # who runs pgbackrest (None: this process's user)
    compress_type: str = "gz"

    @classmethod
    def from_settings(cls) -> Setup:
        admin = {key: str(value or "") for key, value in settings.ADMIN_DATABASE.items()}
        pg_data = settings.PGBACKREST_PG_DATA
        if not pg_data:
            if not settings.EMBEDDED_DATABASE:
                raise BackupError(
                    "Set CUSTODIA_PGBACKREST_PG_DATA to the PostgreSQL data directory "
                    "(pgbackrest runs on the database host and reads it)."
                )
            pg_data = str(settings.EMBEDDED_PGDATA)
        socket_dir = settings.PGBACKREST_PG_SOCKET_DIR
        if not socket_dir:
            host = admin.get("HOST", "")
            socket_dir = host if host.startswith("/") else "/var/run/postgresql"
        data = Path(pg_data).resolve()
        return cls(
            stanza=settings.PGBACKREST_STANZA,
            base_dir=Path(settings.PGBACKREST_DIR),
            repo_path=Path(settings.PGBACKREST_REPO_PATH),
            passphrase_file=Path(settings.PGBACKREST_PASSPHRASE_FILE),
            pg_data=data,
            pg_socket_dir=socket_dir,
            pg_port=int(admin.get("PORT") or 5432),
            pg_user=admin.get("USER") or "postgres",
            database=manifests.database_name(),
            manifest_dir=Path(settings.BACKUP_DIR) / ENGINE,
            retention_days=settings.BACKUP_RETENTION_DAYS,
            admin=admin,
            os_user=_default_os_user(data),
        )

    @property
    def config_file(self) -> Path:
        return self.base_dir / "pgbackrest.conf"


def _default_os_user(pg_data: Path) -> str | None:
    """As root: CUSTODIA_PGBACKREST_OS_USER, else the data directory's owner. Otherwise None."""
    if os.geteuid() != 0:
        return None
    user = str(settings.PGBACKREST_OS_USER)
    if not user:
        try:
            user = pwd.getpwuid(pg_data.stat().st_uid).pw_name
        except (OSError, KeyError):
            raise BackupError(
                f"Cannot find the owner of {pg_data}: set CUSTODIA_PGBACKREST_PG_DATA to the live "
                "cluster's data directory, or CUSTODIA_PGBACKREST_OS_USER."
            ) from None
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise BackupError(f"There is no OS user {user!r} to run pgbackrest as.") from None
    if user == "root":
        raise BackupError(
            "pgbackrest must run as PostgreSQL's OS user, not root: set "
            "CUSTODIA_PGBACKREST_OS_USER "
            "(or CUSTODIA_PGBACKREST_PG_DATA to the live data directory)."
        )
    return user


def program() -> str:
    """The pgbackrest program, or an error saying how to install it."""
    found = shutil.which(PROGRAM)
    if found is None:
        raise BackupError(f"pgbackrest is not installed: {INSTALL} (as root).")
    return found


# --- The passphrase -----------------------------------------------------------------------------


def passphrase(setup: Setup) -> str:
    """The repository passphrase from its file (made in development, required in production)."""
    path = setup.passphrase_file
    for forbidden in (setup.pg_data, setup.repo_path.resolve(), setup.base_dir.resolve()):
        if path.resolve().is_relative_to(forbidden):
            raise BackupError(
                f"The pgbackrest passphrase file {path} is inside {forbidden}: it would be "
                "copied along with what it protects. Keep it elsewhere (docs/backups.md)."
            )
    if not path.exists():
        if settings.PRODUCTION:
            raise BackupError(
                f"No pgbackrest passphrase at {path}: make one with `openssl rand -base64 48 > "
                f"{path}`, chmod 600 it, give it to PostgreSQL's OS user and keep a copy "
                "off this host (CUSTODIA_PGBACKREST_PASSPHRASE_FILE)."
            )
        create_private_file(path, (os.urandom(48).hex() + "\n").encode())
        logger.warning("made a development pgbackrest passphrase in %s", path)
    _give(path, setup.os_user)
    if path.stat().st_mode & 0o077:
        raise BackupError(f"{path} is readable by others: chmod 600 {path}.")
    try:
        # As the archive_command's `$(cat FILE)` reads it: without the final newlines.
        text = path.read_text().rstrip("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"Cannot read {path}: {exc.__class__.__name__}.") from None
    if len(text) < MIN_PASSPHRASE or "\n" in text or text != text.strip():
        raise BackupError(
            f"{path} must hold one line of at least {MIN_PASSPHRASE} random characters, "
            "without spaces around them (openssl rand -base64 48)."
        )
    return text


def passphrase_id(text: str) -> str:
    """Names the passphrase in manifests without revealing it (the encrypted repository itself
    already allows guessing; a passphrase of 48 random bytes makes that hopeless)."""
    return hashlib.sha256(b"custodia-pgbackrest-passphrase\0" + text.encode()).hexdigest()[:16]


# --- Configuration ------------------------------------------------------------------------------


def _give(path: Path, user: str | None) -> None:
    """As root, hand `path` to `user` (pgbackrest and PostgreSQL run as it)."""
    if user is None or os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def config_text(setup: Setup) -> str:
    """pgbackrest.conf for `setup`: no secret in it."""
    base = setup.base_dir.resolve()
    lines = [
        "# Written by Custodia (custodia backup pgbackrest); edits are overwritten.",
        "# The repository passphrase is not here: see CUSTODIA_PGBACKREST_PASSPHRASE_FILE.",
        "[global]",
        f"repo1-path={setup.repo_path.resolve()}",
        f"repo1-cipher-type={CIPHER}",
        # Full backups (and the differential, incremental backups and WAL that depend on them)
        # are kept for the retention days; the newest full backup older than that stays until a
        # newer one covers the whole window (docs/backups.md).
        "repo1-retention-full-type=time",
        f"repo1-retention-full={setup.retention_days}",
        f"compress-type={setup.compress_type}",
        f"lock-path={base / 'lock'}",
        f"spool-path={base / 'spool'}",
        f"log-path={base / 'log'}",
        "log-level-file=off",
        "log-level-console=warn",
        "log-level-stderr=off",
        "start-fast=y",
        "archive-timeout=120",
        "",
        f"[{setup.stanza}]",
        f"pg1-path={setup.pg_data}",
        f"pg1-socket-path={setup.pg_socket_dir}",
        f"pg1-port={setup.pg_port}",
        f"pg1-user={setup.pg_user}",
    ]
    return "\n".join(lines) + "\n"


def write_config(setup: Setup) -> Path:
    """Write pgbackrest.conf and make its directories, owned by pgbackrest's OS user."""
    if not STANZA_PATTERN.match(setup.stanza):
        raise BackupError(f"{setup.stanza!r} is not a stanza name (letters, digits, - and _).")
    try:
        for directory in (
            setup.base_dir,
            setup.base_dir / "lock",
            setup.base_dir / "spool",
            setup.base_dir / "log",
            setup.repo_path,
        ):
            directory.mkdir(parents=True, exist_ok=True, mode=0o750)
            _give(directory, setup.os_user)
        path = setup.config_file
        if not path.exists() or path.read_text() != config_text(setup):
            partial = path.with_name(path.name + ".partial")
            partial.write_text(config_text(setup))
            partial.chmod(0o640)
            _give(partial, setup.os_user)
            os.replace(partial, path)
    except OSError as exc:
        raise BackupError(f"Cannot write pgbackrest's configuration: {exc}.") from None
    return path


def _pgbackrest_command(setup: Setup, action: str) -> str:
    """The shell command PostgreSQL runs for `action` (archive-push/archive-get): the passphrase
    comes from its file at that moment, never from the configuration."""
    return (
        f'{PASSPHRASE_ENV}="$(cat {shlex.quote(str(setup.passphrase_file.resolve()))})" '
        f"{shlex.quote(program())} --config={shlex.quote(str(setup.config_file.resolve()))} "
        f"--stanza={setup.stanza} {action}"
    )


def archive_command(setup: Setup) -> str:
    """The live cluster's archive_command."""
    return _pgbackrest_command(setup, "archive-push %p")


def postgresql_conf(setup: Setup) -> str:
    """The lines the live cluster's postgresql.conf needs (then restart PostgreSQL)."""
    quoted = archive_command(setup).replace("'", "''")
    return (
        "wal_level = replica\n"
        "archive_mode = on\n"
        f"archive_command = '{quoted}'\n"
        # A partly filled WAL segment is archived after a minute: at most a minute of writes
        # is not yet in the repository.
        "archive_timeout = 60\n"
    )


# --- Running pgbackrest -------------------------------------------------------------------------


def _as_user(user: str | None) -> dict[str, Any]:
    if user is None or os.geteuid() != 0:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _readable(output: str) -> str:
    """pgbackrest's ERROR and HINT lines, printable characters only (a wrong key makes it quote
    undecryptable bytes)."""
    lines = [line.strip() for line in output.splitlines()]
    # "2026-12-04 15:09:56.478 P00  ERROR: [056]: ..." or "ERROR: [056]: ...": without the time.
    found = [re.search(r"\b(?:ERROR|WARN|HINT):.*", line) for line in lines]
    kept = [match.group(0) for match in found if match] or lines
    text = " ".join(line for line in kept if line)
    return re.sub(r"[^\x20-\x7e]+", "?", text)[:800]


def _wrong_key(setup: Setup) -> BackupError:
    return BackupError(
        f"pgbackrest cannot decrypt the repository {setup.repo_path} with the passphrase in "
        f"{setup.passphrase_file}: it is not the passphrase the repository was made with (or "
        "the repository is damaged). Only that passphrase opens it."
    )


def run(
    setup: Setup, action: str, *args: str, passphrase_text: str | None = None,
    timeout: float | None = 600,
) -> str:  # fmt: skip
    """Run `pgbackrest ACTION ARGS` for the stanza as pgbackrest's OS user; its standard output,
    or BackupError with pgbackrest's own message."""
    executable = program()
    key = passphrase_text if passphrase_text is not None else passphrase(setup)
    write_config(setup)
    command = [executable, f"--config={setup.config_file.resolve()}", f"--stanza={setup.stanza}"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", PASSPHRASE_ENV: key}
    try:
        result = subprocess.run(  # noqa: S603 (fixed program, no shell)
            [*command, action, *args],
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            cwd="/",
            timeout=timeout,
            check=False,
            **_as_user(setup.os_user),
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"pgbackrest {action} did not finish in {timeout:.0f} s.") from None
    if result.returncode != 0:
        output = result.stderr + "\n" + result.stdout
        if "unable to load info file" in output and any(s in output for s in WRONG_KEY_SIGNS):
            raise _wrong_key(setup)
        if "VersionNotSupportedError" in output:
            raise BackupError(
                f"This pgbackrest does not support the cluster's PostgreSQL version (Debian 12's "
                "2.45 supports up to 15, so not the embedded server; docs/backups.md, "
                f"Requirements): {_readable(output)}"
            )
        raise BackupError(f"pgbackrest {action} failed ({result.returncode}): {_readable(output)}")
    return result.stdout


def stanza_create(setup: Setup) -> None:
    """Create the stanza in the repository (idempotent); the cluster must archive already."""
    run(setup, "stanza-create")


def check(setup: Setup) -> None:
    """pgbackrest check: the configuration, the connection, and that a WAL segment archives."""
    run(setup, "check")


def info(setup: Setup) -> dict[str, Any]:
    """The stanza's part of `pgbackrest info`: its backups (oldest first), archive and status."""
    text = run(setup, "info", "--output=json")
    try:
        # strict=False: with a wrong passphrase pgbackrest quotes undecryptable bytes.
        stanzas = json.loads(text, strict=False)
        found = next(item for item in stanzas if item.get("name") == setup.stanza)
    except (ValueError, StopIteration, AttributeError, TypeError):
        raise BackupError(f"pgbackrest info said nothing about stanza {setup.stanza}.") from None
    for repo in found.get("repo", []):
        message = str(repo.get("status", {}).get("message", ""))
        if "unable to load info file" in message and any(s in message for s in WRONG_KEY_SIGNS):
            raise _wrong_key(setup)
    status = found.get("status", {})
    if status.get("code") in STANZA_MISSING:
        raise BackupError(
            f"The repository {setup.repo_path} has no stanza {setup.stanza}: run "
            "`custodia backup pgbackrest stanza-create` (docs/backups.md)."
        )
    if status.get("code") == 99:  # "other": pgbackrest's message says what
        details = " ".join(str(repo.get("status", {}).get("message", "")) for repo in found["repo"])
        raise BackupError(f"pgbackrest info: {_readable(details) or status.get('message')}")
    return dict(found)


# --- Backups and their signed manifests ---------------------------------------------------------


@dataclass(frozen=True)
class PgbackrestBackup:
    """A backup in the repository and its signed manifest (problem: what is wrong with it)."""

    label: str
    type: str
    info: dict[str, Any]
    manifest: dict[str, Any]
    problem: str | None


def _manifest_path(setup: Setup, label: str) -> Path:
    return setup.manifest_dir / f"{label}{manifests.SUFFIX}"


def timestamp(seconds: Any) -> str:
    """pgbackrest's epoch seconds as an ISO 8601 UTC time."""
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).isoformat()


def run_backup(setup: Setup, kind: str) -> PgbackrestBackup:
    """A full, diff or incr backup, then its signed manifest; pgbackrest then expires what the
    retention lets go, and the manifests of expired backups go with them."""
    if kind not in TYPES:
        raise BackupError(f"{kind!r} is not a backup type: full, diff or incr.")
    key = passphrase(setup)
    before = {item["label"] for item in info(setup).get("backup", [])}
    counted_at = dt.datetime.now(dt.UTC)
    tables, schema, version = manifests.count(setup.admin, setup.database)
    run(setup, "backup", f"--type={kind}", passphrase_text=key, timeout=None)
    state = info(setup)
    made = [item for item in state.get("backup", []) if item["label"] not in before]
    if not made:
        raise BackupError("pgbackrest backup succeeded but no new backup is listed.")
    item = made[-1]
    manifest = {
        "format": manifests.FORMAT,
        "id": item["label"],
        "engine": ENGINE,
        "created_at": timestamp(item["timestamp"]["stop"]),
        "started_at": timestamp(item["timestamp"]["start"]),
        "stanza": setup.stanza,
        "type": item["type"],
        "prior": item.get("prior"),
        "database": setup.database,
        "server_version": version,
        "system_id": next(
            (db.get("system-id") for db in state.get("db", []) if db.get("id") == 1), None
        ),
        "schema": schema,
        # Counted in one snapshot just before the backup started: equal to the backup's own
        # content when nothing was written during the backup.
        "tables": tables,
        "tables_counted_at": counted_at.isoformat(),
        "sizes": {
            "database": item["info"]["size"],
            "backed_up": item["info"]["delta"],
            "repository": item["info"]["repository"]["size"],
            "repository_added": item["info"]["repository"]["delta"],
        },
        "wal": {**item.get("archive", {}), **{f"lsn_{k}": v for k, v in item["lsn"].items()}},
        "pgbackrest_version": item.get("backrest", {}).get("version", ""),
        "cipher": state.get("cipher", ""),
        "passphrase_id": passphrase_id(key),
    }
    path = _manifest_path(setup, item["label"])
    try:
        setup.manifest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        manifests.write(path, manifest)
    except OSError as exc:
        raise BackupError(f"Cannot write the manifest to {setup.manifest_dir}: {exc}.") from None
    kept = {entry["label"] for entry in state.get("backup", [])}
    for old in setup.manifest_dir.glob(f"*{manifests.SUFFIX}"):
        if old.name[: -len(manifests.SUFFIX)] not in kept:
            old.unlink(missing_ok=True)  # its backup was expired by the retention
    logger.info("pgbackrest %s backup %s written", item["type"], item["label"])
    return _with_manifest(setup, item)


def _with_manifest(setup: Setup, item: dict[str, Any]) -> PgbackrestBackup:
    label = item["label"]
    path = _manifest_path(setup, label)
    if not path.exists():
        return PgbackrestBackup(label, item["type"], item, {}, "no manifest")
    manifest, problem = manifests.read(path)
    if problem is None and (manifest.get("id") != label or manifest.get("engine") != ENGINE):
        problem = "the manifest names another backup"
    return PgbackrestBackup(label, item["type"], item, manifest, problem)


def list_backups(setup: Setup) -> list[PgbackrestBackup]:
    """The repository's backups, oldest first, each with its manifest checked."""
    return [_with_manifest(setup, item) for item in info(setup).get("backup", [])]


def scheduled_type(setup: Setup, *, now: dt.datetime | None = None) -> str:
    """What the daily round makes: a full backup when the newest is older than
    CUSTODIA_PGBACKREST_FULL_EVERY_DAYS (or there is none), else a differential one."""
    now = now or dt.datetime.now(dt.UTC)
    fulls = [item for item in info(setup).get("backup", []) if item["type"] == "full"]
    if not fulls:
        return "full"
    newest = dt.datetime.fromtimestamp(int(fulls[-1]["timestamp"]["stop"]), dt.UTC)
    age = now - newest
    return "full" if age >= dt.timedelta(days=settings.PGBACKREST_FULL_EVERY_DAYS) else "diff"


def scheduled_backup(setup: Setup | None = None) -> PgbackrestBackup:
    """The daily round's backup with Custodia's settings (what a scheduler calls)."""
    setup = setup or Setup.from_settings()
    return run_backup(setup, scheduled_type(setup))


# --- Point-in-time restore ----------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 moment with its time zone (2026-12-04T14:30:00+00:00 or ...Z)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BackupError(
            f"{text!r} is not a time: give ISO 8601 with a zone, like 2026-12-04T14:30:00+00:00."
        ) from None
    if moment.tzinfo is None:
        raise BackupError(f"{text!r} has no time zone: add one, like +00:00 or Z.")
    return moment


def _entries(directory: Path) -> Iterator[Path]:
    return directory.iterdir() if directory.is_dir() else iter(())


def restore(
    setup: Setup, *, into: Path, target_time: dt.datetime | None = None,
    label: str | None = None, extra: Sequence[str] = (),
) -> Path:  # fmt: skip
    """Restore the cluster as it was at `target_time` (default: the end of the chosen backup)
    into the new, empty directory `into`. The restored cluster recovers up to that moment and
    is promoted when started; archiving is off in it, so it never writes the live repository."""
    into = into.resolve()
    if into.is_relative_to(setup.pg_data) or setup.pg_data.is_relative_to(into):
        raise BackupError(
            f"{into} overlaps the live data directory {setup.pg_data}: choose another."
        )
    if into.is_relative_to(setup.repo_path.resolve()):
        raise BackupError(f"{into} is inside the repository {setup.repo_path}: choose another.")
    if into.exists() and (not into.is_dir() or any(_entries(into))):
        raise BackupError(f"{into} is not empty: restore into a new or empty directory.")
    if label is not None and not LABEL_PATTERN.match(label):
        raise BackupError(f"{label!r} is not a pgbackrest backup label (like 20261204-031500F).")
    key = passphrase(setup)
    # Tablespaces and links come back inside `into` too, never at the live cluster's places.
    args = [
        f"--pg1-path={into}", "--archive-mode=off", f"--tablespace-map-all={into}/tablespaces",
        *extra,
    ]  # fmt: skip
    restore_command = _pgbackrest_command(setup, f"--pg1-path={shlex.quote(str(into))}")
    args.append(f'--recovery-option=restore_command={restore_command} archive-get %f "%p"')
    if target_time is not None:
        moment = target_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        args += ["--type=time", f"--target={moment}", "--target-action=promote"]
    else:
        args += ["--type=immediate", "--target-action=promote"]
    if label is not None:
        args.append(f"--set={label}")
    made = not into.exists()
    try:
        into.mkdir(parents=True, exist_ok=True, mode=0o700)
        into.chmod(0o700)
        _give(into, setup.os_user)
    except OSError as exc:
        raise BackupError(f"Cannot make {into}: {exc.strerror}.") from None
    try:
        run(setup, "restore", *args, passphrase_text=key, timeout=None)
    except BaseException:
        # What pgbackrest wrote is of no use; a directory the caller made stays, emptied.
        if made:
            shutil.rmtree(into, ignore_errors=True)
        else:
            for entry in _entries(into):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        raise
    logger.info("pgbackrest restore into %s done", into)
    return into
