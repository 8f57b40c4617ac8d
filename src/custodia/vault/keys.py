"""The vault's keys: one data key per business in the vault's own keystore, wrapped by the
vault's own key-encryption key (settings.KEK_*), through the app's keyring code
(crypto/keyring.py), which reads only Django settings.

A card's number and holder name are sealed with AES-256-GCM; the associated data names the
business, the column and the card's token, so a sealed value moved to another card or business
fails to open. The fingerprint is an HMAC-SHA256 of the number under the business's index key:
the same card twice in one business gives the same fingerprint, in two businesses two unrelated
ones.
"""

from __future__ import annotations

import uuid

from custodia.crypto import keyring, keystore
from custodia.crypto.errors import KeyUnavailable

FINGERPRINT_KIND = "vault card number"


class CardUnreadable(Exception):
    """The sealed value cannot be opened: its business's key was destroyed, or it was altered."""


def ensure_business_keys(business_id: uuid.UUID) -> None:
    """The business's vault keys, made on its first card (idempotent)."""
    keyring.create_keys(business_id)


def _context(business_id: uuid.UUID, column: str, token: str) -> bytes:
    return f"vault|{business_id}|card.{column}|{token}".encode()


def seal(business_id: uuid.UUID, column: str, token: str, plaintext: str) -> bytes:
    """`plaintext` sealed under the business's primary data key, bound to its place."""
    return keyring.keys_for(business_id).seal(plaintext, _context(business_id, column, token))


def open_sealed(business_id: uuid.UUID, column: str, token: str, blob: bytes) -> str:
    """The plaintext of a sealed value; CardUnreadable if its key is gone or it was altered."""
    try:
        return keyring.keys_for(business_id).open(bytes(blob), _context(business_id, column, token))
    except (KeyUnavailable, keyring.Unauthentic):
        raise CardUnreadable(f"card {token} cannot be opened") from None


def fingerprint(business_id: uuid.UUID, number: str) -> str:
    """HMAC-SHA256 (truncated to 128 bits, hex) of the number under the business's index key."""
    digest = keyring.keys_for(business_id).blind_index(FINGERPRINT_KIND, number)
    assert digest is not None
    return digest.hex()


def destroy_business_keys(business_id: uuid.UUID) -> bool:
    """Crypto-shred: the business's key file is overwritten and removed; True if it existed."""
    existed = keystore.destroy(business_id)
    keyring.forget(business_id)
    return existed
