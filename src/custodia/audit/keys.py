"""The checkpoint signing keys: the private key (or a remote signer), and the ring of public keys.

The ring (`AUDIT_KEY_RING_FILE`, default `audit_signing_keys.json` beside the key) lists every
public key that ever signed checkpoints, with its id and validity dates; verification reads only
the ring, so a host that verifies (the web tier) needs no private key. Rotation
(`rotate_signing_key`) closes the current key's validity, adds a new key, and keeps the old
public key, so older checkpoints still verify. The signer is the key file on this host (`local`)
or a signer on another host (`remote`: audit/signer.py, `custodia audit signer serve`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.utils import timezone

from custodia.core.config import create_private_file


class KeyProblem(Exception):
    """A signing key or the key ring is missing, unreadable or does not fit."""


def key_id(public: Ed25519PublicKey) -> str:
    """A public key's id: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def ring_path() -> Path:
    """Where the ring of public keys is kept."""
    configured: Path | None = settings.AUDIT_KEY_RING_FILE
    return configured or settings.AUDIT_SIGNING_KEY_FILE.parent / "audit_signing_keys.json"


@dataclass(frozen=True)
class RingKey:
    """One public key of the ring and when it was the signing key ([valid_from, valid_until])."""

    key_id: str
    public: Ed25519PublicKey
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None

    def as_json(self) -> dict[str, Any]:
        """The ring file's entry."""
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "id": self.key_id,
            "public": raw.hex(),
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


@dataclass(frozen=True)
class KeyRing:
    """The public keys by id."""

    keys: dict[str, RingKey]

    def problem(
        self, signed_by: str, statement: str, signature: bytes, made_at: dt.datetime | None
    ) -> str | None:
        """Why this signature does not hold (a sentence), or None when it does."""
        key = self.keys.get(signed_by)
        if key is None:
            return f"it was signed by a key the key ring does not hold ({signed_by})"
        try:
            key.public.verify(signature, statement.encode())
        except InvalidSignature:
            return "its signature does not verify"
        if made_at is not None and (
            (key.valid_from is not None and made_at < key.valid_from)
            or (key.valid_until is not None and made_at > key.valid_until)
        ):
            return f"it is dated outside the validity of its key ({signed_by})"
        return None


def _parse_time(value: object, what: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise KeyProblem(f"The key ring {ring_path()}: {what} is not a date.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _ring_entry(entry: object) -> RingKey:
    path = ring_path()
    if not isinstance(entry, dict) or not {"id", "public"} <= set(entry):
        raise KeyProblem(f"The key ring {path} has an entry without an id and a public key.")
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(entry["public"])))
    except ValueError:
        raise KeyProblem(f"The key ring {path}: key {entry['id']} is not an Ed25519 key.") from None
    if key_id(public) != entry["id"]:
        raise KeyProblem(f"The key ring {path}: key {entry['id']} does not match its id.")
    return RingKey(
        str(entry["id"]),
        public,
        _parse_time(entry.get("valid_from"), f"key {entry['id']}'s valid_from"),
        _parse_time(entry.get("valid_until"), f"key {entry['id']}'s valid_until"),
    )


def _read_ring() -> KeyRing | None:
    path = ring_path()
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
        entries = document["keys"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyProblem(f"The key ring {path} cannot be read: {type(exc).__name__}.") from None
    if not isinstance(entries, list):
        raise KeyProblem(f"The key ring {path} has no list of keys.")
    keys = [_ring_entry(entry) for entry in entries]
    return KeyRing({key.key_id: key for key in keys})


def _write_ring(ring: KeyRing) -> None:
    """Replace the ring file whole (a temporary file renamed over it)."""
    path = ring_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [key.as_json() for key in ring.keys.values()]}, indent=2)
    _replace_file(path, body.encode(), mode=0o644)


def _replace_file(path: Path, content: bytes, *, mode: int) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def key_ring() -> KeyRing:
    """The ring of public keys that verify checkpoints.

    An installation from before rotation has only the key file: its public key is the ring.
    Never creates a key (a host without one must say so, not invent another)."""
    ring = _read_ring()
    if ring is not None:
        return ring
    path = settings.AUDIT_SIGNING_KEY_FILE
    if not path.exists():
        raise KeyProblem(
            f"No audit signing key at {path} nor key ring at {ring_path()}:"
            " the checkpoints cannot be checked."
        )
    public = _load_private(path).public_key()
    return KeyRing({key_id(public): RingKey(key_id(public), public, None, None)})


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise KeyProblem(f"The audit signing key {path} cannot be read: {exc}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyProblem(f"The audit signing key {path} is not an Ed25519 key.")
    return loaded


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signing_key() -> Ed25519PrivateKey:
    """This host's signing key, created (0600) on first use.

    Once a ring exists (the first rotation, or `ensure_ring`), a key it does not list as the
    current one is refused: checkpoints it signed would not verify."""
    path = settings.AUDIT_SIGNING_KEY_FILE
    ring = _read_ring()
    if not path.exists():
        if ring is not None and ring.keys:
            raise KeyProblem(
                f"The key ring {ring_path()} lists signing keys but {path} is missing:"
                " restore it, or make a new one with `custodia audit rotate-signing-key`."
            )
        create_private_file(path, _pem(Ed25519PrivateKey.generate()))
    key = _load_private(path)
    public_id = key_id(key.public_key())
    if ring is not None and (
        public_id not in ring.keys or ring.keys[public_id].valid_until is not None
    ):
        raise KeyProblem(
            f"The signing key {path} ({public_id}) is not the current key of the ring"
            f" {ring_path()}: checkpoints it signed would not verify."
        )
    return key


def ensure_ring() -> Path:
    """Write the ring from this host's key when there is none yet (for the hosts that verify
    without the key); its path."""
    if _read_ring() is None:
        public = signing_key().public_key()
        _write_ring(KeyRing({key_id(public): RingKey(key_id(public), public, None, None)}))
    return ring_path()


def rotate_signing_key(now: dt.datetime | None = None) -> tuple[str | None, str]:
    """A new signing key on this host; the old one's public key stays in the ring, valid until
    now. Returns (old key id or None, new key id). The old private key is overwritten."""
    now = now or timezone.now()
    path = settings.AUDIT_SIGNING_KEY_FILE
    ring = _read_ring()
    old_id: str | None = None
    keys: dict[str, RingKey] = dict(ring.keys) if ring else {}
    if path.exists():
        old = _load_private(path).public_key()
        old_id = key_id(old)
        current = keys.get(old_id, RingKey(old_id, old, None, None))
        keys[old_id] = RingKey(old_id, old, current.valid_from, now)
    new = Ed25519PrivateKey.generate()
    new_id = key_id(new.public_key())
    keys[new_id] = RingKey(new_id, new.public_key(), now, None)
    # The ring first: a key file whose key the ring does not list would sign in vain.
    _write_ring(KeyRing(keys))
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_file(path, _pem(new), mode=0o600)
    return old_id, new_id


# --- Signers -------------------------------------------------------------------------------


class Signer(Protocol):
    """Signs a checkpoint statement: (the key's id, the Ed25519 signature)."""

    def sign(self, statement: str) -> tuple[str, bytes]: ...


class LocalSigner:
    """The key file on this host."""

    def sign(self, statement: str) -> tuple[str, bytes]:
        """Sign with this host's key."""
        key = signing_key()
        return key_id(key.public_key()), key.sign(statement.encode())


def signer() -> Signer:
    """The configured signer (`CUSTODIA_AUDIT_SIGNER`)."""
    if settings.AUDIT_SIGNER == "remote":
        from custodia.audit.signer import RemoteSigner

        return RemoteSigner(settings.AUDIT_SIGNER_URL, settings.AUDIT_SIGNER_SECRET_FILE)
    return LocalSigner()
