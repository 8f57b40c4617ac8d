"""The card vault's backups (docs/backups.md, "The card vault"): its database and its keystore.

The vault (src/custodia/vault/) is a process of its own with its own database (`custodia_vault`,
CUSTODIA_VAULT_DB_NAME) and its own keystore (CUSTODIA_VAULT_KEYSTORE_DIR, wrapped by the vault's
KEK). Backing them up is an operator's job of the app side, like the app's own backups: nothing
here imports the vault. The database is reached by name as the admin role (the vault role is
the only one the vault lets connect), the keystore by path, under the same lock file its own
writers take (`.lock` in the directory, as crypto/keystore.py's `locked`).

- The database: `pg_dump` through age like the app's (logical.py), a signed manifest of its
  own format (`custodia-vault-backup/1`) with row counts and checksums, to the vault's own
  store, kept as long as the app's (CUSTODIA_BACKUP_RETENTION_DAYS and its tiers).
  Card numbers and holder names are sealed in the vault's rows, so the dump holds ciphertext.
- The keystore: every key file in one age-encrypted archive, kept only
  CUSTODIA_KEYSTORE_BACKUP_RETENTION_DAYS, as the app's keystore backups: a business destroyed
  at the vault (its key file shredded) is unreadable in every vault database backup once the
  last keystore backup older than the destruction is pruned (`unreadable_everywhere_days()`).

Both are encrypted to CUSTODIA_VAULT_BACKUP_RECIPIENTS, else to the app's recipients.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyrage
from django.conf import settings

from custodia.core.audit import AuditAction, record
from custodia.crypto import keystore, rows
from custodia.embedded import VAULT_ROLE
from custodia.lifecycle.backups.keys import vault_recipients
from custodia.lifecycle.backups.keystore import (
    KeystoreRestore,
    chosen_key_files,
    restore_into_directory,
    run_keystore_backup,
)
from custodia.lifecycle.backups.logical import (
    connect,
    database_exists,
    drop_database,
    restore_backup,
    run_backup,
)
from custodia.lifecycle.backups.manifest import BackupError
from custodia.lifecycle.backups.store import (
    VAULT_FORMAT,
    VAULT_KEYSTORE_FORMAT,
    Backup,
    Store,
)

logger = logging.getLogger(__name__)

# The vault's tables whose rows carry a business's sealed card data (vault/models.py), by name.
SEALED_CARDS_SQL = (
    "SELECT DISTINCT business_id FROM vault_card"
    " WHERE number_sealed IS NOT NULL OR holder_sealed IS NOT NULL"
)
DESTROYED_SQL = "SELECT business_id FROM vault_destroyedbusiness"


def vault_database() -> str:
    return str(settings.VAULT_DB_NAME)


def vault_keystore_dir() -> Path:
    return Path(settings.VAULT_KEYSTORE_DIR)


def _expect(store: Store, manifest_format: str) -> None:
    if store.manifest_format != manifest_format:
        raise BackupError(f"{store.label} is not a store of the card vault's backups.")


# --- The database --------------------------------------------------------------------------------


def run_vault_backup(store: Store, *, now: dt.datetime | None = None) -> Backup:
    """Back the vault's database up into `store` (the vault's own): a new, complete, signed
    backup, or an error and none."""
    _expect(store, VAULT_FORMAT)
    keys = vault_recipients()
    database = vault_database()
    if not database_exists(database):
        raise BackupError(
            f"The card vault's database {database} does not exist on this server: run "
            "`custodia setup`, set CUSTODIA_VAULT_DB_NAME, or CUSTODIA_VAULT_BACKUPS=false "
            "where another host backs the vault up."
        )
    backup = run_backup(store, now=now, database=database, keys=keys)
    logger.info("vault backup %s written", backup.id)
    return backup


def restore_vault_backup(
    backup: Backup, identities: list[pyrage.x25519.Identity], into: str
) -> dict[str, int]:
    """Restore a vault backup into the new database `into`, owned by the vault's role and
    closed to every other role (as `custodia vault setup` makes the vault's), checked against
    the manifest's counts and checksums; on any failure `into` is dropped again."""
    _expect(backup.store, VAULT_FORMAT)
    return restore_backup(backup, identities, into, owner=VAULT_ROLE)


# --- The keystore --------------------------------------------------------------------------------


@contextmanager
def keystore_locked(directory: Path) -> Iterator[None]:
    """The vault keystore's write lock: the file its own writers lock (crypto/keystore.py)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _key_files(directory: Path) -> dict[str, Path]:
    found = {}
    if directory.is_dir():
        for path in directory.glob("*.json"):
            try:
                found[str(uuid.UUID(path.stem))] = path
            except ValueError:
                continue
    return found


def snapshot_vault_keystore() -> dict[str, bytes]:
    """Every vault key file's bytes, read under the vault keystore's lock (a destruction or a
    rotation is never half-seen)."""
    directory = vault_keystore_dir()
    files = {}
    with keystore_locked(directory):
        for business, path in sorted(_key_files(directory).items()):
            try:
                files[business] = path.read_bytes()
            except FileNotFoundError:
                continue
    return files


def run_vault_keystore_backup(store: Store, *, now: dt.datetime | None = None) -> Backup:
    """Back the vault's keystore up into `store` (the vault keystore's own)."""
    _expect(store, VAULT_KEYSTORE_FORMAT)
    return run_keystore_backup(
        store, now=now, snapshot=snapshot_vault_keystore, keys=vault_recipients()
    )


def restore_vault_keystore(
    backup: Backup,
    identities: list[pyrage.x25519.Identity],
    *,
    businesses: list[str] | None = None,
    into: Path | None = None,
) -> KeystoreRestore:
    """Put the backup's vault key files (or those of `businesses`) back: into the live vault
    keystore, where a file that exists is kept (it may be newer), each restored file recorded
    on the platform's audit chain; or into `into`, a new or empty directory."""
    _expect(backup.store, VAULT_KEYSTORE_FORMAT)
    chosen = chosen_key_files(backup, identities, businesses, "vault keys")
    if into is not None:
        return restore_into_directory(into, chosen)
    directory = vault_keystore_dir()
    restored, kept = [], []
    with keystore_locked(directory):
        for name, content in chosen.items():
            path = directory / f"{name}.json"
            if path.exists():
                kept.append(name)
                continue
            keystore.replace_file(path, content)
            restored.append(name)
    for name in restored:
        record(
            AuditAction.KEY_RESTORE,
            target_type="vault business",
            target_id=name,
            detail={"backup": backup.id, "keystore": "vault"},
            using=rows.USING,
        )
        logger.info("vault keys restored tenant=%s backup=%s", name, backup.id)
    return KeystoreRestore(restored, kept)


# --- What the drill checks beyond counts and checksums -------------------------------------------


def check_restored_keys(database: str) -> tuple[int, int]:
    """Of the businesses with sealed cards in the restored copy `database`: how many have a key
    file in the live vault keystore, and how many were destroyed at the vault since (listed in
    the live vault's `vault_destroyedbusiness`, or without a key file and absent from the live
    vault's cards: shredded, as intended). A business whose cards the live vault still holds
    sealed but whose key file is missing fails (BackupError): its cards could not be opened."""
    with connect(database) as copy:
        businesses = {str(row[0]) for row in copy.execute(SEALED_CARDS_SQL).fetchall()}
    with connect(vault_database()) as live:
        destroyed = {str(row[0]) for row in live.execute(DESTROYED_SQL).fetchall()}
        live_sealed = {str(row[0]) for row in live.execute(SEALED_CARDS_SQL).fetchall()}
    keyed = set(_key_files(vault_keystore_dir()))
    with_key = shredded = 0
    for business in sorted(businesses):
        if business in keyed:
            with_key += 1
        elif business in destroyed or business not in live_sealed:
            shredded += 1
        else:
            raise BackupError(
                f"the live vault keystore has no key for business {business}, whose cards the "
                "vault holds: its cards in the backup cannot be opened"
            )
    return with_key, shredded


def drop_vault_database(name: str) -> None:
    """Drop a restored copy (the drill's scratch database)."""
    if name == vault_database():
        raise BackupError(f"{name} is the live vault database.")
    drop_database(name)


__all__ = [
    "check_restored_keys",
    "drop_vault_database",
    "keystore_locked",
    "restore_vault_backup",
    "restore_vault_keystore",
    "run_vault_backup",
    "run_vault_keystore_backup",
    "snapshot_vault_keystore",
    "vault_database",
]
