"""What can go wrong with keys and ciphertexts.

Messages name the problem and where it is (ids), never a key or a value.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class KekError(ImproperlyConfigured):
    """The KEK is missing, malformed, unreachable, or not the one the keystore needs."""


class CryptoError(Exception):
    """A stored value cannot be read."""


class IntegrityFailure(CryptoError):
    """A ciphertext failed authentication: altered, truncated, or moved from another row,
    column or business. Carries where it was found (ids only), never the bytes."""

    def __init__(self, table: str, column: str, row: object) -> None:
        super().__init__(f"stored value failed its integrity check: {table}.{column} row {row}")
        self.table = table
        self.column = column
        self.row = str(row)


class RotationInProgress(Exception):
    """Another process is rotating this business's data key right now."""


class KeyUnavailable(CryptoError):
    """The business's data key (or the key version a value names) no longer exists:
    destroyed with the business, retired past its retention, or missing from the keystore."""


def public_answer(exc: CryptoError, request_id: str) -> tuple[int, str, str]:
    """The status, error code and message a person gets: what happened, never where or how."""
    if isinstance(exc, KeyUnavailable):
        return (
            410,
            "key_destroyed",
            (
                "This data can no longer be read: the encryption key that protected it was "
                "destroyed."
            ),
        )
    reference = f" (reference {request_id})" if request_id else ""
    return (
        409,
        "integrity_error",
        (
            "This record failed an integrity check and is not shown. The failure was logged"
            f"{reference}; nothing was changed."
        ),
    )
