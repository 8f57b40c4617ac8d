"""Backups of the keystore (docs/keys.md, "Keystore backups"): kept apart from the database's.

The keystore (CUSTODIA_KEYSTORE_DIR) holds each business's data keys, wrapped by the KEK. It is
never in a database backup: destroying a business's key file makes that business unreadable in
every database backup. Its own backups are what can bring a key back (after a lost disk, or a
deletion made by mistake), so they live only CUSTODIA_KEYSTORE_BACKUP_RETENTION_DAYS (30): a
deleted business is unreadable everywhere once the last keystore backup taken before its
deletion has been pruned, `unreadable_everywhere_days()` after the deletion.

A keystore backup is every key file, read under the keystore's lock (so no rotation or
destruction is half-seen), in one JSON archive encrypted with age to the backup recipients, and
a signed manifest naming each business and its file's sha256, in its own store (directory or
S3 prefix).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyrage
from django.conf import settings

from custodia.crypto import keystore
from custodia.crypto.actions import do_restore_business_keys
from custodia.lifecycle.backups.keys import recipients
from custodia.lifecycle.backups.logical import Digesting, check_payload, new_backup_id, publish
from custodia.lifecycle.backups.manifest import BackupError
from custodia.lifecycle.backups.store import Backup, Store

ARCHIVE_FORMAT = "custodia-keystore-archive/1"
# Keystore backups are pruned daily, so a key outlives its business by at most the retention
# plus the day between two prunes.
PRUNE_INTERVAL_DAYS = 1


def unreadable_everywhere_days() -> int:
    """N in "a deleted business's data is unreadable everywhere, backups included, N days after
    deletion": the keystore backups' retention plus the day between two prunes."""
    return int(settings.KEYSTORE_BACKUP_RETENTION_DAYS) + PRUNE_INTERVAL_DAYS


def _snapshot() -> dict[str, bytes]:
    """Every key file's bytes, read under the keystore's lock."""
    files = {}
    with keystore.locked():
        for business in keystore.business_ids():
            path = keystore.path_for(business)
            try:
                files[str(business)] = path.read_bytes()
            except FileNotFoundError:
                continue
    return files


def run_keystore_backup(
    store: Store,
    *,
    now: dt.datetime | None = None,
    snapshot: Callable[[], dict[str, bytes]] | None = None,
    keys: list[pyrage.x25519.Recipient] | None = None,
) -> Backup:
    """Back the keystore up into `store`: a new, complete, signed backup, or an error and none.
    `snapshot` reads another keystore's files (the card vault's), `keys` are its recipients."""
    keys = keys if keys is not None else recipients()
    now = now or dt.datetime.now(dt.UTC)
    backup_id = new_backup_id(now)
    with store.locked():
        files = (snapshot or _snapshot)()
        archive = json.dumps(
            {
                "format": ARCHIVE_FORMAT,
                "files": {
                    name: base64.b64encode(content).decode() for name, content in files.items()
                },
            }
        ).encode()
        payload = Backup(backup_id, store).payload_name
        digest: dict[str, object] = {}

        def write(handle: io.BufferedIOBase) -> None:
            writer = Digesting(handle)  # type: ignore[arg-type]
            pyrage.encrypt_io(io.BytesIO(archive), writer, keys)
            digest["sha256"], digest["size"] = writer.sha256.hexdigest(), writer.size

        store.write(payload, write)  # type: ignore[arg-type]
        manifest = {
            "format": store.manifest_format,
            "id": backup_id,
            "engine": "keystore",
            "created_at": now.isoformat(),
            "businesses": {
                name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())
            },
            "dump": {"file": payload, **digest},
            "recipients": sorted(str(key) for key in keys),
        }
        return publish(store, manifest, payload)


def read_archive(backup: Backup, identities: list[pyrage.x25519.Identity]) -> dict[str, bytes]:
    """The key files in a keystore backup, checked against its manifest (BackupError)."""
    check_payload(backup)
    plain = io.BytesIO()
    with backup.store.reader(backup.payload_name) as source:
        try:
            pyrage.decrypt_io(source, plain, identities)
        except pyrage.DecryptError as exc:
            raise BackupError(
                f"Backup {backup.id} does not decrypt with this identity ({exc})."
            ) from None
    try:
        document = json.loads(plain.getvalue())
        files = {name: base64.b64decode(text) for name, text in document["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupError(f"Backup {backup.id} is not a keystore archive.") from None
    listed = backup.manifest.get("businesses", {})
    found = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    if document.get("format") != ARCHIVE_FORMAT or found != listed:
        raise BackupError(f"Backup {backup.id}: its key files differ from its manifest.")
    return files


def verify_keystore_backup(
    backup: Backup, identities: list[pyrage.x25519.Identity] | None = None
) -> int:
    """Signature and checksum; with identities, also every key file against the manifest.
    Returns how many businesses it holds."""
    if identities is None:
        check_payload(backup)
        return len(backup.manifest.get("businesses", {}))
    return len(read_archive(backup, identities))


@dataclass(frozen=True)
class KeystoreRestore:
    restored: list[str]
    kept: list[str]  # already in the target: never overwritten (it may be newer)


def chosen_key_files(
    backup: Backup,
    identities: list[pyrage.x25519.Identity],
    businesses: list[str] | None,
    what: str,
) -> dict[str, bytes]:
    """The backup's key files by business id: all of them, or those of `businesses`."""
    files = read_archive(backup, identities)
    if businesses is None:
        return {name: files[name] for name in sorted(files)}
    try:
        wanted = sorted({str(uuid.UUID(str(b))) for b in businesses})
    except ValueError:
        raise BackupError("--business takes business ids (UUIDs).") from None
    missing = [name for name in wanted if name not in files]
    if missing:
        raise BackupError(f"Backup {backup.id} holds no {what} of {', '.join(missing)}.")
    return {name: files[name] for name in wanted}


def restore_into_directory(into: Path, chosen: dict[str, bytes]) -> KeystoreRestore:
    """Write key files into `into`, a new or empty directory (never over a live keystore)."""
    if into.exists() and any(into.iterdir()):
        raise BackupError(f"{into} is not empty: restore into a new directory.")
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, content in chosen.items():
        keystore.replace_file(into / f"{name}.json", content)
    return KeystoreRestore(list(chosen), [])


def restore_keystore(
    backup: Backup,
    identities: list[pyrage.x25519.Identity],
    *,
    businesses: list[str] | None = None,
    into: Path | None = None,
) -> KeystoreRestore:
    """Put the backup's key files (or those of `businesses`) back: into the live keystore,
    where a file that exists is kept, or into `into`, a new or empty directory."""
    chosen = chosen_key_files(backup, identities, businesses, "keys")
    if into is not None:
        return restore_into_directory(into, chosen)
    restored, kept = do_restore_business_keys(chosen, source=backup.id)
    return KeystoreRestore(restored, kept)
