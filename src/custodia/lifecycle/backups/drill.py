"""The restore drill (docs/backups.md, "Restore drills"): weekly, prove the newest backup restores.

A drill restores the newest sound backup into a scratch database (checked against the
manifest's row counts and per-table checksums, as every restore is), verifies every audit chain
of the restored copy, opens a sample of its sealed values with the live keystore, and drops the
copy. The result goes to a signed, hash-chained log (CUSTODIA_BACKUP_DRILL_LOG_FILE: each line
names the digest of the one before), whose newest entry `/security/` shows; a failed drill is
emailed to CUSTODIA_OPERATOR_EMAILS.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pyrage
from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, connections
from psycopg import sql

from custodia.audit import chain
from custodia.audit.chain import ChainBroken
from custodia.crypto.errors import CryptoError, KekError, KeyUnavailable
from custodia.crypto.fields import open_bytes
from custodia.crypto.rows import sealed_tables
from custodia.detection.actions import raise_platform_alert
from custodia.detection.rules import Finding
from custodia.lifecycle.backups import vault
from custodia.lifecycle.backups.keys import (
    development_identity,
    load_identity,
    uses_development_key,
)
from custodia.lifecycle.backups.logical import (
    connect,
    database_name,
    drop_database,
    restore_backup,
)
from custodia.lifecycle.backups.manifest import (
    BackupError,
    public_key,
    sign_manifest,
    verify_manifest,
)
from custodia.lifecycle.backups.store import Backup, Store

logger = logging.getLogger(__name__)

# Sealed values opened per encrypted column of the restored copy.
SAMPLE_PER_COLUMN = 25
# The scheduled drill runs when the newest recorded one is at least this old.
DRILL_INTERVAL = dt.timedelta(days=7)
# What a drill restores: the app's database backups, or the card vault's (vault.py).
DATABASE, VAULT = "database", "vault"


@dataclass(frozen=True)
class DrillResult:
    backup_id: str
    ok: bool
    detail: str
    tables: int = 0
    rows: int = 0
    chains: int = 0
    values_opened: int = 0
    values_shredded: int = 0  # of businesses deleted since the backup: their keys are gone
    at: str = ""
    kind: str = DATABASE  # or VAULT: the card vault's database backups


class DrillFailure(Exception):
    """One check of the restored copy failed; the message says which (ids only)."""


@contextmanager
def _owner_connection_to(database: str) -> Iterator[None]:
    """In this thread only, the "owner" connection (the audit chain's) goes to `database`."""
    original = connections["owner"]
    replacement = original.__class__({**original.settings_dict, "NAME": database}, "owner")
    connections["owner"] = replacement
    try:
        yield
    finally:
        replacement.close()
        connections["owner"] = original


def verify_restored_chains(database: str, taken_at: dt.datetime) -> int:
    """`custodia audit verify` on the restored copy; how many chains verified (DrillFailure)."""
    with _owner_connection_to(database):
        tenants = chain.chains()
        for tenant_id in tenants:
            report = chain.verify_chain(tenant_id, logged_before=taken_at)
            if not report.ok:
                raise DrillFailure(
                    f"the audit chain of {report.label} does not verify in the restored copy: "
                    f"{report.problems[0].message}"
                )
    return len(tenants)


def open_sample(database: str, *, per_column: int = SAMPLE_PER_COLUMN) -> tuple[int, int]:
    """Open a random sample of the restored copy's sealed values with the live keystore:
    (opened, shredded). A value of a business that still exists must open (DrillFailure)."""
    with connect(database_name()) as live:
        existing = {row[0] for row in live.execute("SELECT id FROM tenancy_business").fetchall()}
    opened = shredded = 0
    with connect(database) as copy:
        for table in sealed_tables():
            for column in table.columns:
                query = sql.SQL(
                    "SELECT tenant_id, {pk}, {column} FROM {table} WHERE {column} IS NOT NULL"
                    " ORDER BY random() LIMIT %s"
                ).format(
                    pk=sql.Identifier(table.pk),
                    column=sql.Identifier(column),
                    table=sql.Identifier(table.table),
                )
                for tenant, row, blob in copy.execute(query, [per_column]).fetchall():
                    try:
                        open_bytes(tenant, table.table, column, row, bytes(blob))
                    except KeyUnavailable:
                        if tenant in existing:
                            raise DrillFailure(
                                f"the live keystore has no key for business {tenant}, which "
                                "exists: its values in the backup cannot be opened"
                            ) from None
                        shredded += 1
                        continue
                    except (CryptoError, KekError) as exc:
                        raise DrillFailure(
                            f"a sealed value ({table.table}.{column}, row {row}, business "
                            f"{tenant}) does not open with the live keystore: "
                            f"{exc.__class__.__name__}"
                        ) from None
                    opened += 1
    return opened, shredded


def drill(
    store: Store, identities: list[pyrage.x25519.Identity], *, notify: bool = True
) -> DrillResult:
    """Restore the newest backup into a scratch database, check it, drop it; record the result
    and, if it failed, email the operators."""
    with _drill_lock():
        at = dt.datetime.now(dt.UTC).isoformat()
        try:
            backup = store.newest()
        except BackupError as exc:
            result = DrillResult("", False, str(exc), at=at)
        else:
            result = _drill(backup, identities, at)
        record_drill(result)
    if not result.ok:
        raise_drill_alert(result)
    if not result.ok and notify:
        notify_operators(result, store.label)
    return result


def vault_drill(
    store: Store, identities: list[pyrage.x25519.Identity], *, notify: bool = True
) -> DrillResult:
    """The card vault's drill: restore its newest database backup into a scratch database
    (checked against the manifest's counts and checksums, owned by the vault's role alone),
    check that every business with sealed cards in it has a key in the live vault keystore or
    was destroyed at the vault since, drop it; record the result (kind "vault") in the same
    log and, if it failed, email the operators."""
    with _drill_lock():
        at = dt.datetime.now(dt.UTC).isoformat()
        try:
            backup = store.newest()
        except BackupError as exc:
            result = DrillResult("", False, f"card vault: {exc}", at=at, kind=VAULT)
        else:
            result = _vault_drill(backup, identities, at)
        record_drill(result)
    if not result.ok:
        raise_drill_alert(result)
    if not result.ok and notify:
        notify_operators(result, store.label)
    return result


def _vault_drill(backup: Backup, identities: list[pyrage.x25519.Identity], at: str) -> DrillResult:
    scratch = f"{vault.vault_database()}_drill"[:63]
    vault.drop_vault_database(scratch)  # a drill killed before its cleanup
    try:
        counts = vault.restore_vault_backup(backup, identities, scratch)
        with_key, shredded = vault.check_restored_keys(scratch)
    except BackupError as exc:
        return DrillResult(backup.id, False, f"card vault: {exc}", at=at, kind=VAULT)
    except Exception as exc:  # noqa: BLE001 (a drill that crashes has failed: record and tell)
        first_line = (str(exc).splitlines() or [""])[0][:200]
        logger.error("vault restore drill of %s stopped: %s", backup.id, exc.__class__.__name__)
        return DrillResult(
            backup.id,
            False,
            f"card vault: the drill stopped: {exc.__class__.__name__}: {first_line}",
            at=at,
            kind=VAULT,
        )
    finally:
        vault.drop_vault_database(scratch)
    rows = sum(counts.values())
    detail = (
        f"card vault: restored {len(counts)} tables, {rows} rows, with the manifest's counts and "
        f"checksums; {with_key} businesses with sealed cards have a key in the live vault "
        "keystore"
    )
    if shredded:
        detail += f" ({shredded} destroyed since, whose cards stay sealed, as intended)"
    return DrillResult(
        backup.id, True, detail, len(counts), rows, 0, with_key, shredded, at, kind=VAULT
    )


@contextmanager
def _drill_lock() -> Iterator[None]:
    """One drill at a time on this host: they share the scratch database and the log's chain."""
    path = Path(settings.BACKUP_DRILL_LOG_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _drill(backup: Backup, identities: list[pyrage.x25519.Identity], at: str) -> DrillResult:
    scratch = f"{database_name()}_drill"[:63]
    drop_database(scratch)  # a drill killed before its cleanup
    try:
        counts = restore_backup(backup, identities, scratch)
        taken_at = backup.created_at or dt.datetime.now(dt.UTC)
        chains = verify_restored_chains(scratch, taken_at)
        opened, shredded = open_sample(scratch)
    except (BackupError, DrillFailure) as exc:
        return DrillResult(backup.id, False, str(exc), at=at)
    except Exception as exc:  # noqa: BLE001 (a drill that crashes has failed: record and tell)
        first_line = (str(exc).splitlines() or [""])[0][:200]  # never a DETAIL line (row values)
        logger.error("restore drill of %s stopped: %s", backup.id, exc.__class__.__name__)
        return DrillResult(
            backup.id, False, f"the drill stopped: {exc.__class__.__name__}: {first_line}", at=at
        )
    finally:
        drop_database(scratch)
    rows = sum(counts.values())
    detail = (
        f"restored {len(counts)} tables, {rows} rows, with the manifest's counts and checksums; "
        f"{chains} audit chains verify; {opened} sealed values open with the live keystore"
        + (f" ({shredded} of deleted businesses do not, as intended)" if shredded else "")
    )
    return DrillResult(backup.id, True, detail, len(counts), rows, chains, opened, shredded, at)


# --- The drill log ------------------------------------------------------------------------------


def _lines() -> list[str]:
    path = settings.BACKUP_DRILL_LOG_FILE
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(
            f"The drill log {path} cannot be read: {exc.__class__.__name__}."
        ) from None


def record_drill(result: DrillResult) -> None:
    """Append the result to the drill log, signed and naming the digest of the line before."""
    path = settings.BACKUP_DRILL_LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = _lines()
    previous = hashlib.sha256(lines[-1].encode()).hexdigest() if lines else ""
    document = json.loads(sign_manifest({**asdict(result), "previous": previous}))
    line = json.dumps(document, separators=(",", ":"), sort_keys=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class DrillStatus:
    """The newest drill as the log shows it, or why the log cannot be trusted."""

    at: dt.datetime | None
    ok: bool
    backup_id: str = ""
    problem: str | None = None


def drill_records() -> list[dict[str, object]]:
    """Every drill result, oldest first; BackupError if a line was altered, removed or added."""
    records, previous = [], ""
    lines = _lines()
    try:
        public = public_key() if lines else None
    except ChainBroken as exc:
        raise BackupError(f"The drill log cannot be checked: {exc}") from None
    for number, line in enumerate(lines, start=1):
        record, problem = verify_manifest(line.encode(), public=public)
        if problem is None and record.get("previous") != previous:
            problem = "a line before it was altered or removed"
        if problem is not None:
            raise BackupError(f"Line {number} of the drill log: {problem}.")
        records.append(record)
        previous = hashlib.sha256(line.encode()).hexdigest()
    return records


def latest_drill(kind: str = DATABASE) -> DrillStatus | None:
    """The newest drill of `kind` (None if none ran), checked with the whole log."""
    try:
        records = [record for record in drill_records() if record.get("kind", DATABASE) == kind]
    except BackupError as exc:
        return DrillStatus(None, False, problem=str(exc))
    if not records:
        return None
    newest = records[-1]
    try:
        at = dt.datetime.fromisoformat(str(newest["at"]))
    except (KeyError, ValueError):
        return DrillStatus(None, False, problem="the newest drill has no date")
    return DrillStatus(at, bool(newest["ok"]), str(newest.get("backup_id", "")))


def drill_identity() -> list[pyrage.x25519.Identity] | None:
    """The identity a scheduled drill decrypts with: CUSTODIA_BACKUP_DRILL_IDENTITY_FILE, else
    in development the development key; None (the drill is skipped, with a warning) when the
    host keeps no identity, as production should unless it is the drill host."""
    if settings.BACKUP_DRILL_IDENTITY_FILE:
        return load_identity(Path(settings.BACKUP_DRILL_IDENTITY_FILE))
    if uses_development_key():
        return [development_identity()]
    logger.warning(
        "the weekly restore drill is skipped: no CUSTODIA_BACKUP_DRILL_IDENTITY_FILE on this host"
    )
    return None


def weekly_drill_due(now: dt.datetime | None = None, kind: str = DATABASE) -> bool:
    """Whether a week has passed since the newest recorded drill of `kind` (or none ran)."""
    status = latest_drill(kind)
    if status is None or status.at is None:
        return True
    return (now or dt.datetime.now(dt.UTC)) - status.at >= DRILL_INTERVAL - dt.timedelta(hours=1)


def raise_drill_alert(result: DrillResult) -> None:
    """The platform alert `restore_drill_failed` (detection), for the operators and the SIEM:
    the backup's id and the check that failed, no data. A database that cannot take it (the
    drill may have failed because of it) is logged; the operators' email still goes."""
    finding = Finding(
        rule="restore_drill_failed",
        subject=f"{result.kind} backup {result.backup_id or '(none)'}",
        evidence={"kind": result.kind, "backup": result.backup_id, "check": result.detail[:200]},
    )
    try:
        raise_platform_alert(finding)
    except DatabaseError as exc:
        logger.error("the failed drill's alert could not be raised (%s)", type(exc).__name__)


def notify_operators(result: DrillResult, where: str) -> None:
    """Email CUSTODIA_OPERATOR_EMAILS that a drill failed (ids and the check only, no data)."""
    if not settings.OPERATOR_EMAILS:
        logger.error(
            "restore drill failed and CUSTODIA_OPERATOR_EMAILS is empty: %s", result.detail
        )
        return
    body = (
        f"The restore drill of {result.at} FAILED.\n\n"
        f"Backup: {result.backup_id or '(none)'} in {where}\n"
        f"What failed: {result.detail}\n\n"
        "Until a drill passes, do not count on this backup to restore. See docs/backups.md,"
        ' "Restore drills", and run `custodia backup drill` again once it is fixed.\n'
    )
    try:
        send_mail(
            f"[Custodia] Restore drill FAILED: backup {result.backup_id or '(none)'}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            list(settings.OPERATOR_EMAILS),
        )
    except OSError as exc:
        logger.error("could not email the operators about a failed drill: %s", exc)
