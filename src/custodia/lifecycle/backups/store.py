"""Where backups live: a local directory or an S3-compatible bucket, behind one interface.

A backup is two objects named by its id (`20261204T031500Z-1a2b3c4d`): the encrypted payload
(`<id>.dump.age` for the database, `<id>.keys.age` for the keystore) and `<id>.manifest.json`,
its signed manifest. The payload is written first and the manifest last, each atomically (a
renamed `.partial` file; an S3 multipart upload, invisible until completed, or a single PUT),
so a backup is listed only once complete. What a killed writer left (a `.partial` file, an
unfinished multipart upload, a payload without a manifest) is never listed and is removed by the
next writer. Writers take a lock: a file lock in the directory, or for S3 a file lock on this
host (the scheduler runs one backup at a time; docs/backups.md, "S3").
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from custodia.audit.chain import ChainBroken
from custodia.lifecycle.backups.manifest import BackupError, public_key, verify_manifest

logger = logging.getLogger(__name__)

FORMAT = "custodia-backup/1"
KEYSTORE_FORMAT = "custodia-keystore-backup/1"
# The card vault's (docs/backups.md, "The card vault"): formats of their own, so that a vault
# manifest is never taken for the app's, nor the other way round.
VAULT_FORMAT = "custodia-vault-backup/1"
VAULT_KEYSTORE_FORMAT = "custodia-vault-keystore-backup/1"
DUMP_SUFFIX = ".dump.age"
KEYS_SUFFIX = ".keys.age"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
LOCK_NAME = ".lock"
# S3 parts: at least 5 MiB but the last; 10,000 parts at most (see _Upload._part_size).
PART_SIZE = 8 << 20

Produce = Callable[[IO[bytes]], object]


@dataclass(frozen=True)
class Backup:
    """A backup in a store: its manifest, and what is wrong with it (None: nothing seen without
    reading the payload; `verify` reads it)."""

    id: str
    store: Store
    manifest: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def payload_name(self) -> str:
        return f"{self.id}{self.store.payload_suffix}"

    @property
    def manifest_name(self) -> str:
        return f"{self.id}{MANIFEST_SUFFIX}"

    @property
    def dump_path(self) -> Path:
        """The payload's path (local stores only)."""
        return self.store.path(self.payload_name)

    @property
    def manifest_path(self) -> Path:
        return self.store.path(self.manifest_name)

    @property
    def created_at(self) -> dt.datetime | None:
        try:
            created = dt.datetime.fromisoformat(self.manifest["created_at"])
        except (KeyError, TypeError, ValueError):
            return None
        return created if created.tzinfo is not None else None


class Store(ABC):
    """Backups of one kind in one place; subclasses provide the objects, this the backups."""

    label: str
    # How long a payload without a manifest may be another writer's upload in progress.
    leftover_age = dt.timedelta(0)

    def __init__(self, *, payload_suffix: str = DUMP_SUFFIX, manifest_format: str = FORMAT):
        self.payload_suffix = payload_suffix
        self.manifest_format = manifest_format

    # --- Objects (subclasses) ---

    @abstractmethod
    def objects(self) -> dict[str, dt.datetime]:
        """Every complete object's name and modification time."""

    @abstractmethod
    def read_bytes(self, name: str) -> bytes: ...

    @abstractmethod
    def reader(self, name: str) -> Any:
        """A context manager giving a binary stream of the object (`read(n)`)."""

    @abstractmethod
    def write(self, name: str, produce: Produce) -> None:
        """`produce(handle)` into the object `name`, visible only once complete; on any
        failure nothing of it is visible (BackupError for the store's own failures)."""

    @abstractmethod
    def remove(self, name: str) -> None: ...

    @abstractmethod
    def _lock(self) -> AbstractContextManager[None]:
        """A context manager holding this store's writer lock."""

    @abstractmethod
    def _remove_partials(self) -> None:
        """Unfinished writes of a killed writer."""

    def path(self, name: str) -> Path:
        raise BackupError(f"{self.label} is not a local directory.")

    # --- Backups ---

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (run, prune, drill); what a killed writer left is removed."""
        with self._lock():
            self._remove_leftovers()
            yield

    def _remove_leftovers(self) -> None:
        self._remove_partials()
        objects = self.objects()
        now = dt.datetime.now(dt.UTC)
        for name, modified in objects.items():
            if not name.endswith(self.payload_suffix):
                continue
            manifest = name[: -len(self.payload_suffix)] + MANIFEST_SUFFIX
            if manifest not in objects and now - modified >= self.leftover_age:
                logger.warning("removing %s, left by an interrupted backup", name)
                self.remove(name)

    def backups(self) -> list[Backup]:
        """Every backup with a manifest, oldest first."""
        objects = self.objects()
        try:
            public = public_key()
        except ChainBroken:
            public = None  # each manifest then says why it cannot be checked
        found = []
        for name in sorted(objects):
            if not name.endswith(MANIFEST_SUFFIX):
                continue
            backup_id = name[: -len(MANIFEST_SUFFIX)]
            if not ID_PATTERN.match(backup_id):
                continue
            try:
                content = self.read_bytes(name)
            except BackupError as exc:
                found.append(Backup(backup_id, self, {}, str(exc)))
                continue
            manifest, problem = verify_manifest(
                content, expected_format=self.manifest_format, public=public
            )
            if problem is None and manifest.get("id") != backup_id:
                problem = "the manifest names another backup"
            backup = Backup(backup_id, self, manifest, problem)
            if problem is None and backup.payload_name not in objects:
                backup = Backup(backup_id, self, manifest, "its encrypted file is missing")
            found.append(backup)
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda backup: (backup.created_at or oldest, backup.id))

    def get(self, backup_id: str) -> Backup:
        if not ID_PATTERN.match(backup_id):
            raise BackupError(f"{backup_id!r} is not a backup id (like 20261204T031500Z-1a2b3c4d).")
        for backup in self.backups():
            if backup.id == backup_id:
                return backup
        raise BackupError(f"No backup {backup_id} in {self.label}.")

    def newest(self) -> Backup:
        sound = [backup for backup in self.backups() if backup.problem is None]
        if not sound:
            raise BackupError(f"No backup in {self.label} to use.")
        return sound[-1]

    def delete(self, backup: Backup) -> None:
        """The manifest first: a backup half deleted is no longer listed, and its payload is a
        leftover that a later writer removes."""
        self.remove(backup.manifest_name)
        self.remove(backup.payload_name)


# --- A local directory ---------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file_atomically(path: Path, produce: Produce) -> None:
    """`produce(handle)` into `path`.partial (0600), flushed to disk, renamed to `path`, the
    directory fsynced; on any failure the partial file is removed (OSError as raised)."""
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            produce(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        _fsync_directory(path.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_manifest_file(
    path: Path, expected_format: str = FORMAT
) -> tuple[dict[str, Any], str | None]:
    """A manifest file's content and what is wrong with it (None: signed by this install's key,
    unaltered, of this format)."""
    try:
        content = path.read_bytes()
    except OSError:
        return {}, "the manifest is unreadable"
    return verify_manifest(content, expected_format=expected_format)


class LocalStore(Store):
    """A local directory (0700) of backups, files 0600."""

    def __init__(self, directory: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory or settings.BACKUP_DIR)
        self.label = str(self.directory)

    def path(self, name: str) -> Path:
        return self.directory / name

    def objects(self) -> dict[str, dt.datetime]:
        if not self.directory.is_dir():
            return {}
        found = {}
        for path in self.directory.iterdir():
            if path.name.endswith(PARTIAL_SUFFIX) or path.name.startswith("."):
                continue
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:
                continue
            found[path.name] = dt.datetime.fromtimestamp(modified, dt.UTC)
        return found

    def read_bytes(self, name: str) -> bytes:
        try:
            return (self.directory / name).read_bytes()
        except OSError as exc:
            raise BackupError(f"Cannot read {name} in {self.label}: {exc.strerror}.") from None

    @contextmanager
    def reader(self, name: str) -> Iterator[IO[bytes]]:
        try:
            handle = open(self.directory / name, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise BackupError(f"Cannot read {name} in {self.label}: {exc.strerror}.") from None
        with handle:
            yield handle

    def write(self, name: str, produce: Produce) -> None:
        """Into `name`.partial, flushed to disk, renamed, the directory fsynced."""
        try:
            write_file_atomically(self.directory / name, produce)
        except OSError as exc:
            raise BackupError(f"Cannot write {name} to {self.label}: {exc}.") from None

    def remove(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)

    def _lock(self) -> AbstractContextManager[None]:
        return _flocked(
            self.directory, LOCK_NAME, f"Cannot use the backup directory {self.directory}"
        )

    def _remove_partials(self) -> None:
        for path in self.directory.glob(f"*{PARTIAL_SUFFIX}"):
            logger.warning("removing %s, left by an interrupted backup", path.name)
            path.unlink(missing_ok=True)


@contextmanager
def _flocked(directory: Path, name: str, cannot: str) -> Iterator[None]:
    """An exclusive lock on the file `name` in `directory` (made 0700 if missing), held while
    the block runs; a BackupError that starts with `cannot` if the file cannot be opened."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(directory / name, "a")  # noqa: SIM115 (held to the end)
    except OSError as exc:
        raise BackupError(f"{cannot}: {exc.strerror}.") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# Kept under its first name: `BackupStore(directory)` is a local directory of database backups.
BackupStore = LocalStore


# --- S3-compatible storage -----------------------------------------------------------------------


class _Upload(io.RawIOBase):
    """A writer into one S3 object: a single PUT when small, else a multipart upload that
    becomes visible only when completed (and is aborted on failure)."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self.client, self.bucket, self.key = client, bucket, key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def _part_size(self) -> int:
        # S3 takes 10,000 parts: growing every 1,000 parts, they carry 440 GB.
        return PART_SIZE * (1 + len(self.parts) // 1000)

    def write(self, data: Any) -> int:
        self.buffer += data
        while len(self.buffer) >= (size := self._part_size()):
            self._send(bytes(self.buffer[:size]))
            del self.buffer[:size]
        return len(data)

    def _send(self, part: bytes) -> None:
        if self.upload_id is None:
            answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self.upload_id = answer["UploadId"]
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self) -> None:
        if self.upload_id is None:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            return
        if self.buffer:
            self._send(bytes(self.buffer))
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


@contextmanager
def _s3_errors(store: S3Store, action: str) -> Iterator[None]:
    """botocore's failures as one-line BackupErrors naming the store and the AWS error code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise BackupError(f"Cannot {action} {store.label}: {code}.") from None
    except BotoCoreError as exc:
        raise BackupError(f"Cannot {action} {store.label}: {exc.__class__.__name__}.") from None


class S3Store(Store):
    """Objects under a prefix of an S3-compatible bucket (boto3; credentials the AWS way)."""

    leftover_age = dt.timedelta(days=1)

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str = "",
        region: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise BackupError("S3 backups need boto3: pip install 'custodia[aws]'.") from None
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.label = f"s3://{bucket}/{self.prefix}"
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def objects(self) -> dict[str, dt.datetime]:
        found = {}
        with _s3_errors(self, "list"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(self.prefix) :]
                    if name and "/" not in name:
                        found[name] = entry["LastModified"]
        return found

    def read_bytes(self, name: str) -> bytes:
        with _s3_errors(self, f"read {name} in"):
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    @contextmanager
    def reader(self, name: str) -> Iterator[Any]:
        with _s3_errors(self, f"read {name} in"):
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
            try:
                yield body
            finally:
                body.close()

    def write(self, name: str, produce: Produce) -> None:
        upload = _Upload(self.client, self.bucket, self.prefix + name)
        try:
            with _s3_errors(self, f"write {name} to"):
                produce(upload)  # type: ignore[arg-type]
                upload.complete()
        except BaseException:
            try:
                upload.abort()
            except Exception:  # noqa: BLE001 (the first failure is the one to report)
                logger.warning("could not abort the upload of %s; the next run removes it", name)
            raise

    def remove(self, name: str) -> None:
        with _s3_errors(self, f"delete {name} from"):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def _lock(self) -> AbstractContextManager[None]:
        digest = hashlib.sha256(self.label.encode()).hexdigest()[:16]
        directory = Path(settings.VAR_DIR) / "locks"
        return _flocked(directory, f"s3-{digest}.lock", f"Cannot lock {self.label} in {directory}")

    def _remove_partials(self) -> None:
        """Multipart uploads a killed writer began (after `leftover_age`: another host's may
        still be running); a bucket lifecycle rule can abort them too (docs/backups.md)."""
        cutoff = dt.datetime.now(dt.UTC) - self.leftover_age
        with _s3_errors(self, "list the unfinished uploads of"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] <= cutoff:
                        logger.warning("aborting an interrupted upload of %s", upload["Key"])
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )


# --- The configured stores -----------------------------------------------------------------------


def database_store(directory: Path | None = None) -> Store:
    """Where database backups go: `directory` if given, else the S3 bucket if one is set,
    else CUSTODIA_BACKUP_DIR."""
    if directory is None and settings.BACKUP_S3_BUCKET:
        return S3Store(
            settings.BACKUP_S3_BUCKET,
            settings.BACKUP_S3_PREFIX,
            endpoint_url=settings.BACKUP_S3_ENDPOINT_URL,
            region=settings.BACKUP_S3_REGION,
        )
    return LocalStore(directory or settings.BACKUP_DIR)


def keystore_store(directory: Path | None = None) -> Store:
    """Where keystore backups go: their own directory, or their own prefix of the bucket."""
    kind: dict[str, Any] = {"payload_suffix": KEYS_SUFFIX, "manifest_format": KEYSTORE_FORMAT}
    if directory is None and settings.BACKUP_S3_BUCKET:
        return S3Store(
            settings.BACKUP_S3_BUCKET,
            settings.KEYSTORE_BACKUP_S3_PREFIX,
            endpoint_url=settings.BACKUP_S3_ENDPOINT_URL,
            region=settings.BACKUP_S3_REGION,
            **kind,
        )
    return LocalStore(directory or settings.KEYSTORE_BACKUP_DIR, **kind)


def vault_store(directory: Path | None = None) -> Store:
    """Where the card vault's database backups go: `directory` if given, else their own prefix
    of the bucket if one is set, else CUSTODIA_VAULT_BACKUP_DIR (default BACKUP_DIR/vault)."""
    kind: dict[str, Any] = {"manifest_format": VAULT_FORMAT}
    if directory is None and settings.BACKUP_S3_BUCKET:
        return S3Store(
            settings.BACKUP_S3_BUCKET,
            settings.VAULT_BACKUP_S3_PREFIX,
            endpoint_url=settings.BACKUP_S3_ENDPOINT_URL,
            region=settings.BACKUP_S3_REGION,
            **kind,
        )
    default = Path(settings.VAULT_BACKUP_DIR or Path(settings.BACKUP_DIR) / "vault")
    return LocalStore(directory or default, **kind)


def vault_keystore_store(directory: Path | None = None) -> Store:
    """Where the card vault's keystore backups go: their own directory (default
    KEYSTORE_BACKUP_DIR/vault) or their own prefix of the bucket."""
    kind: dict[str, Any] = {
        "payload_suffix": KEYS_SUFFIX,
        "manifest_format": VAULT_KEYSTORE_FORMAT,
    }
    if directory is None and settings.BACKUP_S3_BUCKET:
        return S3Store(
            settings.BACKUP_S3_BUCKET,
            settings.VAULT_KEYSTORE_BACKUP_S3_PREFIX,
            endpoint_url=settings.BACKUP_S3_ENDPOINT_URL,
            region=settings.BACKUP_S3_REGION,
            **kind,
        )
    default = Path(
        settings.VAULT_KEYSTORE_BACKUP_DIR or Path(settings.KEYSTORE_BACKUP_DIR) / "vault"
    )
    return LocalStore(directory or default, **kind)
