"""A finished export at rest: age-encrypted to a key of its own, that key sealed in the database.

Each export gets a fresh age identity (X25519); the archive is streamed through age encryption
(pyrage, as backups are) into `CUSTODIA_EXPORT_DIR/<business>/<export>.zip.age`, and the
identity is kept only in the export's row, sealed under the business's data key
(`Export.file_key`, an EncryptedTextField). So the file is readable only through the database
and the business's key: destroying the key (a deleted business) makes the file unreadable too,
and a copy of the directory alone reveals nothing.

The plaintext archive exists only in an anonymous temporary file (no name on disk, gone when
closed or when the process dies) while it is built and while it is handed out.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, cast

import pyrage
from django.conf import settings

from custodia.lifecycle.export.archive import ExportError
from custodia.lifecycle.export.models import Export

logger = logging.getLogger(__name__)

SUFFIX = ".zip.age"
PARTIAL = ".partial"


def new_file_key() -> str:
    """A fresh age identity (AGE-SECRET-KEY-1...) for one export's file."""
    return str(pyrage.x25519.Identity.generate())


def export_dir() -> Path:
    directory = Path(settings.EXPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


def stored_path(export: Export) -> Path:
    return Path(settings.EXPORT_DIR) / str(export.tenant_id) / f"{export.pk}{SUFFIX}"


def scratch_file() -> IO[bytes]:
    """An anonymous temporary file beside the store (no name: nothing to leave behind)."""
    return tempfile.TemporaryFile(dir=export_dir())  # noqa: SIM115 (the caller closes it)


def store(export: Export, plain: IO[bytes]) -> int:
    """Encrypt `plain` (from its start) into the export's file, atomically; returns its size."""
    path = stored_path(export)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(path.name + PARTIAL)
        recipient = pyrage.x25519.Identity.from_str(export.file_key).to_public()
        plain.seek(0)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                pyrage.encrypt_io(
                    cast(io.BufferedIOBase, plain), cast(io.BufferedIOBase, handle), [recipient]
                )
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path.stat().st_size
    except OSError as exc:
        raise ExportError(f"Cannot write the export to {path.parent}: {exc.strerror}.") from None


def open_decrypted(export: Export) -> IO[bytes]:
    """The export's archive, decrypted into an anonymous temporary file, positioned at 0."""
    identity = pyrage.x25519.Identity.from_str(export.file_key)
    out = scratch_file()
    try:
        with open(stored_path(export), "rb") as source:
            pyrage.decrypt_io(
                cast(io.BufferedIOBase, source), cast(io.BufferedIOBase, out), [identity]
            )
    except (OSError, pyrage.DecryptError) as exc:
        out.close()
        problem = type(exc).__name__
        raise ExportError(f"The stored export {export.pk} cannot be read ({problem}).") from None
    out.seek(0)
    return out


def delete_stored(export: Export) -> None:
    stored_path(export).unlink(missing_ok=True)


def sweep(now: dt.datetime | None = None) -> int:
    """Delete every stored export older than the export lifetime (and partial files left by a
    build that was killed); returns how many files went. Needs no database: an expired file
    is useless whatever its row says."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = (now - dt.timedelta(hours=settings.EXPORT_TTL_HOURS)).timestamp()
    root = Path(settings.EXPORT_DIR)
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.glob(f"*/*{SUFFIX}*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        except OSError:
            logger.warning("could not remove an expired export file %s", path.name)
    return removed
