"""Data keys in use: unwrapped once per process and cached, sealing and opening field values.

A value is sealed with AES-256-GCM under the business's primary data key:

    0x01 | key version (4 bytes, big-endian) | nonce (12 bytes) | ciphertext and 16-byte tag

The associated data is the 5-byte header plus the value's place (business, table, column,
row), so a ciphertext copied to another row, column or business, or relabelled with another
key version, fails authentication. Format 0x00 (UTF-8 plaintext behind the byte) exists only for
the benchmark's plaintext baseline (settings.FIELD_ENCRYPTION = False); with encryption on it
is refused like any other tampering.

The cache checks the business's key file at most once a second (a stat), so a rotation or a
destruction reaches every process within a second; a value naming a version the cache does not
know makes it re-read the file at once, even when its stat looks unchanged (another host's
rotation, behind a shared file system's attribute cache: docs/scaling.md). The KEK provider's
keyring file is watched the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from custodia.crypto import keystore
from custodia.crypto.errors import KekError, KeyUnavailable
from custodia.crypto.kek import KekProvider, WrappedKeyInvalid, provider_from_settings

FORMAT_AES_GCM = 1
FORMAT_PLAINTEXT = 0
HEADER_BYTES = 5
NONCE_BYTES = 12
BLIND_INDEX_BYTES = 16
REFRESH_SECONDS = 1.0


class Unauthentic(Exception):
    """The ciphertext did not authenticate (the caller knows where it was: IntegrityFailure)."""


class UnknownVersion(KeyUnavailable):
    """A value names a key version these keys do not have (yet: re-read the file once)."""


@dataclass(frozen=True)
class BusinessKeys:
    business_id: uuid.UUID
    primary: int
    ciphers: dict[int, AESGCM]
    index_key: bytes
    destroyed: frozenset[int] = frozenset()

    def seal(self, plaintext: str, context: bytes) -> bytes:
        """The stored form of `plaintext` at `context` (see the module docstring)."""
        return self.seal_bytes(plaintext.encode(), context)

    def open(self, blob: bytes, context: bytes) -> str:
        """The plaintext; Unauthentic if altered or moved, KeyUnavailable if its key is gone."""
        try:
            return self.open_bytes(blob, context).decode()
        except UnicodeDecodeError:
            raise Unauthentic from None

    def seal_bytes(self, plaintext: bytes, context: bytes) -> bytes:
        """The stored form of `plaintext` bytes (text is sealed as its UTF-8 bytes)."""
        if not settings.FIELD_ENCRYPTION:
            return bytes([FORMAT_PLAINTEXT]) + plaintext
        header = bytes([FORMAT_AES_GCM]) + self.primary.to_bytes(4, "big")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.ciphers[self.primary].encrypt(nonce, plaintext, header + context)
        return header + nonce + sealed

    def open_bytes(self, blob: bytes, context: bytes) -> bytes:
        """The plaintext bytes; Unauthentic if altered or moved, KeyUnavailable if its key is
        gone."""
        if blob[:1] == bytes([FORMAT_PLAINTEXT]) and not settings.FIELD_ENCRYPTION:
            return blob[1:]
        if len(blob) < HEADER_BYTES + NONCE_BYTES + 16 or blob[0] != FORMAT_AES_GCM:
            raise Unauthentic
        header, nonce, sealed = blob[:HEADER_BYTES], blob[HEADER_BYTES:17], blob[17:]
        version = int.from_bytes(header[1:], "big")
        cipher = self.ciphers.get(version)
        if cipher is None:
            if version in self.destroyed:
                raise KeyUnavailable(
                    f"data key version {version} of business {self.business_id} was destroyed"
                )
            raise UnknownVersion(f"business {self.business_id} has no data key version {version}")
        try:
            return cipher.decrypt(nonce, sealed, header + context)
        except InvalidTag:
            raise Unauthentic from None

    def blind_index(self, kind: str, normalised: str) -> bytes | None:
        """A keyed digest for equality search; None for an empty value. Per business, so equal
        values in two businesses do not match."""
        if not normalised:
            return None
        if not settings.FIELD_ENCRYPTION:
            return f"{kind}:{normalised}".encode()
        message = f"{kind}\x00{normalised}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).digest()[:BLIND_INDEX_BYTES]


def version_of(blob: bytes) -> int:
    """The key version a stored value names (0 for the benchmark's plaintext format)."""
    return int.from_bytes(blob[1:HEADER_BYTES], "big") if blob[:1] == b"\x01" else 0


_lock = threading.Lock()
# The provider, when its keyring file was last checked, and that file's (mtime, size, inode).
_provider: KekProvider | None = None
_provider_checked = 0.0
_provider_signature: tuple[int, int, int] | None = None
# business id -> (when the file was last checked, its (mtime, size, inode), the keys)
_cache: dict[uuid.UUID, tuple[float, tuple[int, int, int], BusinessKeys]] = {}


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced: (mtime, size, inode); None if it is missing."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _keyring_signature() -> tuple[int, int, int] | None:
    if settings.KEK_PROVIDER != "file":
        return None
    return _file_signature(Path(settings.KEK_KEYRING_FILE))


def provider(*, refresh: bool = False) -> KekProvider:
    """The configured KEK provider. The file provider's keyring is re-read when it changes
    (checked at most once a second), so a `rotate-kek` reaches every process without a restart."""
    global _provider, _provider_checked, _provider_signature
    with _lock:
        now = time.monotonic()
        if _provider is not None and not refresh and now - _provider_checked < REFRESH_SECONDS:
            return _provider
        signature = _keyring_signature()
        if _provider is None or refresh or signature != _provider_signature:
            # The file provider makes its keyring on first run, and only then: with keys in
            # the keystore, a missing keyring is an error, never a reason for a new one; and a
            # running process never makes one (its keystore may just be unmounted).
            first = _provider is None and signature is None
            _provider = provider_from_settings(create=first and not keystore.business_ids())
            # The signature from before the read: a change during it is seen next time.
            _provider_signature = signature if signature is not None else _keyring_signature()
        _provider_checked = now
        return _provider


def reset() -> None:
    """Forget the provider and every cached key (in tests, and after changing settings)."""
    global _provider, _provider_signature
    with _lock:
        _provider = None
        _provider_signature = None
        _cache.clear()


def forget(business_id: object) -> None:
    """Drop one business's cached keys (after destroying them)."""
    _cache.pop(uuid.UUID(str(business_id)), None)


def _signature(business_id: uuid.UUID) -> tuple[int, int, int]:
    signature = _file_signature(keystore.path_for(business_id))
    if signature is None:
        raise KeyUnavailable(f"no data key for business {business_id}")
    return signature


def keys_for(business_id: object, *, refresh: bool = False) -> BusinessKeys:
    """The business's unwrapped keys (cached; see the module docstring)."""
    key = business_id if isinstance(business_id, uuid.UUID) else uuid.UUID(str(business_id))
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and not refresh and now - cached[0] < REFRESH_SECONDS:
        return cached[2]
    try:
        signature = _signature(key)
    except KeyUnavailable:
        _cache.pop(key, None)
        raise
    # `refresh` (a value names a version these keys lack) reads the file whatever its stat
    # says: on shared storage (NFS) the attributes may be cached for longer than the content,
    # and another host may have rotated the key a moment ago.
    if cached is not None and cached[1] == signature and not refresh:
        _cache[key] = (now, signature, cached[2])
        return cached[2]
    key_file = keystore.read(key)
    kek = provider()
    if not _wrapped_under_known_keks(key_file, kek):
        # Re-wrapped under a KEK this process has not loaded yet (a rotate-kek a moment ago).
        kek = provider(refresh=True)
    keys = _unwrap(key_file, kek)
    _cache[key] = (now, signature, keys)
    return keys


def _wrapped_under_known_keks(key_file: keystore.KeyFile, kek: KekProvider) -> bool:
    return kek.holds(key_file.index.kek) and all(kek.holds(entry.kek) for entry in key_file.keys)


def _unwrap(key_file: keystore.KeyFile, kek: KekProvider) -> BusinessKeys:
    business = uuid.UUID(key_file.business)
    try:
        index_key = kek.unwrap(
            key_file.index.kek,
            base64.b64decode(key_file.index.wrapped),
            keystore.index_key_context(business),
        )
        ciphers = {
            entry.version: AESGCM(
                kek.unwrap(
                    entry.kek,
                    base64.b64decode(entry.wrapped),
                    keystore.data_key_context(business, entry.version),
                )
            )
            for entry in key_file.keys
        }
    except WrappedKeyInvalid:
        raise KekError(
            f"A data key of business {business} does not unwrap with the configured "
            "key-encryption key: the KEK is the wrong one, or the keystore file was altered."
        ) from None
    return BusinessKeys(
        business_id=business,
        primary=key_file.primary.version,
        ciphers=ciphers,
        index_key=index_key,
        destroyed=frozenset(key_file.destroyed),
    )


def create_keys(business_id: object) -> None:
    """Keys for a new business (before its first row is written)."""
    keystore.create(business_id, provider())


def blind_index(business_id: object, kind: str, normalised: str) -> bytes | None:
    """The business's blind index of a normalised value (see BusinessKeys.blind_index)."""
    if not normalised:
        return None
    return keys_for(business_id).blind_index(kind, normalised)
