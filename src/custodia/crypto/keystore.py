"""The keystore: each business's data keys, wrapped by the KEK, one file per business.

The files live outside the database (CUSTODIA_KEYSTORE_DIR, 0700), so a dump or backup of the
database holds ciphertext only, and destroying a business's file destroys every copy of its
data at once, backups included (crypto-shredding, docs/keys.md). Writes are atomic (a new file
renamed over the old, both fsynced) and serialised by one lock file, so several processes and
`custodia keys` commands can share the directory.

A file holds an index key (for blind indexes; it does not rotate) and data key versions, each
in one state: `primary` (encrypts new values), `previous` (rows may still use it: a rotation is
under way), `retired` (no row uses it; kept so that backups restore, destroyed after
KEY_RETENTION_DAYS).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from custodia.crypto.errors import KeyUnavailable

if TYPE_CHECKING:
    # Only named in annotations: kek.py uses this module's file locking and replacement.
    from custodia.crypto.kek import KekProvider

KEYSTORE_FORMAT = "custodia-keystore/1"
PRIMARY, PREVIOUS, RETIRED = "primary", "previous", "retired"


@dataclass
class WrappedKey:
    version: int
    state: str
    kek: str
    wrapped: str  # base64
    created_at: str
    retired_at: str | None = None


@dataclass
class KeyFile:
    business: str
    index: WrappedKey
    keys: list[WrappedKey] = field(default_factory=list)
    # Versions destroyed after their retention: a value naming one is under a destroyed key,
    # a value naming a version never listed here or in `keys` has been tampered with.
    destroyed: list[int] = field(default_factory=list)

    @property
    def primary(self) -> WrappedKey:
        return next(key for key in self.keys if key.state == PRIMARY)


def data_key_context(business: object, version: int) -> bytes:
    """What a wrapped data key is bound to: a wrapped key moved to another business fails."""
    return f"custodia data key|{business}|{version}".encode()


def index_key_context(business: object) -> bytes:
    return f"custodia index key|{business}".encode()


def keystore_dir() -> Path:
    return Path(settings.KEYSTORE_DIR)


def path_for(business_id: object) -> Path:
    return keystore_dir() / f"{uuid.UUID(str(business_id))}.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@contextmanager
def locked() -> Iterator[None]:
    """Hold the keystore's write lock (one writer at a time, across processes)."""
    directory = keystore_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def replace_file(path: Path, content: bytes) -> None:
    """Atomically replace `path` with a new 0600 file holding `content` (fsynced)."""
    temporary = temporary_for(path)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # A leftover of a crashed write may have another mode: this one is private whatever.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _sync_directory(path.parent)


def temporary_for(path: Path) -> Path:
    """The one temporary name a file is written under (callers hold the lock), so a write
    that crashed leaves at most this file, which the next write or a destruction replaces."""
    return path.with_name(f".{path.name}.tmp")


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read(business_id: object) -> KeyFile:
    """The business's key file; KeyUnavailable if it was destroyed or never made."""
    path = path_for(business_id)
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeyUnavailable(f"no data key for business {business_id}") from None
    if document.get("format") != KEYSTORE_FORMAT:
        raise KeyUnavailable(f"{path.name} is not a {KEYSTORE_FORMAT} file")
    return KeyFile(
        business=document["business"],
        index=WrappedKey(**document["index"]),
        keys=[WrappedKey(**entry) for entry in document["keys"]],
        destroyed=list(document.get("destroyed", [])),
    )


def write(key_file: KeyFile) -> None:
    document = {"format": KEYSTORE_FORMAT, **asdict(key_file)}
    replace_file(path_for(key_file.business), (json.dumps(document, indent=1) + "\n").encode())


def _wrap(provider: KekProvider, key: bytes, context: bytes) -> tuple[str, str]:
    kek, wrapped = provider.wrap(key, context)
    return kek, base64.b64encode(wrapped).decode()


def _new_data_key(provider: KekProvider, business: str, version: int) -> WrappedKey:
    kek, wrapped = _wrap(
        provider, AESGCM.generate_key(bit_length=256), data_key_context(business, version)
    )
    return WrappedKey(version=version, state=PRIMARY, kek=kek, wrapped=wrapped, created_at=_now())


def create(business_id: object, provider: KekProvider) -> KeyFile:
    """The business's keys, made now if it has none (idempotent)."""
    business = str(uuid.UUID(str(business_id)))
    with locked():
        if path_for(business).exists():
            return read(business)
        kek, wrapped = _wrap(
            provider, AESGCM.generate_key(bit_length=256), index_key_context(business)
        )
        key_file = KeyFile(
            business=business,
            index=WrappedKey(version=0, state=PRIMARY, kek=kek, wrapped=wrapped, created_at=_now()),
            keys=[_new_data_key(provider, business, 1)],
        )
        write(key_file)
    return key_file


def add_version(business_id: object, provider: KekProvider) -> WrappedKey:
    """A new primary data key; the old primary becomes `previous` until rows leave it."""
    with locked():
        key_file = read(business_id)
        for key in key_file.keys:
            if key.state == PRIMARY:
                key.state = PREVIOUS
        new = _new_data_key(provider, key_file.business, max(k.version for k in key_file.keys) + 1)
        key_file.keys.append(new)
        write(key_file)
    return new


def retire_previous(business_id: object) -> list[int]:
    """Mark `previous` versions retired (no row uses them any more); returns their numbers."""
    with locked():
        key_file = read(business_id)
        retired = []
        for key in key_file.keys:
            if key.state == PREVIOUS:
                key.state, key.retired_at = RETIRED, _now()
                retired.append(key.version)
        if retired:
            write(key_file)
    return retired


def destroy_versions(business_id: object, versions: list[int]) -> None:
    """Remove retired versions for good (their retention is over)."""
    with locked():
        key_file = read(business_id)
        gone = [
            key.version for key in key_file.keys if key.state == RETIRED and key.version in versions
        ]
        if not gone:
            return
        key_file.keys = [key for key in key_file.keys if key.version not in gone]
        key_file.destroyed = sorted({*key_file.destroyed, *gone})
        write(key_file)


def destroy(business_id: object) -> bool:
    """Destroy every key of the business: overwrite the file (and any leftover of a crashed
    write), then unlink it. True if the key file existed.

    Overwriting is best effort on copy-on-write and flash storage; what makes the destruction
    final is that the file is the only copy the KEK can open (docs/keys.md, "Destruction").
    """
    path = path_for(business_id)
    with locked():
        existed = False
        for victim in (path, temporary_for(path)):
            try:
                size = victim.stat().st_size
            except FileNotFoundError:
                continue
            with open(victim, "r+b") as handle:
                handle.write(os.urandom(size))
                handle.flush()
                os.fsync(handle.fileno())
            victim.unlink()
            existed = existed or victim == path
        _sync_directory(path.parent)
    return existed


def business_ids() -> list[uuid.UUID]:
    """Every business that has a key file."""
    directory = keystore_dir()
    if not directory.exists():
        return []
    ids = []
    for path in directory.glob("*.json"):
        try:
            ids.append(uuid.UUID(path.stem))
        except ValueError:
            continue
    return sorted(ids)


def rewrap(business_id: object, provider: KekProvider) -> int:
    """Re-wrap every key of one business under the provider's primary KEK; returns how many
    keys changed (0 when all were already under it)."""
    with locked():
        key_file = read(business_id)
        changed = 0
        entries = [(key_file.index, index_key_context(key_file.business))] + [
            (key, data_key_context(key_file.business, key.version)) for key in key_file.keys
        ]
        for entry, context in entries:
            if entry.kek == provider.primary_id:
                continue
            plain = provider.unwrap(entry.kek, base64.b64decode(entry.wrapped), context)
            entry.kek, entry.wrapped = _wrap(provider, plain, context)
            changed += 1
        if changed:
            write(key_file)
    return changed


def keks_in_use() -> set[str]:
    """Ids of the KEKs that wrap at least one key in the keystore."""
    used = set()
    for business in business_ids():
        try:
            key_file = read(business)
        except KeyUnavailable:  # destroyed since the directory was listed
            continue
        used.add(key_file.index.kek)
        used.update(key.kek for key in key_file.keys)
    return used
