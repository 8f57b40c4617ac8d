"""Key-encryption keys (KEKs): where they come from and how they wrap the data keys.

Three providers (docs/keys.md):
- `file` (the embedded default): a keyring file of AES-256 keys, created 0600 on first run
  outside the database; `custodia keys rotate-kek` adds a key to it and retires the old one.
- `env`: the key in CUSTODIA_KEK (or the file CUSTODIA_KEK_FILE names, such as a mounted
  secret), with keys being rotated out in CUSTODIA_KEK_PREVIOUS; Custodia never writes them.
- `aws-kms`: a KMS key (CUSTODIA_KMS_KEY_ID) that wraps and unwraps through boto3; the key
  material never leaves KMS.

Local keys wrap with AES-256-GCM (`cryptography`), a random 96-bit nonce and associated data
that names what is wrapped (business, kind, version), so a wrapped key moved elsewhere fails.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from custodia.core.config import create_private_file
from custodia.crypto.errors import KekError
from custodia.crypto.keystore import keks_in_use, locked, replace_file

KEYRING_FORMAT = "custodia-kek-keyring/1"
NONCE_BYTES = 12
KEY_BYTES = 32
# How long a retired KEK stays in the file keyring after nothing uses it (prune_file_keks).
RETIRED_KEK_GRACE = dt.timedelta(days=1)


class WrappedKeyInvalid(Exception):
    """A wrapped key did not unwrap: altered, or wrapped for something else."""


class KekProvider(Protocol):
    """Wraps and unwraps data keys; `primary_id` names the key new wraps use."""

    name: str
    primary_id: str

    def holds(self, kek_id: str) -> bool:
        """Whether this provider can unwrap what KEK `kek_id` wrapped, as far as it can tell
        without trying (KMS decrypts under its older keys without listing them: always)."""
        ...

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        """(kek id, wrapped key)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The key; KekError if this provider lacks `kek_id`, WrappedKeyInvalid if it fails."""
        ...


def key_id(key: bytes) -> str:
    """A public name for a local KEK: an HMAC of a fixed label under it, so it reveals nothing."""
    return hmac.new(key, b"custodia kek id", hashlib.sha256).hexdigest()[:16]


def decode_key(raw: str, source: str) -> bytes:
    """32 bytes from base64 text, or a KekError that says what is wrong (never the value)."""
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KekError(f"{source} is not valid base64.") from None
    if len(key) != KEY_BYTES:
        raise KekError(
            f"{source} must be {KEY_BYTES} random bytes in base64 (44 characters); it decodes to "
            f"{len(key)} bytes."
        )
    return key


@dataclass
class LocalKeks:
    """AES-256 KEKs held in this process: the first one wraps, all of them unwrap."""

    name: str
    keys: list[bytes]

    def __post_init__(self) -> None:
        self._by_id = {key_id(key): AESGCM(key) for key in self.keys}
        self.primary_id = key_id(self.keys[0])

    def holds(self, kek_id: str) -> bool:
        return kek_id in self._by_id

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self.primary_id, nonce + self._by_id[self.primary_id].encrypt(nonce, key, context)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        cipher = self._by_id.get(kek_id)
        if cipher is None:
            raise KekError(
                f"The keystore needs key-encryption key {kek_id}, which the {self.name} provider "
                f"does not hold (it holds {', '.join(sorted(self._by_id))}). Configure the key "
                "that wrapped the keystore; a new key cannot read it."
            )
        try:
            return cipher.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise WrappedKeyInvalid from None


class KmsKek:
    """A symmetric AWS KMS key; every wrap and unwrap is a KMS call (unwrapped keys are cached
    by the keyring, so a request rarely makes one)."""

    name = "aws-kms"

    def __init__(self, key_id: str, *, region: str, endpoint_url: str) -> None:
        try:
            import boto3
        except ImportError:
            raise KekError(
                "CUSTODIA_KEK_PROVIDER=aws-kms needs boto3: pip install 'custodia[aws]'."
            ) from None
        if not key_id:
            raise KekError("CUSTODIA_KEK_PROVIDER=aws-kms needs CUSTODIA_KMS_KEY_ID.")
        self.primary_id = key_id
        self._client = boto3.client(
            "kms", region_name=region or None, endpoint_url=endpoint_url or None
        )

    def holds(self, kek_id: str) -> bool:
        return True

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        answer = self._call(
            "encrypt", KeyId=self.primary_id, Plaintext=key, EncryptionContext=_kms_context(context)
        )
        return self.primary_id, bytes(answer["CiphertextBlob"])

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        answer = self._call(
            "decrypt",
            KeyId=kek_id,
            CiphertextBlob=wrapped,
            EncryptionContext=_kms_context(context),
        )
        return bytes(answer["Plaintext"])

    def _call(self, operation: str, **arguments: Any) -> Any:
        """One KMS call; its failures as KekError (the AWS error code, never a key)."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = arguments.get("KeyId", self.primary_id)
        try:
            return getattr(self._client, operation)(**arguments)
        except ClientError as exc:
            code = _error_code(exc)
            if code == "InvalidCiphertextException":
                raise WrappedKeyInvalid from None
            verb = "unwrap" if operation == "decrypt" else "wrap"
            raise KekError(f"AWS KMS refused to {verb} with {key}: {code}.") from None
        except BotoCoreError as exc:
            raise KekError(f"AWS KMS is unreachable: {type(exc).__name__}.") from None


def _kms_context(context: bytes) -> dict[str, str]:
    return {"custodia": context.decode()}


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


def read_keyring_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of a keyring file, primary first ({id, key, added, retired?}); KekError if
    it is unreadable, malformed or too open."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KekError(f"The key-encryption key file {path} is missing.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KekError(
            f"The key-encryption key file {path} is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it."
        )
    try:
        document = json.loads(path.read_text())
        if document.get("format") != KEYRING_FORMAT:
            raise KekError(f"{path} is not a Custodia key-encryption keyring ({KEYRING_FORMAT}).")
        entries = list(document["keys"])
        for entry in entries:
            entry["key"] = decode_key(entry["key"], f"A key in {path}")
    except (OSError, ValueError, KeyError, TypeError):
        raise KekError(f"The key-encryption key file {path} cannot be read or parsed.") from None
    if not entries:
        raise KekError(f"The key-encryption key file {path} holds no key.")
    return entries


def read_keyring_file(path: Path) -> list[bytes]:
    """The keys of a keyring file, primary first."""
    return [entry["key"] for entry in read_keyring_entries(path)]


def write_keyring_entries(
    path: Path, entries: list[dict[str, Any]], *, create: bool = False
) -> None:
    """Write the keyring (primary first): a new 0600 file, or an atomic replacement."""
    document = {
        "format": KEYRING_FORMAT,
        "keys": [
            {**entry, "id": key_id(entry["key"]), "key": base64.b64encode(entry["key"]).decode()}
            for entry in entries
        ],
    }
    content = (json.dumps(document, indent=2) + "\n").encode()
    if create:
        create_private_file(path, content)
        return
    replace_file(path, content)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def provider_from_settings(*, create: bool = False) -> KekProvider:
    """The configured provider. With `create`, the file provider makes its keyring if absent."""
    name = settings.KEK_PROVIDER
    if name == "file":
        path = Path(settings.KEK_KEYRING_FILE)
        if not path.exists():
            if not create:
                raise KekError(
                    f"The key-encryption key file {path} is missing, and the keystore "
                    f"({settings.KEYSTORE_DIR}) holds keys it wrapped: restore the file from its "
                    "backup. A new key could not read them, so none is made."
                )
            first = {"key": AESGCM.generate_key(bit_length=256), "added": _now()}
            write_keyring_entries(path, [first], create=True)
        return LocalKeks("file", read_keyring_file(path))
    if name == "env":
        if not settings.KEK_VALUE:
            raise KekError("CUSTODIA_KEK_PROVIDER=env needs CUSTODIA_KEK (or CUSTODIA_KEK_FILE).")
        keys = [decode_key(settings.KEK_VALUE, "CUSTODIA_KEK")]
        keys += [decode_key(raw, "CUSTODIA_KEK_PREVIOUS") for raw in settings.KEK_PREVIOUS]
        return LocalKeks("env", keys)
    if name == "aws-kms":
        return KmsKek(
            settings.KMS_KEY_ID, region=settings.KMS_REGION, endpoint_url=settings.KMS_ENDPOINT_URL
        )
    raise KekError(f"CUSTODIA_KEK_PROVIDER must be file, env or aws-kms, not {name!r}.")


def add_file_kek() -> str:
    """File provider: a new primary KEK in the keyring file. The old ones are marked retired;
    they stay to unwrap what they wrapped until `prune_file_keks` removes them."""
    path = Path(settings.KEK_KEYRING_FILE)
    with locked():
        entries = read_keyring_entries(path)
        for entry in entries:
            entry.setdefault("retired", _now())
        key = AESGCM.generate_key(bit_length=256)
        write_keyring_entries(path, [{"key": key, "added": _now()}, *entries])
    return key_id(key)


def prune_file_keks(*, now: dt.datetime | None = None) -> list[str]:
    """File provider: remove retired KEKs that wrap nothing any more and were retired more than
    RETIRED_KEK_GRACE ago, so that every server has re-read the keyring since (they reload it
    within a second; the grace covers one that was stopped or cut off). Returns their ids."""
    now = now or dt.datetime.now(dt.UTC)
    path = Path(settings.KEK_KEYRING_FILE)
    with locked():
        in_use = keks_in_use()
        entries = read_keyring_entries(path)
        gone = [
            entry
            for entry in entries[1:]
            if key_id(entry["key"]) not in in_use
            and "retired" in entry
            and now - _aware(entry["retired"]) >= RETIRED_KEK_GRACE
        ]
        if gone:
            write_keyring_entries(path, [entry for entry in entries if entry not in gone])
    return [key_id(entry["key"]) for entry in gone]


def _aware(stamp: str) -> dt.datetime:
    """A keyring timestamp; one without a zone (edited by hand) is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise KekError(f"A key in {settings.KEK_KEYRING_FILE} has a malformed date.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
